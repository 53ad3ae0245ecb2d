"""Prompt templates: how a problem becomes the text the policy continues.

- ``qwen_math`` (the paper's): system "Please reason step by step, and put your final answer
  within \\boxed{}." and the problem as the user turn, through the model's own chat template, as
  Dr. GRPO / Oat-Zero apply it.
- ``r1``: R1-Zero's plain-text dialogue with <think> and <answer> tags; the answer is asked for in
  \\boxed{} inside <answer>, so one reward (the last boxed answer) grades every template.
- ``plain``: the problem text alone (base models).

Few-shot: ``fewshot`` worked examples (problem and solution ending in a boxed answer) go before
the problem, as earlier user/assistant turns (chat templates) or as text. Small models rarely
box an answer unprompted (docs/PLATFORM_NOTES.md, "Reward signal on small models"); a shot
shows them the format.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

from seedgrpo.config.catalogue import PromptTemplate
from seedgrpo.data.problems import Problem

__all__ = ["QWEN_MATH_INSTRUCTION", "render_prompt"]

QWEN_MATH_INSTRUCTION = (
    "Please reason step by step, and put your final answer within \\boxed{}."
)
_R1 = (
    "A conversation between User and Assistant. The User asks a question, and the Assistant "
    "solves it. The Assistant first thinks about the reasoning process in the mind and then "
    "provides the User with the answer. The reasoning process is enclosed within <think> "
    "</think> and the answer is enclosed within <answer> </answer> tags, with the final result "
    "in \\boxed{{}}, i.e., <think> reasoning process here </think> <answer> \\boxed{{answer}} "
    "</answer>.\n{shots}User: {question}\nAssistant: <think>"
)


def _shots_as_messages(shots: Sequence[Problem]) -> list[dict[str, str]]:
    messages = []
    for shot in shots:
        messages.append({"role": "user", "content": shot.problem})
        messages.append({"role": "assistant", "content": shot.solution or ""})
    return messages


def render_prompt(problem: Problem, template: str, tokenizer: Any,
                  shots: Sequence[Problem] = ()) -> str:
    """The prompt text for ``problem`` (special tokens included, ready to tokenize as-is)."""
    for shot in shots:
        if not shot.solution:
            raise ValueError(f"few-shot example {shot.id} has no solution text to show")
    if template == "qwen_math":
        messages = [{"role": "system", "content": QWEN_MATH_INSTRUCTION},
                    *_shots_as_messages(shots), {"role": "user", "content": problem.problem}]
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                             tokenize=False)
    if template == "r1":
        text = "".join(f"User: {s.problem}\nAssistant: {s.solution}\n" for s in shots)
        return _R1.format(shots=text, question=problem.problem)
    if template == "plain":
        text = "".join(f"{s.problem}\n{s.solution}\n\n" for s in shots)
        return text + problem.problem + "\n"
    raise ValueError(f"unknown template '{template}'; known: "
                     f"{', '.join(typing.get_args(PromptTemplate))}")

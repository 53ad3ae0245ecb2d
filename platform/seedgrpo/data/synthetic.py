"""A seeded synthetic arithmetic task, so the default run needs no data files.

Problems like "Compute 12 + 7 - 3." with difficulty set by the number of operands, their range
and the operators. Each comes with a worked solution ("12 + 7 = 19. 19 - 3 = 16. The answer is
\\boxed{16}."), which few-shot prompts use to show a small model the answer format it is graded on.
"""

from __future__ import annotations

import random

from seedgrpo.config.sections import SyntheticDataConfig
from seedgrpo.data.problems import GoldAnswer, Problem

__all__ = ["generate_arithmetic"]

_APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def _one(rng: random.Random, cfg: SyntheticDataConfig) -> tuple[str, str, str]:
    operands = [rng.randint(1, cfg.max_operand) for _ in range(cfg.num_operands)]
    ops = [rng.choice(cfg.operations) for _ in range(cfg.num_operands - 1)]
    expression = str(operands[0]) + "".join(f" {o} {v}" for o, v in zip(ops, operands[1:],
                                                                            strict=True))
    if "*" in ops:  # precedence matters: show the result in one step
        value = _evaluate(operands, ops)
        steps = [f"{expression} = {value}."]
    else:  # + and - only: left to right, one step per operator
        steps, value = [], operands[0]
        for op, operand in zip(ops, operands[1:], strict=True):
            new = _APPLY[op](value, operand)
            steps.append(f"{value} {op} {operand} = {new}.")
            value = new
    solution = " ".join(steps) + f" The answer is \\boxed{{{value}}}."
    return f"Compute {expression}.", str(value), solution


def _evaluate(operands: list[int], ops: list[str]) -> int:
    """Standard precedence (* before + and -), without eval."""
    terms, signs = [operands[0]], []
    for op, operand in zip(ops, operands[1:], strict=True):
        if op == "*":
            terms[-1] *= operand
        else:
            signs.append(op)
            terms.append(operand)
    total = terms[0]
    for sign, term in zip(signs, terms[1:], strict=True):
        total = total + term if sign == "+" else total - term
    return total


def generate_arithmetic(cfg: SyntheticDataConfig, *, seed: int) -> list[Problem]:
    """``cfg.num_problems`` distinct problems, the same for the same config and seed.

    >>> from seedgrpo.config.sections import SyntheticDataConfig
    >>> p = generate_arithmetic(SyntheticDataConfig(num_problems=8), seed=0)[0]
    >>> p.problem, p.answer
    ('Compute 13 + 14.', '27')
    """
    rng = random.Random(seed)
    seen: set[str] = set()
    problems: list[Problem] = []
    attempts = 0
    while len(problems) < cfg.num_problems:
        attempts += 1
        if attempts > 50 * cfg.num_problems:
            raise ValueError(
                f"data.synthetic allows fewer than {cfg.num_problems} distinct problems; raise "
                "max_operand or num_operands, or lower num_problems"
            )
        text, answer, solution = _one(rng, cfg)
        if text in seen:
            continue
        seen.add(text)
        problems.append(Problem(f"synthetic-{len(problems)}", text, GoldAnswer(answer),
                                solution))
    return problems

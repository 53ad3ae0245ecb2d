"""A math problem, for training and for evaluation alike: the text, the gold answer (with what
else grading accepts), and an optional worked solution.

One type serves both so that a held-out training problem and a benchmark row are graded the
same way and need no conversion between them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GoldAnswer", "Problem"]


@dataclass(frozen=True)
class GoldAnswer:
    """What a completion's final answer is compared with. Training rewards read ``answer``;
    benchmark grading also honours the other fields a row may give."""

    answer: str
    alternatives: tuple[str, ...] = ()  # other accepted answers (a row's ``answers``)
    unit: str | None = None  # a unit the prediction may carry (OlympiadBench ``unit``)
    abs_tol: float | None = None  # the row's own numeric tolerance (OlympiadBench ``error``)

    @property
    def accepted(self) -> tuple[str, ...]:
        return (self.answer, *self.alternatives)


@dataclass(frozen=True)
class Problem:
    """One math problem. ``problem`` is what the prompt templates read, ``gold`` what rewards
    and grading compare with. ``solution`` (worked text ending in a boxed answer) feeds
    few-shot prompts; rows without one can still be trained and evaluated on."""

    id: str
    problem: str
    gold: GoldAnswer
    solution: str | None = None

    @property
    def answer(self) -> str:
        """The gold answer's main spelling (what a training reward compares with)."""
        return self.gold.answer

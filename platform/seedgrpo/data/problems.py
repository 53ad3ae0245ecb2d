"""A training or evaluation problem: the text, the gold final answer, and an optional solution."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Problem"]


@dataclass(frozen=True)
class Problem:
    """One math problem. ``solution`` (worked text ending in a boxed answer) feeds few-shot
    prompts; rows without one can still be trained and evaluated on."""

    id: str
    problem: str
    answer: str
    solution: str | None = None

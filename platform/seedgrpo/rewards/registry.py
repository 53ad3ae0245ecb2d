"""Reward functions by name: ``algorithm.reward`` picks one, plug-ins add more.

A reward function scores one completion against the gold answer:
``fn(completion, gold_answer, *, verifier) -> float``. The verifier is the scorer's bounded
math-verify worker; a reward that does not need it ignores it. Rewards should lie in [0, 1]:
the accuracy metric counts a reward above 0.5 as correct, and GCPO's reward dispersion needs
that range.

    from seedgrpo.rewards import register_reward

    @register_reward("boxed_present")
    def boxed_present(completion, gold_answer, *, verifier):
        return 1.0 if "\\\\boxed{" in completion else 0.0
"""

from __future__ import annotations

from collections.abc import Callable

from seedgrpo.algorithms.registry import Registry
from seedgrpo.rewards.math_reward import math_reward

__all__ = ["REWARDS", "register_reward"]

RewardFn = Callable[..., float]  # (completion, gold_answer, *, verifier: Verifier) -> float
REWARDS: Registry[RewardFn] = Registry("reward function")


def register_reward(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator: file a reward function as ``algorithm.reward: name``.

    >>> @register_reward("doc_length")
    ... def _length(completion, gold_answer, *, verifier=None):
    ...     return min(1.0, len(completion) / 100)
    >>> REWARDS.get("doc_length")("x" * 50, "1", verifier=None)
    0.5
    >>> REWARDS.unregister("doc_length")  # keep the registry to the real entries
    """
    return REWARDS.register(name)


# the paper's reward: 1.0 when the last boxed answer equals the gold one [paper]
register_reward("math")(math_reward)

"""Verifiable rewards: math-verify equivalence with a hard time bound, and the reward registry
(``algorithm.reward``; plug-ins add more with ``register_reward``)."""

from seedgrpo.rewards.math_reward import math_reward
from seedgrpo.rewards.registry import REWARDS, register_reward
from seedgrpo.rewards.verifier import Verifier, VerifierCounters, VerifyError, default_verifier

__all__ = ["REWARDS", "Verifier", "VerifierCounters", "VerifyError", "default_verifier",
           "math_reward", "register_reward"]

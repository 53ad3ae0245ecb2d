"""Verifiable rewards: math-verify equivalence with a hard time bound."""

from seedgrpo.rewards.math_reward import math_reward
from seedgrpo.rewards.verifier import Verifier, VerifierCounters, VerifyError, default_verifier

__all__ = ["Verifier", "VerifierCounters", "VerifyError", "default_verifier", "math_reward"]

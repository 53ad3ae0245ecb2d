"""Rollout engines (transformers generate, vLLM) behind one interface."""

from seedgrpo.rollout.types import Completion, RolloutEngine, SamplingSettings

__all__ = ["Completion", "RolloutEngine", "SamplingSettings"]

"""What a rollout engine returns, the same for every engine (the rest of the system cannot tell
which one ran).

Log-probs are those of the *sampling* policy: log softmax of the logits after temperature and
top-p, for the token that was sampled. The learner recomputes them at the same temperature for
the PPO ratio; with top_p < 1 the two differ by the truncation, as in verl and OpenRLHF.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Completion", "SamplingSettings", "RolloutEngine"]


@dataclass(frozen=True)
class Completion:
    """One sampled response. ``token_ids`` include the EOS token when the model stopped."""

    token_ids: list[int]
    text: str  # decoded without special tokens
    logprobs: list[float]  # one per token in token_ids
    truncated: bool  # stopped by max_new_tokens, not by EOS

    @property
    def mean_logprob(self) -> float:
        """Length-normalised log-likelihood: the l_i that semantic entropy weighs."""
        return sum(self.logprobs) / max(1, len(self.logprobs))


@dataclass(frozen=True)
class SamplingSettings:
    n: int  # samples per prompt (G)
    max_new_tokens: int
    temperature: float  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0


class RolloutEngine(Protocol):
    """A generation backend (transformers or vLLM) behind one interface."""

    def generate(self, prompt_ids: list[list[int]], settings: SamplingSettings
                 ) -> list[list[Completion]]:
        """``settings.n`` completions for each prompt, grouped per prompt, in prompt order."""
        ...

    def sequence_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        """Log-probs (temperature 1) of a fixed completion after a prompt; for sync checks."""
        ...

    def load_weights_from_dir(self, path: str) -> None:
        """Replace the weights with the safetensors files in ``path`` (same architecture)."""
        ...

"""What a rollout engine returns, the same for every engine (the rest of the system cannot tell
which one ran).

Log-probs are those of the *sampling* policy: log softmax of the logits after temperature and
top-p, for the token that was sampled. The learner recomputes them at the same temperature for
the PPO ratio; with top_p < 1 the two differ by the truncation, as in verl and OpenRLHF.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

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
    """A generation backend (transformers or vLLM) behind one interface.

    Both engines load weights the same ways, so weight sync (``seedgrpo.models.weight_sync``)
    never asks which engine it feeds.
    """

    def generate(self, prompt_ids: list[list[int]], settings: SamplingSettings
                 ) -> list[list[Completion]]:
        """``settings.n`` completions for each prompt, grouped per prompt, in prompt order."""
        ...

    def sequence_logprobs(self, prompt_ids: list[int], completion_ids: list[int]) -> list[float]:
        """Log-probs (temperature 1) of a fixed completion after a prompt; for sync checks."""
        ...

    def load_weights(self, weights: Iterable[tuple[str, Any]]) -> int:
        """Replace the weights with these named tensors (every parameter); returns the count."""
        ...

    def load_weights_from_dir(self, path: str) -> None:
        """Replace the weights with the safetensors files in ``path`` (same architecture)."""
        ...

    def reset_weights(self) -> None:
        """Back to the weights the engine was built from (a new trial on a warm engine)."""
        ...

    def join_weight_group(self, host: str, port: int, rank: int, world_size: int,
                          backend: str) -> None:
        """Join the collective weight-sync group as ``rank`` (1 ..)."""
        ...

    def receive_weights(self, specs: list[tuple[str, str, list[int]]]) -> int:
        """Receive one broadcast of the learner's weights in the joined group."""
        ...

    def close(self) -> None:
        """Stop what the engine started outside this process (vLLM's engine processes); safe
        to call twice. A Ray actor's engine ends with its actor and needs no call."""
        ...

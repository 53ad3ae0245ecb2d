"""The DeepSpeed learner ranks of a trial, as one interface: set-up, updates, weights.

Every call goes to every rank (ZeRO-3 gathers are collective); rank 0 hosts the process group's
rendezvous and is the sender of weight sync.
"""

from __future__ import annotations

from typing import Any

from seedgrpo.runtime.actor_group import ActorGroup
from seedgrpo.runtime.batches import StepBatch

__all__ = ["LearnerGroup"]


class LearnerGroup(ActorGroup):
    """The trial's ``LearnerActor``s, rank order."""

    role = "learner rank"

    def __init__(self, actors: list[Any], *, timeout_s: float, zero_stage: int) -> None:
        super().__init__(actors, timeout_s=timeout_s)
        self.zero_stage = zero_stage

    @property
    def rank0(self) -> Any:
        return self.actors[0]

    def rendezvous(self) -> tuple[str, int]:
        """Rank 0's node address and a free port on it."""
        return self.wait([self.rank0.rendezvous.remote()], "learner rendezvous")[0]

    def setup(self) -> None:
        """Join the DeepSpeed process group and build every rank's engine."""
        host, port = self.rendezvous()
        self.wait(self.call("setup", host, port), "starting DeepSpeed ranks")

    def reset(self, config: dict[str, Any]) -> None:
        self.wait(self.call("reset", config), "resetting the learner ranks")

    def train(self, batch: StepBatch, *, behaviour_logprobs: bool) -> list[dict[str, float]]:
        """One update on ``batch`` (each rank reads its share from the object store)."""
        return self.wait(self.call("train", batch.prompt_ids, batch.shards, batch.scored,
                                   behaviour_logprobs), "learning", batch.step)

    def embed(self, batch: StepBatch) -> list[Any]:
        """GCPO: each rank's references to its share's embedding rows (not awaited)."""
        return self.call("embed", batch.prompt_ids, batch.shards)

    def gradient_probe(self, batch: StepBatch, *, seed: int, directions: int) -> list[Any]:
        """The gradient-variance probe of ``batch`` on every rank (not awaited): submitted
        before the step's ``train``, it runs on pi_old (an actor runs its calls in order).
        Each reference gives ``{"projections": rows of the rank's share, "seconds": ...}``."""
        return self.call("gradient_probe", batch.prompt_ids, batch.shards, batch.scored, seed,
                         directions)

    def version(self) -> int:
        """Optimizer steps the ranks have taken (they agree)."""
        return self.wait([self.rank0.version.remote()], "reading the learner version")[0]

    def sequence_logprobs(self, prompt_ids: list[int], completion_ids: list[int]
                          ) -> list[float]:
        return self.wait(self.call("sequence_logprobs", prompt_ids, completion_ids),
                         "learner log-probs")[0]

    # -- weight sync (seedgrpo.models.weight_sync.WeightSync) --------------------------------
    def export_state(self) -> Any:
        """A reference to rank 0's full state dict (under ZeRO-3 every rank gathers)."""
        if self.zero_stage != 3:
            return self.rank0.full_state_dict.remote()
        refs = self.call("full_state_dict")
        self.wait(refs[1:], "gathering weights")
        return refs[0]

    def open_weight_group(self, host: str, port: int, world_size: int, backend: str) -> Any:
        return self.rank0.open_weight_group.remote(host, port, world_size, backend)

    def prepare_broadcast(self) -> list[tuple[str, str, list[int]]]:
        return self.wait(self.call("prepare_broadcast"), "gathering weights")[0]

    def broadcast(self) -> Any:
        return self.rank0.broadcast.remote()

    # -- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self, directory: str, tag: str, step: int) -> None:
        self.wait(self.call("save_checkpoint", directory, tag, {"step": step}),
                  "checkpointing", step)

    def load_checkpoint(self, directory: str, tag: str) -> None:
        self.wait(self.call("load_checkpoint", directory, tag), "loading the checkpoint")

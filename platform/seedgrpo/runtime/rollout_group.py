"""The rollout engines of a trial, as one interface: generation and weight loading.

``generate`` submits and returns at once (``StepBatch`` holds the references), so the trial
can generate the next step's batch while the learners learn; Ray runs each actor's calls in
submission order, so a generation submitted after a weight load sees the loaded weights.

With ``train.dynamic_sampling`` a step is drawn in rounds; ``select`` turns the rounds into the
one batch the learners read, in a zero-CPU Ray task that reads the completions and scores from
the object store (they never pass through the trial driver).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import ray

from seedgrpo.rollout.types import Completion, SamplingSettings
from seedgrpo.runtime.actor_group import ActorGroup
from seedgrpo.runtime.batches import StepBatch, TrainPrompt, join_shards, split_shards
from seedgrpo.runtime.dynamic_sampling import Selection, assemble, merge_meta

__all__ = ["RolloutGroup"]


@ray.remote(num_cpus=0, num_returns=2)
def _assemble(selection: Selection, round_shards: list[list[Any]], round_scored: list[Any]
              ) -> tuple[list[list[Completion]], Any]:
    """``dynamic_sampling.assemble`` where the rounds' objects are (zero CPUs: it must never
    wait for the trial's own reserved cores)."""
    groups = [join_shards(ray.get(shards)) for shards in round_shards]
    return assemble(selection, groups, ray.get(round_scored))


class RolloutGroup(ActorGroup):
    """The trial's ``RolloutActor``s (vLLM or HF engines)."""

    role = "rollout worker"

    def _submit(self, prompt_ids: list[list[int]], settings: SamplingSettings, *,
                alone: bool = False) -> tuple[list[Any], list[Any]]:
        shards = split_shards(prompt_ids, len(self))
        busy = [(a, s) for a, s in zip(self.actors, shards, strict=True) if s]
        pairs = [a.generate.remote(s, settings, alone) for a, s in busy]  # (groups, meta)
        return [g for g, _ in pairs], [m for _, m in pairs]

    def generate(self, step: int, prompts: list[TrainPrompt], settings: SamplingSettings
                 ) -> StepBatch:
        """Submit one step's generation; the batch's references resolve when it is done."""
        shards, meta = self._submit([p.prompt_ids for p in prompts], settings)
        return StepBatch(step, prompts, shards, meta, submitted_at=time.monotonic())

    @staticmethod
    def select(rounds: Sequence[StepBatch], selection: Selection,
               metas: Sequence[Sequence[dict[str, Any]]]) -> StepBatch:
        """The batch the step learns from, out of its scored ``rounds`` (``metas``: each
        round's generation records, already read): the picked prompts, one shard of their
        groups and their ``ScoredBatch`` (references; not awaited)."""
        groups, scored = _assemble.remote(selection, [list(b.shards) for b in rounds],
                                          [b.scored for b in rounds])
        prompts = [rounds[r].prompts[i] for r, i in selection.picks]
        return StepBatch(rounds[0].step, prompts, [groups], [ray.put(merge_meta(metas))],
                         scored=scored, submitted_at=rounds[0].submitted_at)

    def generate_now(self, prompt_ids: list[list[int]], settings: SamplingSettings,
                     what: str, step: int | None = None) -> list[list[Completion]]:
        """Generate and wait (evaluation, while the learners are idle): the groups, in
        prompt order."""
        shards, _ = self._submit(prompt_ids, settings, alone=True)
        return join_shards(self.wait(shards, what, step))

    # -- weights (driven by seedgrpo.models.weight_sync.WeightSync) --------------------------
    def load_state(self, state: Any, version: int) -> list[Any]:
        return self.call("load_state", state, version)

    def join_weight_group(self, host: str, port: int, world_size: int, backend: str
                          ) -> list[Any]:
        return self.fan_out("join_weight_group", [(host, port, i + 1, world_size, backend)
                                                  for i in range(len(self))])

    def receive_weights(self, specs: list[tuple[str, str, list[int]]], version: int
                        ) -> list[Any]:
        return self.call("receive_weights", specs, version)

    def reset(self, config: dict[str, Any]) -> None:
        """Every engine back to the base model's weights, for a new trial of ``config``."""
        self.wait(self.call("reset", config), "resetting the rollout engines")

    def sequence_logprobs(self, prompt_ids: list[int], completion_ids: list[int]
                          ) -> list[list[float]]:
        """Each engine's log-probs of a fixed completion (weight-sync checks)."""
        return self.wait(self.call("sequence_logprobs", prompt_ids, completion_ids),
                         "engine log-probs")

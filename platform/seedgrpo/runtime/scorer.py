"""The trial's scorer, as one interface: a step's scores, and benchmark grading.

The scorer reads the completions from the object store and returns a ``ScoredBatch``
reference, which the learner ranks read directly; the driver reads only its metrics.
"""

from __future__ import annotations

from typing import Any

from seedgrpo.runtime.actor_group import ActorGroup
from seedgrpo.runtime.batches import StepBatch

__all__ = ["Scorer"]


class Scorer(ActorGroup):
    """One ``ScorerActor`` (math-verify runs in its main thread)."""

    role = "scorer"

    @property
    def actor(self) -> Any:
        return self.actors[0]

    def score(self, batch: StepBatch, embeddings: list[Any] | None = None) -> None:
        """Submit the scoring of ``batch`` (``embeddings``: the learners' references, GCPO);
        sets ``batch.scored``."""
        golds = [p.gold for p in batch.prompts]
        batch.scored = self.actor.score.remote(golds, batch.shards, embeddings)

    def gcpo_uncertainties(self, batch: StepBatch, embeddings: list[Any] | None) -> Any:
        """A reference to GCPO's U of every group of ``batch`` (the gradient-variance
        diagnostic of a run that is not GCPO): from the learners' embedding references, or
        from the sentence encoder when ``embeddings`` is None."""
        return self.actor.gcpo_uncertainties.remote(batch.shards, batch.scored, embeddings)

    def grade(self, rule: str, problems: list[Any], texts: list[list[str]],
              step: int | None = None) -> Any:
        return self.wait([self.actor.grade.remote(rule, problems, texts)], "evaluating",
                         step)[0]

    def reset(self, config: dict[str, Any]) -> None:
        self.wait([self.actor.reset.remote(config)], "resetting the scorer")

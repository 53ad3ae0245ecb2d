"""What every group of a trial's actors shares: waiting with a timeout, and checked fan-out.

``RolloutGroup``, ``LearnerGroup`` and ``Scorer`` are each one interface over their actors; the
trial never calls an actor directly. A fan-out call gives each actor its own arguments, and a
count that does not match the actors is a programming error caught here, before anything runs,
instead of a silent ``zip`` that leaves an actor out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ray

from seedgrpo.runtime.waiting import wait_for

__all__ = ["ActorGroup"]


class ActorGroup:
    """A list of actors of one kind, with the trial's timeout for every wait."""

    role = "actor"

    def __init__(self, actors: Sequence[Any], *, timeout_s: float) -> None:
        if not actors:
            raise ValueError(f"a {self.role} group needs at least one actor")
        self.actors = list(actors)
        self.timeout_s = timeout_s

    def __len__(self) -> int:
        return len(self.actors)

    def wait(self, refs: list[Any], what: str, step: int | None = None) -> list[Any]:
        """``ray.get(refs)`` bounded by the trial's timeout; failures name ``what``."""
        return wait_for(refs, what, timeout_s=self.timeout_s, step=step)

    def call(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """The same call on every actor; returns the references."""
        return [getattr(a, method).remote(*args, **kwargs) for a in self.actors]

    def fan_out(self, method: str, per_actor: Sequence[tuple[Any, ...]], **kwargs: Any
                ) -> list[Any]:
        """``method(*per_actor[i], **kwargs)`` on actor i; one argument tuple per actor."""
        if len(per_actor) != len(self.actors):
            raise ValueError(f"{method}: {len(per_actor)} argument sets for "
                             f"{len(self.actors)} {self.role}s")
        return [getattr(a, method).remote(*args, **kwargs)
                for a, args in zip(self.actors, per_actor, strict=True)]

    def peak_rss_mb(self) -> list[float]:
        """Each actor's peak resident memory (its engine processes included)."""
        return self.wait(self.call("peak_rss_mb"), f"reading {self.role} memory")

    def kill(self) -> None:
        for actor in self.actors:
            ray.kill(actor)

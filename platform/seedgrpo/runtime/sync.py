"""The trial loop's side of weight sync: orchestrates ``seedgrpo.learner.weight_sync``.

Every learner rank joins each export (ZeRO-3 gathers collectively); rank 0's weights then reach
every rollout actor through the object store or a broadcast. Calls wait with a timeout that
names the step and the actors, so a hung rank fails the run instead of hanging it.
"""

from __future__ import annotations

import logging
from typing import Any

from seedgrpo.runtime.waiting import wait_for

__all__ = ["WeightSyncer"]

logger = logging.getLogger(__name__)


class WeightSyncer:
    def __init__(self, method: str, learners: list[Any], workers: list[Any], *, backend: str,
                 timeout_s: float) -> None:
        self.method, self.learners, self.workers = method, learners, workers
        self.backend, self.timeout_s = backend, timeout_s
        self._group_open = False

    def _get(self, refs: list[Any], what: str) -> list[Any]:
        return wait_for(refs, f"weight sync ({what})", timeout_s=self.timeout_s)

    def _open_group(self) -> None:
        # rank 0 hosts the group: its node's address and a port free there
        host, port = self._get([self.learners[0].rendezvous.remote()], "rendezvous")[0]
        world = 1 + len(self.workers)
        refs = [w.join_sync_group.remote(host, port, i + 1, world, self.backend)
                for i, w in enumerate(self.workers)]
        refs.append(self.learners[0].open_sync_group.remote(host, port, world, self.backend))
        self._get(refs, "joining the sync group")
        self._group_open = True

    def sync(self) -> None:
        """Rank 0's current weights into every engine."""
        if self.method == "object_store":
            states = [r.full_state_dict.remote() for r in self.learners]
            self._get(states[1:], "gathering weights")  # ZeRO-3: all ranks take part
            self._get([w.load_state.remote(states[0]) for w in self.workers],
                      "loading weights into the engines")
            return
        if not self._group_open:
            self._open_group()
        specs = self._get([r.prepare_weights.remote() for r in self.learners],
                          "gathering weights")[0]
        receive = [w.receive_weights.remote(specs) for w in self.workers]
        self._get([self.learners[0].send_prepared.remote(), *receive], "broadcasting weights")

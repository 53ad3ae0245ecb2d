"""A deterministic, resumable prompt sampler: epochs of seeded shuffles, one cursor.

Its whole state is four integers, saved in every checkpoint; a restarted run loads them and draws
exactly the prompts the uninterrupted run would have drawn.
"""

from __future__ import annotations

import random
from typing import Any

__all__ = ["PromptSampler"]


class PromptSampler:
    """Indices into a pool of ``size`` prompts, ``k`` at a time, without replacement per epoch.

    >>> s = PromptSampler(5, seed=0)
    >>> first = s.next_indices(3) + s.next_indices(3)  # crosses into epoch 1
    >>> sorted(first[:5]) == [0, 1, 2, 3, 4], s.epoch
    (True, 1)
    """

    def __init__(self, size: int, *, seed: int) -> None:
        if size < 1:
            raise ValueError("the training pool is empty; check data.* and data.heldout_size")
        self.size, self.seed = size, seed
        self.epoch, self.cursor = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        order = list(range(self.size))
        random.Random(f"{self.seed}:{epoch}").shuffle(order)
        return order

    def next_indices(self, k: int) -> list[int]:
        """The next ``k`` indices, continuing into the next epoch's shuffle when one ends."""
        out: list[int] = []
        while len(out) < k:
            if self.cursor == self.size:
                self.epoch, self.cursor = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
            take = min(k - len(out), self.size - self.cursor)
            out += self._order[self.cursor : self.cursor + take]
            self.cursor += take
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "seed": self.seed, "epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["size"] != self.size or state["seed"] != self.seed:
            raise ValueError(
                f"checkpoint sampler was for {state['size']} prompts with seed {state['seed']}; "
                f"this run has {self.size} with seed {self.seed}: the data or seed changed"
            )
        self.epoch, self.cursor = state["epoch"], state["cursor"]
        self._order = self._permutation(self.epoch)

"""One step's batch: its prompts, where its completions and scores are, and how stale it is.

Completions and scores never pass through the trial driver: the rollout workers return their
shards to Ray's object store, and the scorer and the learner ranks read them from there
(``StepBatch`` holds only the references). The helpers here are pure, so the ways a batch is
cut and reassembled are tested without Ray:

- the engines get contiguous shards of the prompts (``split_shards``), and every reader joins
  them back in prompt order (``join_shards``);
- each learner rank takes its contiguous equal share of the P x G responses (``rank_share``),
  the same split whatever the number of engines; with ``train.mini_batch_size`` M, its share
  of each optimizer step's M responses (``rank_mini_batches``), so every optimizer step sees
  the same responses whatever the rank count.

A batch that was generated ahead of learning (``rollout.max_staleness`` 1) and is still
pending when the trial checkpoints is written beside the checkpoint (``write_pending`` /
``read_pending``), so a resumed trial learns from exactly the batch the uninterrupted one did.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from seedgrpo.fileio import atomic_write_text
from seedgrpo.learner.batch import TrainSample
from seedgrpo.models.checkpoint_files import pending_batch_path
from seedgrpo.rollout.types import Completion

__all__ = ["TrainPrompt", "StepBatch", "split_shards", "join_shards", "train_samples",
           "rank_share", "rank_mini_batches", "write_pending", "read_pending", "pending_path"]

T = TypeVar("T")


@dataclass(frozen=True)
class TrainPrompt:
    """One training prompt of a step: the problem's id, its token ids and gold answer."""

    id: str
    prompt_ids: list[int]
    gold: str


@dataclass
class StepBatch:
    """The handles of one step's batch (references into Ray's object store, and small facts).

    ``shards``: one reference per rollout worker to its groups of completions; ``meta``: one
    reference per worker to ``{"version", "seconds", "tokens"}`` (the weights version that
    generated it, the engine's own time and tokens); ``scored``: a reference to the scorer's
    ``ScoredBatch``.
    """

    step: int
    prompts: list[TrainPrompt]
    shards: list[Any]
    meta: list[Any]
    scored: Any = None
    submitted_at: float = 0.0  # time.monotonic() when generation was submitted

    @property
    def prompt_ids(self) -> list[list[int]]:
        return [p.prompt_ids for p in self.prompts]


def split_shards(items: Sequence[T], n: int) -> list[list[T]]:
    """``n`` contiguous shards whose sizes differ by at most one (earlier shards larger).

    >>> split_shards([1, 2, 3, 4, 5], 2)
    [[1, 2, 3], [4, 5]]
    """
    if n < 1:
        raise ValueError(f"cannot split into {n} shards")
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return out


def join_shards(shards: Sequence[Sequence[T]]) -> list[T]:
    """The inverse of ``split_shards``.

    >>> join_shards(split_shards(list(range(7)), 3)) == list(range(7))
    True
    """
    return [item for shard in shards for item in shard]


def train_samples(prompt_ids: Sequence[Sequence[int]], groups: Sequence[Sequence[Completion]],
                  advantages: Sequence[Sequence[float]] | None) -> list[TrainSample]:
    """Every response of the step in prompt order, with its advantage (0 when ``None``: an
    embedding pass needs no advantages) and whether it was cut off at the length limit."""
    if len(prompt_ids) != len(groups) or (advantages is not None
                                          and len(advantages) != len(groups)):
        raise ValueError(f"{len(prompt_ids)} prompts, {len(groups)} groups and "
                         f"{'no' if advantages is None else len(advantages)} advantage rows "
                         "must match")
    samples = []
    for i, (prompt, group) in enumerate(zip(prompt_ids, groups, strict=True)):
        advs = [0.0] * len(group) if advantages is None else advantages[i]
        if len(advs) != len(group):
            raise ValueError(f"prompt {i}: {len(group)} completions but {len(advs)} advantages")
        samples += [TrainSample(list(prompt), c.token_ids, a, c.logprobs, c.truncated)
                    for c, a in zip(group, advs, strict=True)]
    return samples


def rank_share(samples: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Rank ``rank``'s contiguous, equal share (GCPO's embedding pass; learning splits each
    mini-batch this way, ``rank_mini_batches``).

    >>> rank_share(list(range(8)), 1, 2)
    [4, 5, 6, 7]
    """
    if len(samples) % world_size:
        raise ValueError(f"{len(samples)} responses do not split evenly over {world_size} "
                         "learner ranks")
    per_rank = len(samples) // world_size
    return list(samples[rank * per_rank:(rank + 1) * per_rank])


def rank_mini_batches(samples: Sequence[T], rank: int, world_size: int,
                      mini_batch_size: int | None) -> list[list[T]]:
    """Rank ``rank``'s share of each optimizer step: global mini-batch m is responses
    [m M, (m + 1) M) in prompt order, and the rank takes its contiguous equal share of each.

    ``mini_batch_size`` None = one mini-batch of every response, i.e. ``[rank_share(...)]``.

    >>> rank_mini_batches(list(range(8)), 1, 2, 4)  # mini-batches [0..3] and [4..7]
    [[2, 3], [6, 7]]
    >>> rank_mini_batches(list(range(8)), 1, 2, None)
    [[4, 5, 6, 7]]
    """
    size = len(samples) if mini_batch_size is None else mini_batch_size
    if size < 1 or len(samples) % size:
        raise ValueError(f"{len(samples)} responses do not split into mini-batches of "
                         f"{mini_batch_size} (train.mini_batch_size must divide P x G)")
    return [rank_share(samples[start:start + size], rank, world_size)
            for start in range(0, len(samples), size)]


# -- a prefetched batch across a checkpoint ----------------------------------------------------
def pending_path(checkpoint_dir: Path, step: int) -> Path:
    """Where the batch generated ahead of the checkpoint at ``step`` is kept."""
    return pending_batch_path(checkpoint_dir, step)


def write_pending(path: Path, *, step: int, prompts: Sequence[TrainPrompt],
                  groups: Sequence[Sequence[Completion]], meta: Sequence[dict[str, Any]],
                  scored: Any) -> None:
    """The prefetched batch for ``step``: prompts, completions, generation facts and scores
    (atomically: a torn file never stands beside a checkpoint)."""
    data = {"step": step, "prompts": [asdict(p) for p in prompts],
            "groups": [[asdict(c) for c in g] for g in groups], "meta": list(meta),
            "scored": scored.to_json()}
    atomic_write_text(path, json.dumps(data))  # fsynced: the trainer state written next needs it


def read_pending(path: Path) -> dict[str, Any]:
    """What ``write_pending`` wrote, with prompts and completions as objects again (the scores
    stay JSON: ``runtime.scorer.ScoredBatch.from_json`` rebuilds them)."""
    data = json.loads(path.read_text())
    data["prompts"] = [TrainPrompt(**p) for p in data["prompts"]]
    data["groups"] = [[Completion(**c) for c in g] for g in data["groups"]]
    return data

"""Per-step metrics with the names the trackers and the report read (ARCHITECTURE.md), and
the per-prompt rows behind them.

Means hide what modulation does: the sweep report plots the distribution of semantic entropy and
of the modulation factor, so each step also appends one row per prompt to ``train/groups.jsonl``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seedgrpo.rollout.types import Completion

__all__ = ["GROUPS_FILE", "TRAIN_METRICS", "append_group_rows", "read_group_rows",
           "rollout_metrics", "learner_metrics", "group_rows", "truncate_group_rows"]

GROUPS_FILE = "groups.jsonl"

TRAIN_METRICS = (
    "train/reward_mean", "train/accuracy", "train/se_mean", "train/factor_mean",
    "train/num_clusters_mean", "train/zero_adv_frac", "train/response_len_mean",
    "train/truncated_frac", "train/loss", "train/clip_frac", "train/kl", "train/grad_norm",
    "train/staleness",
)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def rollout_metrics(groups: Sequence[Sequence[Completion]], scores: Sequence[Any]
                    ) -> dict[str, float]:
    """What a step's completions and group scores say (computed where they are: the scorer)."""
    completions = [c for g in groups for c in g]
    rewards = [r for s in scores for r in s.rewards]
    return {
        "train/reward_mean": _mean(rewards),
        "train/accuracy": _mean([1.0 if r > 0.5 else 0.0 for r in rewards]),
        "train/se_mean": _mean([s.se for s in scores]),
        "train/factor_mean": _mean([s.factor for s in scores]),
        "train/num_clusters_mean": _mean([s.num_clusters for s in scores]),
        "train/zero_adv_frac": _mean([1.0 if all(a == 0 for a in s.advantages) else 0.0
                                      for s in scores]),
        "train/response_len_mean": _mean([len(c.token_ids) for c in completions]),
        "train/truncated_frac": _mean([1.0 if c.truncated else 0.0 for c in completions]),
    }


def learner_metrics(learner_stats: Sequence[dict[str, float]]) -> dict[str, float]:
    """The update's metrics from every rank's summed stats (``LearnerRank.train_step``)."""
    tokens = sum(s["tokens"] for s in learner_stats) or 1.0
    updates = sum(s["token_updates"] for s in learner_stats) or 1.0
    return {
        "train/loss": sum(s["loss"] for s in learner_stats),  # global loss = sum over ranks
        "train/clip_frac": sum(s["clip_frac"] for s in learner_stats) / updates,
        "train/kl": sum(s["kl"] for s in learner_stats) / updates,
        "train/grad_norm": learner_stats[0]["grad_norm"],
        "train/lr": learner_stats[0]["lr"],
        "train/rollout_logprob_diff": sum(s["rollout_logprob_diff"] for s in learner_stats)
        / tokens,
    }


def group_rows(scores: Sequence[Any]) -> list[dict[str, float]]:
    """One row per prompt: its uncertainty, factor, cluster count and mean reward."""
    return [{"se": float(s.se), "factor": float(s.factor),
             "num_clusters": float(s.num_clusters), "reward_mean": _mean(list(s.rewards))}
            for s in scores]


def append_group_rows(path: Path, step: int, rows: Sequence[dict[str, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps({"step": step, **row}) + "\n")


def read_group_rows(path: Path) -> list[dict[str, float]]:
    """The rows of ``path``; a torn last line (a killed trial) is dropped."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def truncate_group_rows(path: Path, last_step: int) -> None:
    """Keep the rows up to ``last_step``: a resumed trial redoes the steps after its checkpoint."""
    if not path.exists():
        return
    kept = [r for r in read_group_rows(path) if r["step"] <= last_step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    tmp.replace(path)

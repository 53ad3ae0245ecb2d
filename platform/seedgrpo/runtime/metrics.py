"""Per-step metrics with the names the trackers and the report read (ARCHITECTURE.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seedgrpo.rollout.types import Completion

__all__ = ["TRAIN_METRICS", "train_metrics"]

TRAIN_METRICS = (
    "train/reward_mean", "train/accuracy", "train/se_mean", "train/factor_mean",
    "train/num_clusters_mean", "train/zero_adv_frac", "train/response_len_mean",
    "train/truncated_frac", "train/loss", "train/clip_frac", "train/kl", "train/grad_norm",
)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def train_metrics(groups: Sequence[Sequence[Completion]], scores: Sequence[Any],
                  learner_stats: Sequence[dict[str, float]]) -> dict[str, float]:
    """Metrics of one step from its completions, group scores and every rank's stats."""
    completions = [c for g in groups for c in g]
    rewards = [r for s in scores for r in s.rewards]
    tokens = sum(s["tokens"] for s in learner_stats) or 1.0
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
        "train/loss": sum(s["loss"] for s in learner_stats),  # global loss = sum over ranks
        "train/clip_frac": sum(s["clip_frac"] for s in learner_stats) / tokens,
        "train/kl": sum(s["kl"] for s in learner_stats) / tokens,
        "train/grad_norm": learner_stats[0]["grad_norm"],
        "train/lr": learner_stats[0]["lr"],
        "train/rollout_logprob_diff": sum(s["rollout_logprob_diff"] for s in learner_stats)
        / tokens,
    }

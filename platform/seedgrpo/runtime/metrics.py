"""Per-step metrics with the names the trackers and the report read (docs/ARCHITECTURE.md,
"Metric names"), and the per-prompt rows behind them.

Means hide what modulation does: the sweep report plots the distribution of semantic entropy and
of the modulation factor, so each step also appends one row per prompt to ``train/groups.jsonl``
(its format and reader: ``seedgrpo.tracking.groups_file``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from seedgrpo.rollout.types import Completion

__all__ = ["TRAIN_METRICS", "rollout_metrics", "learner_metrics", "group_rows",
           "with_prompt_ids"]

TRAIN_METRICS = (
    "train/reward_mean", "train/accuracy", "train/se_mean", "train/uncertainty_mean",
    "train/uncertainty_mean_active", "train/factor_mean", "train/factor_mean_active",
    "train/num_clusters_mean", "train/zero_adv_frac", "train/response_len_mean",
    "train/truncated_frac", "train/loss", "train/clip_frac", "train/kl", "train/grad_norm",
    "train/staleness", "train/optimizer_steps", "train/token_entropy_mean",
)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _zero_advantage(score: Any) -> bool:
    """All advantages zero: the group cannot move the weights, whatever its factor."""
    return all(a == 0 for a in score.advantages)


def _mean_or_nan(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def rollout_metrics(groups: Sequence[Sequence[Completion]], scores: Sequence[Any]
                    ) -> dict[str, float]:
    """What a step's completions and group scores say (computed where they are: the scorer).

    ``train/se_mean`` is the semantic entropy whatever f read; ``train/uncertainty_mean`` is
    what f read (SE, GCPO's U or a plug-in's value). The ``*_active`` means cover only the
    groups whose advantages are not all zero, the ones whose factor can move the weights; with
    no such group in a step they are NaN ("nothing to average"), not 0, which would read as
    "fully suppressed" (MLflow and Tune store NaN).
    """
    completions = [c for g in groups for c in g]
    rewards = [r for s in scores for r in s.rewards]
    active = [s for s in scores if not _zero_advantage(s)]
    return {
        "train/reward_mean": _mean(rewards),
        "train/accuracy": _mean([1.0 if r > 0.5 else 0.0 for r in rewards]),
        "train/se_mean": _mean([s.se for s in scores]),
        "train/uncertainty_mean": _mean([s.uncertainty for s in scores]),
        "train/uncertainty_mean_active": _mean_or_nan([s.uncertainty for s in active]),
        "train/factor_mean": _mean([s.factor for s in scores]),
        "train/factor_mean_active": _mean_or_nan([s.factor for s in active]),
        "train/num_clusters_mean": _mean([s.num_clusters for s in scores]),
        "train/zero_adv_frac": _mean([1.0 if _zero_advantage(s) else 0.0 for s in scores]),
        "train/response_len_mean": _mean([len(c.token_ids) for c in completions]),
        "train/truncated_frac": _mean([1.0 if c.truncated else 0.0 for c in completions]),
    }


def learner_metrics(learner_stats: Sequence[dict[str, float]]) -> dict[str, float]:
    """The update's metrics from every rank's summed stats (``LearnerRank.train_step``).

    ``train/clip_frac`` and ``train/kl``: over every token update (each epoch of each
    mini-batch); ``train/token_entropy_mean`` and ``train/rollout_logprob_diff``: over every
    response token of the step, once; ``train/loss``: the global loss, averaged over the
    ``train/optimizer_steps`` optimizer steps of the step.
    """
    tokens = sum(s["tokens"] for s in learner_stats) or 1.0
    updates = sum(s["token_updates"] for s in learner_stats) or 1.0
    return {
        "train/loss": sum(s["loss"] for s in learner_stats),  # global loss = sum over ranks
        "train/clip_frac": sum(s["clip_frac"] for s in learner_stats) / updates,
        "train/kl": sum(s["kl"] for s in learner_stats) / updates,
        "train/grad_norm": learner_stats[0]["grad_norm"],
        "train/lr": learner_stats[0]["lr"],
        "train/optimizer_steps": learner_stats[0]["optimizer_steps"],
        "train/token_entropy_mean": sum(s["entropy"] for s in learner_stats) / tokens,
        "train/rollout_logprob_diff": sum(s["rollout_logprob_diff"] for s in learner_stats)
        / tokens,
    }


def _cluster_sizes(cluster_ids: Sequence[int]) -> list[int]:
    """Responses per cluster, in cluster-id order (ids number clusters by first appearance)."""
    sizes: dict[int, int] = {}
    for cid in cluster_ids:
        sizes[cid] = sizes.get(cid, 0) + 1
    return [sizes[cid] for cid in sorted(sizes)]


def group_rows(scores: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per prompt: its rewards, clusters, uncertainty (what f read), semantic entropy,
    factor, and whether its advantages are all zero. The driver adds ``step`` and
    ``prompt_id`` (``with_prompt_ids``): the scorer does not know the prompts' ids."""
    return [{"rewards": [float(r) for r in s.rewards],
             "cluster_sizes": _cluster_sizes(s.cluster_ids),
             "uncertainty": float(s.uncertainty), "se": float(s.se), "factor": float(s.factor),
             "num_clusters": float(s.num_clusters), "reward_mean": _mean(list(s.rewards)),
             "zero_advantage": _zero_advantage(s)}
            for s in scores]


def with_prompt_ids(rows: Sequence[dict[str, Any]], prompt_ids: Sequence[str]
                    ) -> list[dict[str, Any]]:
    """``rows`` (in prompt order) with each prompt's id first, so a prompt's uncertainty can be
    followed across steps.

    >>> with_prompt_ids([{"factor": 1.0}], ["p7"])
    [{'prompt_id': 'p7', 'factor': 1.0}]
    """
    if len(rows) != len(prompt_ids):
        raise ValueError(f"{len(rows)} group rows but {len(prompt_ids)} prompt ids; they must "
                         "match")
    return [{"prompt_id": pid, **row} for pid, row in zip(prompt_ids, rows, strict=True)]


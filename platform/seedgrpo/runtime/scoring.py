"""Score one prompt's group: rewards, answers, clusters, uncertainty, factor and advantages.

Pure glue over the algorithm library and the reward (no Ray): the Scorer actor calls it, and
tests call it directly. Every choice goes through a registry (``algorithm.reward``,
``algorithm.uncertainty``, ``algorithm.modulation``), so a plug-in's names work here without an
if-chain. GCPO [recon] reads response embeddings, which the learner ranks compute
(mean-pooled hidden states of the policy, ``learner.batch.response_embeddings``).

``uncertainty`` holds what f read (SE for SEED-GRPO, U for GCPO, whatever a plug-in source
returns); ``se`` holds the semantic entropy of every group whatever the source, so runs of
different sources can be compared on the same axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from seedgrpo.algorithms import GroupContext, extract_answer, uncertainty_advantages
from seedgrpo.algorithms.clustering import cluster_group
from seedgrpo.config.sections import AlgorithmConfig
from seedgrpo.rewards import REWARDS, Verifier
from seedgrpo.rollout.types import Completion
from seedgrpo.runtime.metrics import group_rows, rollout_metrics

__all__ = ["GroupScore", "ScoredBatch", "clustering_metrics", "score_group", "score_batch"]


@dataclass(frozen=True)
class GroupScore:
    rewards: list[float]
    answers: list[str | None]
    cluster_ids: list[int]
    advantages: list[float]
    uncertainty: float  # what f read, before scaling (the source's raw value)
    se: float  # the semantic entropy (configured estimator), whatever f read
    factor: float
    num_clusters: int
    clustering_cost: dict[str, float] = field(default_factory=dict)  # ClusterStats, as floats

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupScore:
        """Rebuild a score saved with ``asdict``; a score saved before ``uncertainty`` existed
        (key ``se`` only: a pending batch of a run resumed across the upgrade) had f read its
        ``se`` slot, so that value is both."""
        data = dict(data)
        if "uncertainty" not in data:
            data["uncertainty"] = data["se"]
        return cls(**data)


def _response_logprobs(completions: Sequence[Completion], algo: AlgorithmConfig
                       ) -> list[float]:
    if algo.logprob_normalization == "mean":
        return [c.mean_logprob for c in completions]
    return [sum(c.logprobs) for c in completions]


def score_group(completions: Sequence[Completion], gold: str, algo: AlgorithmConfig, *,
                verifier: Verifier, embeddings: Sequence[Sequence[float]] | None = None
                ) -> GroupScore:
    """Everything the learner and the metrics need from one group of G completions.

    ``embeddings`` (one row per completion) are required when the uncertainty source needs
    them (``gcpo``).
    """
    reward = REWARDS.get(algo.reward)
    answers = [extract_answer(c.text) for c in completions]
    rewards = [float(reward(c.text, gold, verifier=verifier)) for c in completions]
    clustering = cluster_group(answers, algo.clustering,
                               equivalence=verifier.answer_equivalence(),
                               budget_s=algo.clustering_budget_s)
    cluster_ids = clustering.ids
    cost = {k: float(v) for k, v in asdict(clustering.stats).items()}
    ctx = GroupContext(rewards, answers, cluster_ids, _response_logprobs(completions, algo),
                       embeddings, algo)
    advantages, info = uncertainty_advantages(ctx)
    return GroupScore(rewards=rewards, answers=answers, cluster_ids=cluster_ids,
                      advantages=advantages, uncertainty=info["uncertainty"],
                      se=ctx.semantic_entropy, factor=info["factor"],
                      num_clusters=info["num_clusters"], clustering_cost=cost)


def clustering_metrics(scores: Sequence[GroupScore]) -> dict[str, float]:
    """What a step's clustering cost in math-verify, summed over its groups.

    ``verify_cluster_calls``: equivalence checks; ``verify_budget_exceeded``: groups that spent
    ``algorithm.clustering_budget_s``; ``verify_fallback_answers``: distinct answers clustered
    by exact string because of it; ``verify_unverifiable_answers``: distinct answers clustered
    by exact string because math-verify could not parse them or failed on them;
    ``cluster_distinct_answers``: distinct answers (after whitespace removal);
    ``verify_cluster_parses``: math-verify parses; ``time/cluster_s``: seconds spent clustering.
    """
    names = {"verify_calls": "reward/verify_cluster_calls",
             "budget_exceeded": "reward/verify_budget_exceeded",
             "fallback_answers": "reward/verify_fallback_answers",
             "unverifiable": "reward/verify_unverifiable_answers",
             "distinct": "reward/cluster_distinct_answers",
             "parses": "reward/verify_cluster_parses",
             "seconds": "time/cluster_s"}
    return {metric: float(sum(s.clustering_cost.get(key, 0.0) for s in scores))
            for key, metric in names.items()}


@dataclass(frozen=True)
class ScoredBatch:
    """A step's scores (what the learners need) and its rollout metrics and per-prompt rows
    (what the driver logs)."""

    scores: list[GroupScore]
    metrics: dict[str, float]
    rows: list[dict[str, Any]]

    @property
    def advantages(self) -> list[list[float]]:
        return [s.advantages for s in self.scores]

    def to_json(self) -> dict[str, Any]:
        return {"scores": [asdict(s) for s in self.scores], "metrics": self.metrics,
                "rows": self.rows}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScoredBatch:
        return cls([GroupScore.from_json(s) for s in data["scores"]], data["metrics"],
                   data["rows"])


def score_batch(groups: Sequence[Sequence[Completion]], golds: Sequence[str],
                algo: AlgorithmConfig, *, verifier: Verifier,
                embeddings: Sequence[Sequence[Sequence[float]]] | None = None) -> ScoredBatch:
    """Every group of a step (in prompt order), with the step's rollout metrics."""
    if len(groups) != len(golds) or (embeddings is not None and len(embeddings) != len(groups)):
        raise ValueError(f"{len(groups)} groups, {len(golds)} gold answers and "
                         f"{'no' if embeddings is None else len(embeddings)} embedding rows "
                         "must match")
    per_group = embeddings if embeddings is not None else [None] * len(groups)
    scores = [score_group(g, gold, algo, verifier=verifier, embeddings=e)
              for g, gold, e in zip(groups, golds, per_group, strict=True)]
    return ScoredBatch(scores, {**rollout_metrics(groups, scores), **clustering_metrics(scores)},
                       group_rows(scores))

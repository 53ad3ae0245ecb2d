"""Score one prompt's group: rewards, answers, clusters, uncertainty, factor and advantages.

Pure glue over the algorithm library and the reward (no Ray): the Scorer actor calls it, and
tests call it directly. GCPO [recon] reads response embeddings, which the learner ranks compute
(mean-pooled hidden states of the policy, ``learner.batch.response_embeddings``); its
uncertainty U then fills the ``se`` slot, so the metrics keep one name for "what f reads".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seedgrpo.algorithms import (
    cluster_answers,
    extract_answer,
    gcpo_advantages,
    seed_grpo_advantages,
)
from seedgrpo.config.sections import AlgorithmConfig
from seedgrpo.rewards import Verifier, math_reward
from seedgrpo.rollout.types import Completion

__all__ = ["GroupScore", "score_group"]


@dataclass(frozen=True)
class GroupScore:
    rewards: list[float]
    answers: list[str | None]
    cluster_ids: list[int]
    advantages: list[float]
    se: float
    factor: float
    num_clusters: int


def score_group(completions: Sequence[Completion], gold: str, algo: AlgorithmConfig, *,
                verifier: Verifier, embeddings: Sequence[Sequence[float]] | None = None
                ) -> GroupScore:
    """Everything the learner and the metrics need from one group of G completions.

    ``embeddings`` (one row per completion) are required when ``algo.uncertainty`` is gcpo.
    """
    answers = [extract_answer(c.text) for c in completions]
    rewards = [math_reward(c.text, gold, verifier=verifier) for c in completions]
    cluster_ids = cluster_answers(answers, algo.clustering, verifier=verifier)
    if algo.uncertainty == "gcpo":
        if embeddings is None:
            raise ValueError("algorithm.uncertainty 'gcpo' needs one embedding per completion")
        advantages, info = gcpo_advantages(
            rewards, embeddings, alpha=algo.alpha, fn=algo.modulation,
            measure=algo.gcpo.measure, kappa=algo.gcpo.kappa, baseline=algo.baseline,
            gamma=algo.gamma)
        return GroupScore(rewards, answers, cluster_ids, advantages, info["se"],
                          info["factor"], len(set(cluster_ids)))
    logprobs = ([c.mean_logprob for c in completions] if algo.logprob_normalization == "mean"
                else [sum(c.logprobs) for c in completions])
    advantages, info = seed_grpo_advantages(
        rewards, cluster_ids, None if algo.estimator == "discrete" else logprobs,
        alpha=algo.alpha, fn=algo.modulation, estimator=algo.estimator, baseline=algo.baseline,
        gamma=algo.gamma,
    )
    return GroupScore(rewards, answers, cluster_ids, advantages, info["se"], info["factor"],
                      info["num_clusters"])

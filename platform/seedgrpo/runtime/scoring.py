"""Score one prompt's group: rewards, answers, clusters, uncertainty, factor and advantages.

Pure glue over the algorithm library and the reward (no Ray): the Scorer actor calls it, and
tests call it directly. GCPO needs response embeddings from a model pass, which the runtime does
not compute yet: a GCPO config is refused before the trial starts (see ``check_runtime_support``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from seedgrpo.algorithms import cluster_answers, extract_answer, seed_grpo_advantages
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
                verifier: Verifier) -> GroupScore:
    """Everything the learner and the metrics need from one group of G completions."""
    answers = [extract_answer(c.text) for c in completions]
    rewards = [math_reward(c.text, gold, verifier=verifier) for c in completions]
    cluster_ids = cluster_answers(answers, algo.clustering, verifier=verifier)
    logprobs = ([c.mean_logprob for c in completions] if algo.logprob_normalization == "mean"
                else [sum(c.logprobs) for c in completions])
    advantages, info = seed_grpo_advantages(
        rewards, cluster_ids, None if algo.estimator == "discrete" else logprobs,
        alpha=algo.alpha, fn=algo.modulation, estimator=algo.estimator, baseline=algo.baseline,
        gamma=algo.gamma,
    )
    return GroupScore(rewards, answers, cluster_ids, advantages, info["se"], info["factor"],
                      info["num_clusters"])


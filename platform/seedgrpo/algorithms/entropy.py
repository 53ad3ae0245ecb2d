"""Semantic entropy of one prompt's group of G responses (docs/ALGORITHMS.md section 2, step 4).

Notation: G responses, K clusters C_1..C_K, l_i the length-normalised log-likelihood of response
i under the sampling policy. Cluster probabilities are computed in log space (log-sum-exp), so
log-likelihoods hundreds of nats apart neither underflow to p_k = 0 nor give ``-inf``.

- ``rao`` (default, [3p]): w = softmax(l), p_k = sum of w over C_k, SE = -sum_k p_k ln p_k,
  in [0, ln K] within [0, ln G].
- ``kuhn_mc`` (the formula printed in the paper, [paper]): SE = -(1/K) sum_k ln p_k with the same
  p_k. Non-negative but *not* bounded by ln G: a dominant cluster next to a rare one gives a
  large value (p = (0.999, 0.001) -> 3.45 > ln 2).
- ``discrete`` (needs no log-probs, Farquhar et al. 2024): p_k = |C_k| / G, SE = -sum p_k ln p_k.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence

from seedgrpo.algorithms._checks import as_finite_floats, check_group, check_same_length
from seedgrpo.algorithms.registry import Registry

__all__ = ["SE_ESTIMATORS", "semantic_entropy", "cluster_log_probs"]

EstimatorFn = Callable[[Sequence[int], Sequence[float] | None], float]
SE_ESTIMATORS: Registry[EstimatorFn] = Registry("semantic-entropy estimator")


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def cluster_log_probs(cluster_ids: Sequence[int], logprobs: Sequence[float]) -> dict[int, float]:
    """ln p_k for each cluster k, with w = softmax(logprobs) and p_k = sum of w over C_k.

    >>> lp = cluster_log_probs([0, 0, 1], [0.0, 0.0, 0.0])
    >>> round(math.exp(lp[0]), 4), round(math.exp(lp[1]), 4)
    (0.6667, 0.3333)
    """
    total = _logsumexp(logprobs)
    members: dict[int, list[float]] = {}
    for cid, lp in zip(cluster_ids, logprobs, strict=True):
        members.setdefault(cid, []).append(lp)
    return {cid: _logsumexp(lps) - total for cid, lps in members.items()}


def _require_logprobs(logprobs: Sequence[float] | None, estimator: str) -> Sequence[float]:
    if logprobs is None:
        raise ValueError(
            f"estimator '{estimator}' needs logprobs (one length-normalised log-likelihood per "
            "response); pass them, or use estimator='discrete', which needs none"
        )
    return logprobs


@SE_ESTIMATORS.register("rao")
def _se_rao(cluster_ids: Sequence[int], logprobs: Sequence[float] | None) -> float:
    """SE = -sum_k p_k ln p_k, p_k the softmax mass of cluster k. [3p]"""
    log_p = cluster_log_probs(cluster_ids, _require_logprobs(logprobs, "rao"))
    return max(0.0, -sum(math.exp(lp) * lp for lp in log_p.values()))


@SE_ESTIMATORS.register("kuhn_mc")
def _se_kuhn_mc(cluster_ids: Sequence[int], logprobs: Sequence[float] | None) -> float:
    """SE = -(1/K) sum_k ln p_k (the paper's printed Monte-Carlo form). [paper]"""
    log_p = cluster_log_probs(cluster_ids, _require_logprobs(logprobs, "kuhn_mc"))
    return max(0.0, -sum(log_p.values()) / len(log_p))


@SE_ESTIMATORS.register("discrete")
def _se_discrete(cluster_ids: Sequence[int], logprobs: Sequence[float] | None) -> float:
    """SE = -sum_k p_k ln p_k with p_k = |C_k| / G; log-probs are ignored."""
    counts: dict[int, int] = {}
    for cid in cluster_ids:
        counts[cid] = counts.get(cid, 0) + 1
    g = len(cluster_ids)
    return max(0.0, -sum((c / g) * math.log(c / g) for c in counts.values()))


def semantic_entropy(
    cluster_ids: Sequence[int],
    logprobs: Sequence[float] | None = None,
    estimator: str = "rao",
) -> float:
    """Semantic entropy (nats) of one group from its cluster ids and per-response log-likelihoods.

    ``logprobs`` holds one length-normalised log-likelihood per response (needed by ``rao`` and
    ``kuhn_mc``; ignored by ``discrete``).

    >>> round(semantic_entropy([0, 0, 1, 1], estimator="discrete"), 4)  # ln 2
    0.6931
    >>> semantic_entropy([0, 0, 0, 0], [-1.0, -2.0, -0.5, -3.0])  # one cluster: certain
    0.0
    """
    ids: list[int] = []
    for i, cid in enumerate(cluster_ids):
        try:
            if isinstance(cid, bool):
                raise TypeError
            ids.append(operator.index(cid))  # int, numpy and torch integers alike
        except TypeError:
            raise ValueError(f"cluster_ids[{i}] is {cid!r}; cluster ids must be integers") from None
    check_group(len(ids), name="cluster_ids")
    if logprobs is not None:
        checked = as_finite_floats(logprobs, name="logprobs")
        check_same_length(len(ids), len(checked), a="cluster_ids", b="logprobs")
        logprobs = checked
    return SE_ESTIMATORS.get(estimator)(ids, logprobs)

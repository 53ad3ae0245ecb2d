"""Accuracy estimators over k samples per problem: avg@k, unbiased pass@k, maj@k.

Pure functions of verdicts (``True``/``False`` per sample) and, for maj@k, of answer cluster ids,
so each is tested against hand-computed cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

__all__ = ["avg_at_k", "pass_at_k", "majority_correct", "maj_at_k"]


def avg_at_k(verdicts: Sequence[Sequence[bool]]) -> float:
    """Mean accuracy over all samples of all problems (pass@1 estimated from k samples).

    >>> avg_at_k([[True, False], [False, False]])
    0.25
    """
    _check(verdicts)
    return sum(sum(v) / len(v) for v in verdicts) / len(verdicts)


def _pass_at_k_one(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k): the chance that k of the n samples, drawn without replacement,
    include a correct one (Chen et al. 2021, "Evaluating Large Language Models Trained on
    Code"). Exact integer arithmetic, no product of ratios."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def pass_at_k(verdicts: Sequence[Sequence[bool]], k: int) -> float:
    """The unbiased pass@k estimator, averaged over problems; each problem needs >= k samples.

    >>> pass_at_k([[True, False, False, False]], 2)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    0.5
    """
    _check(verdicts)
    if k < 1:
        raise ValueError(f"k is {k}; it must be >= 1")
    short = [len(v) for v in verdicts if len(v) < k]
    if short:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem; one has {short[0]}")
    return sum(_pass_at_k_one(len(v), sum(v), k) for v in verdicts) / len(verdicts)


def majority_correct(verdicts: Sequence[bool], cluster_ids: Sequence[int | None]) -> bool:
    """Whether the most common answer is correct.

    ``cluster_ids[i]`` groups equivalent answers; ``None`` marks a sample without an answer,
    which never votes. Ties go to the answer that appeared first, so the result does not depend
    on anything but the samples' order. No answer at all is wrong.

    >>> majority_correct([False, True, True, False], [0, 1, 1, 2])
    True
    >>> majority_correct([True, False], [0, 1])  # tie: the first answer wins
    True
    """
    if len(verdicts) != len(cluster_ids):
        raise ValueError(f"{len(verdicts)} verdicts but {len(cluster_ids)} cluster ids")
    counts: dict[int, int] = {}
    first: dict[int, int] = {}
    for i, cid in enumerate(cluster_ids):
        if cid is None:
            continue
        counts[cid] = counts.get(cid, 0) + 1
        first.setdefault(cid, i)
    if not counts:
        return False
    winner = max(counts, key=lambda c: (counts[c], -first[c]))
    return bool(verdicts[first[winner]])


def maj_at_k(verdicts: Sequence[Sequence[bool]],
             cluster_ids: Sequence[Sequence[int | None]]) -> float:
    """Fraction of problems whose majority answer over the k samples is correct.

    >>> maj_at_k([[True, False, True], [False, False, True]], [[0, 1, 0], [0, 0, 1]])
    0.5
    """
    _check(verdicts)
    if len(verdicts) != len(cluster_ids):
        raise ValueError(f"{len(verdicts)} problems of verdicts but {len(cluster_ids)} of "
                         "cluster ids")
    return sum(majority_correct(v, c) for v, c in zip(verdicts, cluster_ids, strict=True)
               ) / len(verdicts)


def _check(verdicts: Sequence[Sequence[bool]]) -> None:
    if not verdicts:
        raise ValueError("no problems to score: an evaluation on nothing has no accuracy")
    if any(len(v) == 0 for v in verdicts):
        raise ValueError("a problem has no samples")

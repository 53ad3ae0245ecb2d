"""The statistics of the gradient-variance diagnostic (docs/ALGORITHMS.md section 5).

GCPO's central claim is that a reward-calibrated geometric uncertainty U tracks how much a
group's policy gradients disagree better than semantic entropy does. The learner ranks measure
the disagreement (``seedgrpo.learner.gradient_probe``): for every response i of a group, the
gradient g_i of its own policy-gradient term, projected on K shared random Gaussian directions
z_1..z_K ~ N(0, I). Since E[(z . v)^2] = ||v||^2 for such z, the projections give an unbiased
estimate of the trace of the group's gradient covariance (its "gradient variance")::

    y_i = (z_1 . g_i, ..., z_K . g_i)                    # K numbers per response
    var = sum_i ||y_i - mean(y)||^2 / ((n - 1) K)        # ~ tr Cov(g) = E ||g_i - mean(g)||^2

so no rank ever holds more than K numbers per response, whatever the model's size. This module
turns those rows into one measure per group and its Spearman rank correlation with each
uncertainty. Pure numpy: no torch, no Ray.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "average_ranks",
    "spearman",
    "projected_variance",
    "group_gradient_variances",
    "gradient_variance_metrics",
    "MIN_GROUPS",
]

MIN_GROUPS = 3  # a rank correlation of two points is always +-1: it says nothing


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of the ranks they span.

    >>> average_ranks([10.0, 20.0, 10.0, 30.0]).tolist()
    [1.5, 3.0, 1.5, 4.0]
    """
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size, dtype=np.float64)
    sorted_x = x[order]
    start = 0
    while start < x.size:
        end = start + 1
        while end < x.size and sorted_x[end] == sorted_x[start]:
            end += 1
        ranks[order[start:end]] = (start + end + 1) / 2.0  # mean of ranks start+1 .. end
        start = end
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's correlation of the average ranks (ties handled).

    NaN when fewer than ``MIN_GROUPS`` pairs, or when either side is constant (no ranking).

    >>> spearman([1, 2, 3, 4], [10, 20, 30, 40]), spearman([1, 2, 3], [3, 2, 1])
    (1.0, -1.0)
    >>> round(spearman([1, 2, 2, 3], [1, 3, 2, 4]), 6)  # a tie on the left
    0.948683
    >>> spearman([1, 2], [1, 2])
    nan
    """
    if len(x) != len(y):
        raise ValueError(f"spearman needs pairs: {len(x)} values against {len(y)}")
    if len(x) < MIN_GROUPS:
        return math.nan
    rx, ry = average_ranks(x), average_ranks(y)
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    if denominator == 0.0:
        return math.nan
    return float(max(-1.0, min(1.0, float((dx * dy).sum()) / denominator)))


def projected_variance(projections: Sequence[Sequence[float]] | np.ndarray) -> float:
    """tr Cov(g) estimated from n >= 2 rows of K projections: the unbiased sample covariance's
    trace, divided by K (see the module docstring).

    >>> projected_variance([[1.0, 0.0], [-1.0, 0.0]])  # ||y_i - mean||^2 = 1 each: 2 / (1 * 2)
    1.0
    >>> projected_variance([[0.5, 2.0], [0.5, 2.0], [0.5, 2.0]])  # identical gradients
    0.0
    """
    y = np.asarray(projections, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] < 1:
        raise ValueError(f"projections has shape {y.shape}; expected (n >= 2, K >= 1)")
    if not np.isfinite(y).all():
        raise ValueError("projections contains NaN or infinite values")
    centred = y - y.mean(axis=0)
    return float((centred * centred).sum() / ((y.shape[0] - 1) * y.shape[1]))


def group_gradient_variances(projections: Sequence[Sequence[float] | None], group_size: int
                             ) -> list[float | None]:
    """One measure per group of ``group_size`` consecutive responses (prompt order, as the
    ranks' shares put together give them); None for a group whose rows are None (its
    advantages are all zero, so every gradient is zero: it is left out, not measured as 0).

    >>> group_gradient_variances([[1.0], [-1.0], None, None], 2)
    [2.0, None]
    """
    if group_size < 2 or len(projections) % group_size:
        raise ValueError(f"{len(projections)} projection rows do not form groups of "
                         f"{group_size} (G >= 2)")
    out: list[float | None] = []
    for start in range(0, len(projections), group_size):
        rows = projections[start:start + group_size]
        if all(r is None for r in rows):
            out.append(None)
        elif any(r is None for r in rows):
            raise ValueError(f"group {start // group_size} is measured for some responses only")
        else:
            out.append(projected_variance(rows))
    return out


def gradient_variance_metrics(variances: Sequence[float | None], se: Sequence[float],
                              u: Sequence[float] | None) -> dict[str, float]:
    """``diag/*`` of a diagnostic step: the rank correlation of the measured groups' gradient
    variance with their semantic entropy and with GCPO's U (NaN without U or with fewer than
    ``MIN_GROUPS`` measured groups), and how many groups were measured and left out.

    >>> m = gradient_variance_metrics([1.0, None, 3.0, 2.0], [0.1, 0.9, 0.3, 0.2], None)
    >>> m["diag/gradvar_spearman_se"], m["diag/gradvar_groups"], m["diag/gradvar_excluded"]
    (1.0, 3.0, 1.0)
    """
    if len(se) != len(variances) or (u is not None and len(u) != len(variances)):
        raise ValueError(f"{len(variances)} group variances, {len(se)} SE values and "
                         f"{'no' if u is None else len(u)} U values must match")
    measured = [i for i, v in enumerate(variances) if v is not None]
    var = [float(variances[i]) for i in measured]  # type: ignore[arg-type]
    return {
        "diag/gradvar_spearman_se": spearman(var, [se[i] for i in measured]),
        "diag/gradvar_spearman_u": (math.nan if u is None
                                    else spearman(var, [u[i] for i in measured])),
        "diag/gradvar_groups": float(len(measured)),
        "diag/gradvar_excluded": float(len(variances) - len(measured)),
        "diag/gradvar_mean": float(np.mean(var)) if var else math.nan,
    }

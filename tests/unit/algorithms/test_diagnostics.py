"""The statistics of the gradient-variance diagnostic (seedgrpo.algorithms.diagnostics)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seedgrpo.algorithms.diagnostics import (
    average_ranks,
    gradient_variance_metrics,
    group_gradient_variances,
    projected_variance,
    spearman,
)


def test_average_ranks_share_ties() -> None:
    assert average_ranks([3.0, 1.0, 3.0, 3.0, 2.0]).tolist() == [4.0, 1.0, 4.0, 4.0, 2.0]
    assert average_ranks([]).tolist() == []


@pytest.mark.parametrize(("x", "y", "expected"), [
    ([1, 2, 3, 4, 5], [5, 6, 7, 8, 7], 0.8207826816681233),  # tie on the right
    ([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], 0.8),  # no ties: 1 - 6 sum d^2 / (n (n^2 - 1))
    ([1, 1, 2, 2], [1, 2, 3, 4], 0.8944271909999159),  # two ties on the left
    ([0.1, 0.5, 0.2], [10.0, -3.0, 40.0], -0.5),
])
def test_spearman_exact_values(x, y, expected) -> None:
    assert spearman(x, y) == pytest.approx(expected, abs=1e-12)


def test_spearman_matches_pearson_of_ranks_on_random_data_with_ties() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 40).astype(float), rng.normal(size=40)
    rx, ry = average_ranks(x), average_ranks(y)
    assert spearman(x, y) == pytest.approx(float(np.corrcoef(rx, ry)[0, 1]), abs=1e-12)


def test_spearman_is_nan_without_a_ranking() -> None:
    assert math.isnan(spearman([1, 2], [2, 1]))  # fewer than 3 pairs
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))  # a constant side
    with pytest.raises(ValueError, match="3 values against 2"):
        spearman([1, 2, 3], [1, 2])


def test_projected_variance_is_the_unbiased_trace_over_directions() -> None:
    y = np.array([[1.0, 2.0], [3.0, 0.0], [2.0, 4.0]])
    expected = np.cov(y, rowvar=False).trace() / 2  # sample covariance (n - 1), / K
    assert projected_variance(y) == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"expected \(n >= 2, K >= 1\)"):
        projected_variance([[1.0, 2.0]])
    with pytest.raises(ValueError, match="NaN"):
        projected_variance([[1.0], [math.nan]])


def test_groups_are_consecutive_and_zero_advantage_groups_left_out() -> None:
    rows = [[1.0], [3.0], None, None, [0.0], [0.0]]
    assert group_gradient_variances(rows, 2) == [2.0, None, 0.0]
    with pytest.raises(ValueError, match="some responses only"):
        group_gradient_variances([[1.0], None], 2)
    with pytest.raises(ValueError, match="do not form groups of 4"):
        group_gradient_variances(rows, 4)


def test_metrics_correlate_the_measured_groups_only() -> None:
    variances = [4.0, None, 1.0, 2.0, 3.0]
    se = [0.9, 0.0, 0.1, 0.3, 0.2]  # the left-out group's 0.0 must not count
    u = [0.1, 5.0, 0.4, 0.3, 0.2]
    m = gradient_variance_metrics(variances, se, u)
    assert m["diag/gradvar_spearman_se"] == pytest.approx(0.8)
    assert m["diag/gradvar_spearman_u"] == pytest.approx(-1.0)
    assert (m["diag/gradvar_groups"], m["diag/gradvar_excluded"]) == (4.0, 1.0)
    assert m["diag/gradvar_mean"] == pytest.approx(2.5)
    few = gradient_variance_metrics([1.0, 2.0, None], [0.1, 0.2, 0.3], None)
    assert math.isnan(few["diag/gradvar_spearman_se"])  # 2 measured groups
    assert math.isnan(few["diag/gradvar_spearman_u"])  # no U

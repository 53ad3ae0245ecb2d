"""The report's statistics: bootstrap intervals, the paired sign-flip test, the power estimate.

Each is checked against a case whose answer is known independently: a distribution's true mean,
a p-value enumerated by hand, the normal-approximation formula written out.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from seedgrpo.sweep.statistics import (
    align_blocks,
    block_mean,
    bootstrap,
    compare_paired,
    difference_by_seed,
    metric_benchmarks,
    power_z,
    problem_scores,
    sign_flip_p_value,
    size_needed,
)


def test_block_mean_weighs_benchmarks_equally_whatever_their_size() -> None:
    # eval/avg/pass_at_1 is the unweighted mean over benchmarks: 2 problems count as much as 4
    blocks = {"small": np.array([[1.0, 0.0], [1.0, 1.0]]),
              "large": np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])}
    # seed 0: (0.5 + 0) / 2 = 0.25; seed 1: (1 + 0.25) / 2 = 0.625; mean 0.4375
    assert block_mean(blocks) == pytest.approx(0.4375)


def test_bootstrap_interval_contains_the_true_mean_at_its_level() -> None:
    """Coverage on a known case: seed effects N(0, 0.05), problem effects N(0, 0.1) around a
    true mean of 0.3, crossed design of 4 seeds x 60 problems. A 95% interval must cover the
    truth in about 95% of datasets (the two-way bootstrap errs wide, never narrow)."""
    rng = np.random.default_rng(1)
    truth, covered, trials = 0.3, 0, 120
    for i in range(trials):
        seed_effect = rng.normal(0, 0.05, size=(4, 1))
        problem_effect = rng.normal(0, 0.1, size=(1, 60))
        noise = rng.normal(0, 0.05, size=(4, 60))
        result = bootstrap({"b": truth + seed_effect + problem_effect + noise},
                           resamples=500, seed=i)
        covered += result.low <= truth <= result.high
        assert result.low <= result.estimate <= result.high
    assert 0.85 <= covered / trials <= 1.0


def test_bootstrap_is_seeded_and_degenerate_data_has_a_point_interval() -> None:
    blocks = {"b": np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])}
    assert bootstrap(blocks) == bootstrap(blocks)  # the same sweep, the same interval
    flat = bootstrap({"b": np.full((2, 5), 0.4)})
    assert (flat.low, flat.estimate, flat.high, flat.se) == pytest.approx((0.4, 0.4, 0.4, 0.0))


def test_bootstrap_of_one_seed_matches_the_normal_interval_of_a_mean() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(0.5, 0.2, size=400)
    result = bootstrap({"b": values[None, :]}, resamples=4000)
    half = 1.96 * values.std(ddof=1) / math.sqrt(values.size)
    assert result.se_seeds == 0.0  # one seed: no seed noise can be seen
    assert result.low == pytest.approx(values.mean() - half, abs=0.004)
    assert result.high == pytest.approx(values.mean() + half, abs=0.004)


def test_sign_flip_p_value_by_exact_enumeration_computed_by_hand() -> None:
    # differences 1, 1, -0.5 (weights equal): the 8 sign patterns give sums
    # +-2.5, +-1.5, +-0.5, +-0.5; |sum| >= 1.5 in 4 of 8
    assert sign_flip_p_value({"b": np.array([[1.0, 1.0, -0.5]])}) == (0.5, True)
    # a zero difference cannot move the statistic: it is left out of the enumeration
    assert sign_flip_p_value({"b": np.array([[1.0, 0.0, 1.0, 0.0, 1.0]])}) == (0.25, True)
    # nothing differs: p = 1
    assert sign_flip_p_value({"b": np.zeros((2, 3))}) == (1.0, True)
    # weights: benchmark a (1 problem) and b (2 problems) count half each, so the cells
    # contribute 1/2, -1/4 and 1/4 (observed 0.5); of the 8 sums +-0.5 +-0.25 +-0.25, those
    # reaching |0.5| are +-1 and four of +-0.5: 6 of 8
    blocks = {"a": np.array([[1.0]]), "b": np.array([[-1.0, 1.0]])}
    assert sign_flip_p_value(blocks) == (0.75, True)


def test_sign_flip_monte_carlo_has_the_plus_one_correction() -> None:
    diffs = {"b": np.ones((2, 20))}  # 40 equal differences: no random pattern reaches it
    p, exact = sign_flip_p_value(diffs, resamples=999)
    assert not exact
    assert p == pytest.approx(1 / 1000)


def test_power_estimate_follows_the_normal_approximation() -> None:
    z = power_z()
    normal = NormalDist()
    assert z == pytest.approx(normal.inv_cdf(0.975) + normal.inv_cdf(0.8))
    delta, se_s, se_p = 0.05, 0.015, 0.01  # variance 3.25e-4 > target 3.19e-4
    target = (delta / z) ** 2
    needed = size_needed(delta, se_s, se_p, seeds=3, problems=40)
    assert needed.seeds == math.ceil(3 * se_s ** 2 / (target - se_p ** 2))
    assert needed.problems == math.ceil(40 * se_p ** 2 / (target - se_s ** 2))
    assert (needed.seeds, needed.problems) == (4, 43)  # 3.09 -> 4, 42.8 -> 43
    # the problem noise alone exceeds the target: no number of seeds resolves it
    assert size_needed(0.01, 0.001, 0.01, seeds=2, problems=30).seeds is None
    # one seed: its variance is unknown, so no seed count is claimed
    assert size_needed(0.05, 0.0, 0.01, seeds=1, problems=30).seeds is None
    assert size_needed(0.0, 0.02, 0.01, seeds=2, problems=30) == size_needed(
        float("nan"), 0.02, 0.01, seeds=2, problems=30)


def test_problem_scores_per_metric() -> None:
    rows = [{"benchmark": "amc23", "id": "a", "correct": c} for c in (True, False, False, True)]
    rows += [{"benchmark": "aime24", "id": "x", "correct": True},
             {"benchmark": "heldout", "id": "h", "correct": False}]
    # avg: heldout is left out when real benchmarks ran; avg@4 of problem a is 2/4
    assert problem_scores(rows, "eval/avg/pass_at_1") == {"amc23": {"a": 0.5},
                                                          "aime24": {"x": 1.0}}
    assert problem_scores(rows, "eval/amc23/avg_at_4") == {"amc23": {"a": 0.5}}
    # unbiased pass@2 of 2 correct in 4: 1 - C(2,2)/C(4,2) = 5/6
    assert problem_scores(rows, "eval/amc23/pass_at_2") == {"amc23": {"a": pytest.approx(5 / 6)}}
    assert problem_scores(rows, "eval/aime24/pass_at_2") is None  # 1 sample cannot give it
    assert problem_scores(rows, "eval/avg/maj_at_4") is None  # needs the grader's equality
    assert metric_benchmarks("eval/math500/pass_at_1", ["heldout"]) == []


def test_paired_comparison_lines_up_seeds_and_problems() -> None:
    treated = {0: {"b": {"p": 1.0, "q": 1.0}}, 1: {"b": {"r": 1.0, "s": 0.0}}, 2: {"b": {}}}
    baseline = {0: {"b": {"p": 0.0, "q": 1.0}}, 1: {"b": {"r": 0.0, "s": 0.0}}}
    diffs = difference_by_seed(treated, baseline)
    assert diffs == {0: {"b": {"p": 1.0, "q": 0.0}}, 1: {"b": {"r": 1.0, "s": 0.0}}}
    # seeds drew different subsets (nested): columns line up by position within each seed
    assert align_blocks(diffs)["b"].tolist() == [[1.0, 0.0], [1.0, 0.0]]
    comparison = compare_paired(treated, baseline)
    assert comparison is not None
    assert comparison.delta.estimate == pytest.approx(0.5)
    assert comparison.p_value == 0.5 and comparison.exact  # 2 cells of +1: 2 of 4 reach 2
    assert not comparison.distinguishable
    assert compare_paired({5: {"b": {"p": 1.0}}}, baseline) is None  # no seed in common


def test_bad_blocks_are_refused_with_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="same seeds"):
        block_mean({"a": np.zeros((2, 3)), "b": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap({})

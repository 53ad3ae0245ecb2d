"""Modulation, advantages and GCPO geometry, with the arithmetic written out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seedgrpo.algorithms import (
    barycentric_transport,
    cosine_dispersion,
    gcpo_advantages,
    gcpo_uncertainty,
    group_advantages,
    modulate,
    reward_dispersion,
    seed_grpo_advantages,
)


# -- modulation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("x", "fn", "expected"),
    [
        (0.25, "linear", 0.75),  # 1 - 0.25
        (2.0, "linear", 0.0),  # max(0, 1 - 2)
        (1.0, "exp", math.exp(-1)),  # 0.367879
        (0.5, "focal", 0.25),  # (1 - 0.5) ** 2
        (1.5, "focal", 0.0),  # max(0, -0.5) ** 2
        (1.0, "inverse", 0.5),  # 1 / (1 + 1)
        (7.0, "none", 1.0),
        (0.0, "linear", 1.0),  # every f(0) = 1
        (0.0, "exp", 1.0),
        (0.0, "focal", 1.0),
        (0.0, "inverse", 1.0),
    ],
)
def test_modulate_values(x: float, fn: str, expected: float) -> None:
    assert modulate(x, fn) == pytest.approx(expected)


def test_focal_gamma() -> None:
    assert modulate(0.5, "focal", gamma=3.0) == pytest.approx(0.125)  # 0.5 ** 3


@pytest.mark.parametrize(
    ("x", "fn", "gamma", "message"),
    [
        (-0.1, "linear", 2.0, "must be finite and >= 0"),
        (float("nan"), "linear", 2.0, "must be finite"),
        (0.5, "focal", 0.0, "gamma is 0.0"),
        (0.5, "cubic", 2.0, "unknown modulation function 'cubic'; known: none, linear, exp, focal"),
    ],
)
def test_modulate_rejects_bad_input(x: float, fn: str, gamma: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        modulate(x, fn, gamma)


# -- group advantages ------------------------------------------------------------------------
def test_dr_grpo_advantages() -> None:
    # rewards [1, 0, 0, 1] -> mean 0.5 -> [0.5, -0.5, -0.5, 0.5]
    assert group_advantages([1, 0, 0, 1], "dr_grpo") == [0.5, -0.5, -0.5, 0.5]


def test_grpo_advantages_use_sample_std() -> None:
    # rewards [1, 0, 0, 0]: mean 0.25, sample std sqrt((0.75^2 + 3 * 0.25^2) / 3) = 0.5
    # -> [0.75, -0.25, -0.25, -0.25] / (0.5 + 1e-6) = [1.5, -0.5, -0.5, -0.5] (to 1e-5)
    adv = group_advantages([1, 0, 0, 0], "grpo")
    assert adv == pytest.approx([1.5, -0.5, -0.5, -0.5], abs=1e-5)


@pytest.mark.parametrize("baseline", ["dr_grpo", "grpo"])
def test_equal_rewards_give_zero_advantages(baseline: str) -> None:
    assert group_advantages([1, 1, 1], baseline) == [0.0, 0.0, 0.0]
    assert group_advantages([0, 0], baseline) == [0.0, 0.0]


@pytest.mark.parametrize(
    ("rewards", "baseline", "message"),
    [
        ([1.0], "dr_grpo", "rewards has 1 response"),
        ([], "dr_grpo", "rewards is empty"),
        ([1.0, float("inf")], "dr_grpo", r"rewards\[1\] is inf"),
        ([1.0, 0.0], "rloo", "unknown advantage baseline 'rloo'"),
    ],
)
def test_group_advantages_reject_bad_input(rewards: list, baseline: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        group_advantages(rewards, baseline)


# -- SEED-GRPO -------------------------------------------------------------------------------
def test_seed_grpo_hand_computed() -> None:
    # rewards [1, 0, 0, 0], clusters [0, 1, 1, 2], discrete: p = (1/4, 1/2, 1/4)
    # SE = -(2 * 0.25 ln 0.25 + 0.5 ln 0.5) = 0.693147 + 0.346574 = 1.039721
    # x = alpha * SE / ln G = 1.039721 / 1.386294 = 0.75 -> linear f = 0.25
    # Dr. GRPO advantages [0.75, -0.25, -0.25, -0.25] * 0.25
    adv, info = seed_grpo_advantages([1, 0, 0, 0], [0, 1, 1, 2], None, alpha=1.0, fn="linear",
                                     estimator="discrete")
    assert info["uncertainty"] == pytest.approx(1.039721, abs=1e-6)
    assert info["x"] == pytest.approx(0.75)
    assert info["factor"] == pytest.approx(0.25)
    assert info["num_clusters"] == 3
    assert adv == pytest.approx([0.1875, -0.0625, -0.0625, -0.0625])


def test_seed_grpo_inverse_with_rao() -> None:
    # G = 2 singletons, equal log-probs: SE = ln 2 = SE_max, x = alpha = 0.5 -> f = 1 / 1.5
    adv, info = seed_grpo_advantages([1, 0], [0, 1], [-0.3, -0.3], alpha=0.5, fn="inverse")
    assert info["factor"] == pytest.approx(2 / 3)
    assert adv == pytest.approx([0.5 * 2 / 3, -0.5 * 2 / 3])


def test_seed_grpo_none_keeps_advantages_but_reports_se() -> None:
    adv, info = seed_grpo_advantages([1, 0, 1], [0, 1, 2], [0.0] * 3, alpha=1.0, fn="none")
    assert info["factor"] == 1.0 and info["uncertainty"] == pytest.approx(math.log(3))
    assert adv == pytest.approx(group_advantages([1, 0, 1]))


def test_seed_grpo_all_answers_none_is_max_uncertainty() -> None:
    # every response unanswered -> G singletons -> SE = ln G -> x = alpha -> linear f = 1 - alpha
    _, info = seed_grpo_advantages([0, 0, 0, 1], [0, 1, 2, 3], [0.0] * 4, alpha=0.4, fn="linear")
    assert info["factor"] == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("rewards", "cluster_ids", "logprobs", "alpha", "message"),
    [
        ([1, 0], [0], [0.0], 1.0, "rewards has 2 entries but cluster_ids has 1"),
        ([1], [0], [0.0], 1.0, "at least 2"),
        ([1, 0], [0, 1], [0.0, 0.0], -1.0, "alpha is -1"),
        ([1, 0], [0, 1], [0.0, float("nan")], 1.0, r"logprobs\[1\] is nan"),
        ([1, 0], [0, 1], None, 1.0, "needs logprobs"),
    ],
)
def test_seed_grpo_rejects_bad_input(rewards, cluster_ids, logprobs, alpha, message) -> None:
    with pytest.raises(ValueError, match=message):
        seed_grpo_advantages(rewards, cluster_ids, logprobs, alpha=alpha, fn="linear",
                             estimator="rao")


# -- GCPO geometry (reconstruction) ----------------------------------------------------------
def test_cosine_dispersion_cases() -> None:
    assert cosine_dispersion([[1, 0], [0, 3]]) == pytest.approx(1.0)  # orthogonal: 1 - 0
    assert cosine_dispersion([[1, 0], [2, 0]]) == pytest.approx(0.0)  # same direction
    assert cosine_dispersion([[1, 0], [-1, 0]]) == pytest.approx(2.0)  # opposite = G/(G-1)
    # three unit vectors 120 degrees apart: mean 0 -> CD = 3/2 (1 - 0) = G/(G-1)
    tri = [[1, 0], [-0.5, math.sqrt(3) / 2], [-0.5, -math.sqrt(3) / 2]]
    assert cosine_dispersion(tri) == pytest.approx(1.5)


def test_cosine_dispersion_equals_closed_form() -> None:
    # CD = G/(G-1) * (1 - ||mean of unit rows||^2) (docs/ALGORITHMS.md section 4)
    rng = np.random.default_rng(0)
    e = rng.normal(size=(6, 5))
    unit = e / np.linalg.norm(e, axis=1, keepdims=True)
    closed = 6 / 5 * (1 - np.linalg.norm(unit.mean(axis=0)) ** 2)
    assert cosine_dispersion(e) == pytest.approx(closed)


def test_barycentric_transport_cases() -> None:
    assert barycentric_transport([[1, 0], [-1, 0]]) == pytest.approx(1.0)
    assert barycentric_transport([[1, 0], [1, 0]]) == pytest.approx(0.0)
    # weights (0.75, 0.25) on opposite unit vectors: e_bar = (0.5, 0);
    # 0.75 * 0.5^2 + 0.25 * 1.5^2 = 0.1875 + 0.5625 = 0.75 = 1 - ||e_bar||^2
    assert barycentric_transport([[1, 0], [-1, 0]], [3, 1]) == pytest.approx(0.75)


def test_reward_dispersion_cases() -> None:
    assert reward_dispersion([1, 0, 1, 0]) == 1.0  # std 0.5
    # [1, 0, 0, 0]: population std sqrt(0.25 * 0.75) = 0.433013 -> / 0.5 = 0.866025
    assert reward_dispersion([1, 0, 0, 0]) == pytest.approx(0.866025, abs=1e-6)
    assert reward_dispersion([1, 1]) == 0.0


def test_gcpo_uncertainty_hand_computed() -> None:
    # 4 orthonormal rows: ||mean||^2 = 4 / 16 = 0.25 -> CD = 4/3 * 0.75 = 1 -> / (4/3) = 0.75
    # rewards [1, 0, 0, 0] -> RD_n = 0.866025; kappa 2 -> (1 - 0.866025)^2 = 0.017949
    # U = 0.75 * 0.017949 = 0.013462
    u = gcpo_uncertainty(np.eye(4), [1, 0, 0, 0], measure="cd", kappa=2.0)
    assert u == pytest.approx(0.013462, abs=1e-6)
    # full reward contrast removes all uncertainty; none keeps the geometry
    assert gcpo_uncertainty(np.eye(2), [1, 0]) == 0.0
    assert gcpo_uncertainty(np.eye(2), [1, 1]) == pytest.approx(0.5)
    assert gcpo_uncertainty([[1, 0], [-1, 0]], [1, 1], measure="bot") == pytest.approx(1.0)


def test_gcpo_advantages_modulate_by_u() -> None:
    # 4 orthonormal rows: CD_n = 0.75; rewards [1, 0, 0, 0]: RD_n = 0.866025, kappa 1
    # U = 0.75 * (1 - 0.866025) = 0.100481; alpha 1, linear: f = 0.899519
    # Dr. GRPO advantages [0.75, -0.25, -0.25, -0.25] * f
    adv, info = gcpo_advantages([1, 0, 0, 0], np.eye(4), alpha=1.0, fn="linear",
                                answers=["1", "1", "2", None])
    assert info["uncertainty"] == pytest.approx(0.100481, abs=1e-6)
    assert info["factor"] == pytest.approx(0.899519, abs=1e-6)
    assert info["num_clusters"] == 3  # {1}, {2}, {None}
    assert adv == pytest.approx([0.75 * 0.899519, -0.25 * 0.899519, -0.25 * 0.899519,
                                 -0.25 * 0.899519], abs=1e-6)


def test_gcpo_full_reward_contrast_means_no_modulation() -> None:
    # rewards [1, 1, 0, 0]: RD_n = 1 -> U = 0 whatever the geometry -> f = 1
    adv, info = gcpo_advantages([1, 1, 0, 0], np.eye(4), alpha=1.0, fn="linear")
    assert info["factor"] == 1.0 and adv == [0.5, 0.5, -0.5, -0.5]


def test_geometry_survives_huge_entries() -> None:
    # rows (1e300, 0) and (1e300, 1e300): cos 45 degrees -> CD = 1 - 0.707107
    assert cosine_dispersion([[1e300, 0.0], [1e300, 1e300]]) == pytest.approx(0.292893, abs=1e-6)


def test_modulate_rejects_non_numbers() -> None:
    with pytest.raises(ValueError, match="gamma is '2'; it must be a number"):
        modulate(0.5, "focal", "2")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cosine_dispersion([[1, 0]]), "at least 2"),
        (lambda: cosine_dispersion([[1, 0], [0, 0]]), "row 1 is all zeros"),
        (lambda: cosine_dispersion([[1, 0], [float("nan"), 1]]), "NaN or infinite"),
        (lambda: cosine_dispersion([1, 0]), r"expected \(G, D\)"),
        (lambda: barycentric_transport([[1, 0], [0, 1]], [1, -1]), ">= 0"),
        (lambda: reward_dispersion([2, 0]), r"lie in \[0, 1\]"),
        (lambda: gcpo_uncertainty(np.eye(2), [1, 0, 0]), "embeddings has 2 entries"),
        (lambda: gcpo_uncertainty(np.eye(2), [1, 0], measure="cd", weights=[1, 1]), "bot"),
        (lambda: gcpo_uncertainty(np.eye(2), [1, 0], measure="emd"), "unknown GCPO geometry"),
    ],
)
def test_geometry_rejects_bad_input(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()

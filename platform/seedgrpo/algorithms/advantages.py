"""Group-relative advantages and their uncertainty modulation (docs/ALGORITHMS.md section 2).

One prompt, G responses. The baseline turns rewards into advantages; SEED-GRPO then multiplies
every advantage of the group by one factor f(alpha * SE / ln G); GCPO by f(alpha * U). A group
whose rewards are all equal has zero advantages whatever the factor, but its SE is still
reported, since the distribution of SE over prompts is what a sweep report plots.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np

from seedgrpo.algorithms._checks import as_finite_floats, check_group, check_same_length
from seedgrpo.algorithms.clustering import cluster_answers
from seedgrpo.algorithms.modulation import modulate
from seedgrpo.algorithms.registry import Registry
from seedgrpo.algorithms.uncertainty import GroupContext, measure_uncertainty

__all__ = [
    "BASELINES",
    "ModulationInfo",
    "group_advantages",
    "modulated_advantages",
    "AdvantageSettings",
    "GcpoSettings",
    "uncertainty_advantages",
    "seed_grpo_advantages",
    "gcpo_advantages",
]

BaselineFn = Callable[[list[float]], list[float]]
BASELINES: Registry[BaselineFn] = Registry("advantage baseline")

GRPO_STD_EPS = 1e-6  # as TRL and verl: keeps groups with std 0 at advantage 0, not NaN


@BASELINES.register("dr_grpo")
def _dr_grpo(rewards: list[float]) -> list[float]:
    """A_i = r_i - mean(r): Dr. GRPO, the paper's base (no std division). [paper]"""
    mean = sum(rewards) / len(rewards)
    return [r - mean for r in rewards]


@BASELINES.register("grpo")
def _grpo(rewards: list[float]) -> list[float]:
    """A_i = (r_i - mean(r)) / (std(r) + 1e-6), sample std (ddof = 1) as TRL and verl."""
    mean = sum(rewards) / len(rewards)
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (len(rewards) - 1))
    return [(r - mean) / (std + GRPO_STD_EPS) for r in rewards]


def group_advantages(rewards: Sequence[float], baseline: str = "dr_grpo") -> list[float]:
    """Advantages of one group of G >= 2 rewards.

    >>> group_advantages([1, 0, 0, 1])  # mean 0.5
    [0.5, -0.5, -0.5, 0.5]
    """
    r = as_finite_floats(rewards, name="rewards")
    check_group(len(r), name="rewards")
    return BASELINES.get(baseline)(r)


def modulated_advantages(rewards: Sequence[float], factor: float,
                         baseline: str = "dr_grpo") -> list[float]:
    """``group_advantages(rewards) * factor``: one factor scales the whole group.

    >>> modulated_advantages([1, 0, 0, 1], 0.5)
    [0.25, -0.25, -0.25, 0.25]
    """
    return [a * factor for a in group_advantages(rewards, baseline)]


class ModulationInfo(TypedDict):
    """Per-prompt diagnostics that the trainer logs (``train/uncertainty_mean``,
    ``train/factor_mean``)."""

    uncertainty: float  # what f read before scaling: SE in nats (SEED) or U in [0, 1] (GCPO)
    x: float  # the scaled uncertainty that f saw
    factor: float  # f(x), in [0, 1]
    num_clusters: int  # K answer clusters (GCPO: clusters of the answers, for comparison)


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha < 0.0:
        raise ValueError(f"alpha is {alpha}; it must be finite and >= 0")
    return alpha


def uncertainty_advantages(ctx: GroupContext) -> tuple[list[float], ModulationInfo]:
    """The one path from a scored group to its advantages: the configured uncertainty source
    gives x, the modulation f(x) a factor, and the factor scales the group's advantages.

    ``ctx.algo`` names the source, f, gamma and the baseline (an ``AlgorithmConfig``, or
    :class:`AdvantageSettings`). The trainer's scorer and the two functions below all go
    through here, so the rule is written once.
    """
    algo = ctx.algo
    measured = measure_uncertainty(algo.uncertainty, ctx)
    factor = modulate(measured.x, algo.modulation, algo.focal_gamma)
    info: ModulationInfo = {"uncertainty": measured.value, "x": measured.x, "factor": factor,
                            "num_clusters": len(set(ctx.cluster_ids))}
    return modulated_advantages(ctx.rewards, factor, algo.baseline), info


@dataclass(frozen=True)
class GcpoSettings:
    """The GCPO settings an uncertainty source reads (``AlgorithmConfig.gcpo``'s fields)."""

    measure: str = "cd"
    kappa: float = 1.0


@dataclass(frozen=True)
class AdvantageSettings:
    """The part of ``AlgorithmConfig`` the advantage path reads, for callers of the library
    without an experiment config (this layer may not import the config layer)."""

    uncertainty: str
    modulation: str
    alpha: float
    focal_gamma: float = 2.0
    baseline: str = "dr_grpo"
    estimator: str = "rao"
    gcpo: GcpoSettings = field(default_factory=GcpoSettings)


def seed_grpo_advantages(
    rewards: Sequence[float],
    cluster_ids: Sequence[int],
    logprobs: Sequence[float] | None,
    *,
    alpha: float,
    fn: str,
    estimator: str = "rao",
    baseline: str = "dr_grpo",
    gamma: float = 2.0,
) -> tuple[list[float], ModulationInfo]:
    """SEED-GRPO: A_hat = group_advantages(r) * f(alpha * SE / ln G). [paper]

    >>> adv, info = seed_grpo_advantages([1, 0, 1, 0], [0, 1, 0, 1], None,
    ...                                  alpha=1.0, fn="linear", estimator="discrete")
    >>> info["factor"]  # 2 clusters of 2: SE = ln 2, x = 1 * ln 2 / ln 4 = 0.5, f = 1 - 0.5
    0.5
    >>> adv
    [0.25, -0.25, 0.25, -0.25]
    """
    r = as_finite_floats(rewards, name="rewards")
    check_group(len(r), name="rewards")
    check_same_length(len(r), len(cluster_ids), a="rewards", b="cluster_ids")
    settings = AdvantageSettings("semantic_entropy", fn, _check_alpha(alpha), gamma, baseline,
                                 estimator)
    ctx = GroupContext(r, [None] * len(r), list(cluster_ids), logprobs, None, settings)
    return uncertainty_advantages(ctx)


def gcpo_advantages(
    rewards: Sequence[float],
    embeddings: Sequence[Sequence[float]] | np.ndarray,
    *,
    alpha: float,
    fn: str,
    measure: str = "cd",
    kappa: float = 1.0,
    answers: Sequence[str | None] | None = None,
    baseline: str = "dr_grpo",
    gamma: float = 2.0,
) -> tuple[list[float], ModulationInfo]:
    """GCPO: A_hat = group_advantages(r) * f(alpha * U), U = gcpo_uncertainty(...). [recon]

    ``answers`` (optional) only feeds ``num_clusters`` in the info (exact clustering), so GCPO
    and SEED runs log the same diagnostics; without them it is 0.

    >>> adv, info = gcpo_advantages([1, 1, 0, 0], [[1, 0], [1, 0], [1, 0], [1, 0]],
    ...                             alpha=1.0, fn="linear")
    >>> info["factor"], adv  # identical directions: U = 0, factor 1
    (1.0, [0.5, 0.5, -0.5, -0.5])
    """
    r = as_finite_floats(rewards, name="rewards")
    check_group(len(r), name="rewards")
    cluster_ids: list[int] = []
    if answers is not None:
        check_same_length(len(r), len(answers), a="rewards", b="answers")
        cluster_ids = cluster_answers(answers, "exact")
    settings = AdvantageSettings("gcpo", fn, _check_alpha(alpha), gamma, baseline,
                                 gcpo=GcpoSettings(measure, kappa))
    ctx = GroupContext(r, list(answers or [None] * len(r)), cluster_ids, [0.0] * len(r),
                       embeddings, settings)
    return uncertainty_advantages(ctx)

"""GCPO's geometry-aware, reward-calibrated uncertainty. RECONSTRUCTION [recon].

Only the GCPO abstract is public (arXiv 2605.21801): it names Cosine Dispersion (CD),
Barycentric Transport (BoT) and Reward Dispersion (RD). The formulas here are our faithful
reconstruction from docs/ALGORITHMS.md section 4, not the authors' code. Embeddings are (G, D) rows,
one per response; they are unit-normalised first, so only directions matter.

- CD = mean over pairs i != j of (1 - cos(e_i, e_j)) = G/(G-1) * (1 - ||mean e||^2), max G/(G-1).
- BoT = sum_i w_i ||e_i - e_bar_w||^2 with e_bar_w = sum_i w_i e_i; equals 1 - ||e_bar_w||^2, max 1.
- RD_n = population std(r) / 0.5, in [0, 1] for rewards in [0, 1].
- U = (U_geo / U_geo_max) * (1 - RD_n) ** kappa, in [0, 1]: high when answers point in
  different directions *and* the group carries little reward contrast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from seedgrpo.algorithms._checks import as_finite_floats, check_group, check_same_length
from seedgrpo.algorithms.registry import Registry

__all__ = [
    "GEOMETRY_MEASURES",
    "cosine_dispersion",
    "barycentric_transport",
    "reward_dispersion",
    "gcpo_uncertainty",
]

MeasureFn = Callable[[np.ndarray, "np.ndarray | None"], float]
GEOMETRY_MEASURES: Registry[MeasureFn] = Registry("GCPO geometry measure")


def _unit_rows(embeddings: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """(G, D) float64 rows scaled to unit norm; rejects ragged, non-finite or zero rows."""
    try:
        e = np.asarray(embeddings, dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"embeddings must be a (G, D) array of numbers: {err}") from err
    if e.ndim != 2 or e.shape[1] == 0:
        raise ValueError(f"embeddings has shape {e.shape}; expected (G, D) with D >= 1")
    check_group(e.shape[0], name="embeddings")
    if not np.isfinite(e).all():
        raise ValueError("embeddings contains NaN or infinite values")
    scale = np.abs(e).max(axis=1)
    zero = np.flatnonzero(scale == 0.0)
    if zero.size:
        raise ValueError(f"embeddings row {int(zero[0])} is all zeros; it has no direction")
    e = e / scale[:, None]  # rows in [-1, 1] first: the norm of huge entries cannot overflow
    return e / np.linalg.norm(e, axis=1)[:, None]


def _weights(weights: Sequence[float] | None, g: int) -> np.ndarray:
    """Non-negative weights rescaled to sum 1; uniform when ``None``."""
    if weights is None:
        return np.full(g, 1.0 / g)
    w = np.asarray(as_finite_floats(weights, name="weights"))
    check_same_length(g, w.size, a="embeddings", b="weights")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be >= 0 with a positive sum")
    return w / w.sum()


@GEOMETRY_MEASURES.register("cd")
def _cd(unit: np.ndarray, weights: np.ndarray | None) -> float:
    g = unit.shape[0]
    cos = unit @ unit.T  # (G, G)
    off_diagonal = cos.sum() - np.trace(cos)
    return float(max(0.0, 1.0 - off_diagonal / (g * (g - 1))))


@GEOMETRY_MEASURES.register("bot")
def _bot(unit: np.ndarray, weights: np.ndarray | None) -> float:
    w = _weights(weights, unit.shape[0])
    barycentre = w @ unit  # (D,)
    return float(max(0.0, (w * ((unit - barycentre) ** 2).sum(axis=1)).sum()))


def cosine_dispersion(embeddings: Sequence[Sequence[float]] | np.ndarray) -> float:
    """Mean over ordered pairs i != j of 1 - cos(e_i, e_j); in [0, G/(G-1)]. [recon]

    >>> cosine_dispersion([[1.0, 0.0], [0.0, 2.0]])  # orthogonal: cos 0
    1.0
    """
    return _cd(_unit_rows(embeddings), None)


def barycentric_transport(
    embeddings: Sequence[Sequence[float]] | np.ndarray, weights: Sequence[float] | None = None
) -> float:
    """sum_i w_i ||e_i - e_bar||^2 on unit rows, uniform w by default; in [0, 1]. [recon]

    >>> round(barycentric_transport([[1.0, 0.0], [-1.0, 0.0]]), 6)  # opposite: barycentre 0
    1.0
    """
    unit = _unit_rows(embeddings)
    return _bot(unit, None if weights is None else _weights(weights, unit.shape[0]))


def reward_dispersion(rewards: Sequence[float]) -> float:
    """Population std of the rewards divided by 0.5 (its maximum for [0, 1] rewards). [recon]

    >>> reward_dispersion([1, 0, 1, 0]), reward_dispersion([1, 1, 1, 1])
    (1.0, 0.0)
    """
    r = as_finite_floats(rewards, name="rewards")
    check_group(len(r), name="rewards")
    if any(v < 0.0 or v > 1.0 for v in r):
        raise ValueError("rewards must lie in [0, 1] for reward dispersion (RD_n = std / 0.5)")
    mean = sum(r) / len(r)
    std = math.sqrt(sum((v - mean) ** 2 for v in r) / len(r))
    return min(1.0, std / 0.5)


def gcpo_uncertainty(
    embeddings: Sequence[Sequence[float]] | np.ndarray,
    rewards: Sequence[float],
    measure: str = "cd",
    weights: Sequence[float] | None = None,
    kappa: float = 1.0,
) -> float:
    """Calibrated uncertainty U = (U_geo / U_geo_max) * (1 - RD_n) ** kappa, in [0, 1]. [recon]

    U_geo_max is G/(G-1) for ``cd`` and 1 for ``bot``; ``weights`` apply to ``bot`` only.

    >>> gcpo_uncertainty([[1.0, 0.0], [0.0, 1.0]], [1.0, 1.0])  # spread answers, no contrast
    0.5
    """
    unit = _unit_rows(embeddings)
    g = unit.shape[0]
    check_same_length(g, len(rewards), a="embeddings", b="rewards")
    if not math.isfinite(kappa) or kappa < 0.0:
        raise ValueError(f"kappa is {kappa}; it must be finite and >= 0")
    if weights is not None and measure != "bot":
        raise ValueError(f"weights apply to measure='bot' only, not measure='{measure}'")
    w = None if weights is None else _weights(weights, g)
    geo = GEOMETRY_MEASURES.get(measure)(unit, w)
    geo_max = g / (g - 1) if measure == "cd" else 1.0
    rd = reward_dispersion(rewards)
    return float(min(1.0, max(0.0, geo / geo_max)) * (1.0 - rd) ** kappa)

"""Is a difference between two configurations more than noise? Pure statistics for the report.

A sweep's accuracy has two sources of noise: which problems were evaluated (a 32-problem slice
moves 3 points per problem) and which seed trained the model. The report therefore scores every
(seed, problem) cell of a configuration and asks of these cells:

- **How precise is a configuration's accuracy?** A two-way percentile bootstrap: each resample
  draws the seeds with replacement and, independently, the problems of each benchmark with
  replacement (stratified by benchmark, so every benchmark keeps its weight in the unweighted
  average over benchmarks that ``eval/avg/*`` is). Resampling both ways at once over-counts the
  seed x problem interaction a little, so the interval errs on the wide side; with 2 seeds the
  seed half of it sees only 3 distinct resamples, so read it as rough. 2000 resamples, seeded:
  the same sweep always gets the same interval.
- **Does a configuration differ from the ``none`` baseline?** Paired on seed and problem (the
  same seed draws the same evaluation subset, so the cells line up): the mean difference, its
  bootstrap interval (as above, on the differences), and a sign-flip permutation p-value. Under
  "no difference", each cell's two results are exchangeable, so each cell's difference is as
  likely negative as positive; the p-value is the share of sign patterns whose weighted mean is
  at least as far from 0 as the observed one. Exact enumeration when at most
  ``EXACT_FLIP_LIMIT`` cells differ (cells with no difference cannot change the statistic), else
  ``FLIP_RESAMPLES`` seeded random patterns with the +1 correction (Phipson & Smyth 2010), which
  keeps the p-value valid. The cells are treated as independent: the test sees seed noise only
  through the cells, so the report asks for the interval to exclude 0 as well.
- **How much more evaluation would resolve it?** A normal approximation: 80% power at two-sided
  5% needs the standard error down to ``|delta| / (z_0.975 + z_0.8)`` = ``|delta| / 2.80``. The
  bootstrap variance splits into a seed part (seeds resampled alone) and a problem part (problems
  resampled alone); more seeds shrink the first, more problems the second. Rough by design: it
  takes the observed difference as the true one.

Scores come in *blocks*: per benchmark, an array of shape (seeds, problems) whose rows are the
same seeds in the same order for every benchmark. The statistic of blocks is the mean over seeds
of the unweighted mean over benchmarks of the mean over problems.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = ["BOOTSTRAP_RESAMPLES", "EXACT_FLIP_LIMIT", "FLIP_RESAMPLES", "Bootstrap",
           "Comparison", "SizeNeeded", "align_blocks", "block_mean", "bootstrap",
           "compare_paired", "difference_by_seed", "metric_benchmarks", "problem_scores",
           "power_z", "size_needed", "sign_flip_p_value"]

BOOTSTRAP_RESAMPLES = 2000
FLIP_RESAMPLES = 10_000
EXACT_FLIP_LIMIT = 16  # 2^16 = 65536 sign patterns: exact in well under a second

Blocks = Mapping[str, np.ndarray]  # benchmark -> (seeds, problems)
Scores = Mapping[str, Mapping[str, float]]  # benchmark -> problem id -> score


# -- from sample rows to per-problem scores ------------------------------------------------------
def metric_benchmarks(metric: str, benchmarks: Sequence[str]) -> list[str] | None:
    """The benchmarks whose problems make up ``metric``; ``None`` for a metric that is not an
    evaluation accuracy. ``eval/avg/*`` leaves ``heldout`` out when real benchmarks ran, as
    ``evaluation.summary.average_metrics`` does.

    >>> metric_benchmarks("eval/avg/pass_at_1", ["heldout", "aime24", "amc23"])
    ['aime24', 'amc23']
    >>> metric_benchmarks("eval/heldout/pass_at_1", ["heldout"])
    ['heldout']
    >>> metric_benchmarks("train/reward_mean", ["heldout"]) is None
    True
    """
    parts = metric.split("/")
    if len(parts) != 3 or parts[0] != "eval" or _estimator(parts[2]) is None:
        return None
    if parts[1] == "avg":
        return [b for b in benchmarks if b != "heldout"] or list(benchmarks)
    return [parts[1]] if parts[1] in benchmarks else []


def _estimator(suffix: str) -> int | None:
    """k of a per-problem accuracy (1 for pass@1 and avg@k, which are the same per problem:
    the share of correct samples), or ``None`` for a metric with no per-problem form (maj@k
    needs the grader's answer equality; lengths are not accuracies)."""
    if suffix == "pass_at_1" or suffix.startswith("avg_at_"):
        return 1
    if suffix.startswith("pass_at_") and suffix.removeprefix("pass_at_").isdigit():
        return int(suffix.removeprefix("pass_at_"))
    return None


def problem_scores(rows: Sequence[Mapping[str, Any]], metric: str
                   ) -> dict[str, dict[str, float]] | None:
    """Per benchmark and problem, the problem's share of ``metric`` from an evaluation's sample
    rows (``evaluation.summary.write_samples``): the share of correct samples for pass@1 and
    avg@k, the unbiased pass@k for k > 1. The mean over problems is then the benchmark's metric.

    >>> rows = [{"benchmark": "b", "id": "p1", "correct": True},
    ...         {"benchmark": "b", "id": "p1", "correct": False},
    ...         {"benchmark": "b", "id": "p2", "correct": False}]
    >>> problem_scores(rows, "eval/b/pass_at_1")
    {'b': {'p1': 0.5, 'p2': 0.0}}
    """
    verdicts: dict[str, dict[str, list[bool]]] = {}
    for row in rows:
        verdicts.setdefault(str(row["benchmark"]), {}).setdefault(str(row["id"]), []).append(
            bool(row["correct"]))
    names = metric_benchmarks(metric, list(verdicts))
    if not names:
        return None
    k = _estimator(metric.split("/")[2]) or 1
    out: dict[str, dict[str, float]] = {}
    for name in names:
        per_problem = verdicts[name]
        if any(len(v) < k for v in per_problem.values()):
            return None  # fewer samples than pass@k needs: the metric was not logged either
        out[name] = {pid: _pass_at_k(v, k) for pid, v in per_problem.items()}
    return out


def _pass_at_k(verdicts: Sequence[bool], k: int) -> float:
    n, c = len(verdicts), sum(verdicts)
    if k == 1:
        return c / n
    return 1.0 if n - c < k else 1.0 - math.comb(n - c, k) / math.comb(n, k)


# -- from per-seed scores to blocks ------------------------------------------------------------
def difference_by_seed(treated: Mapping[int, Scores], baseline: Mapping[int, Scores]
                       ) -> dict[int, dict[str, dict[str, float]]]:
    """Per seed both evaluated, per benchmark and problem both scored: treated - baseline.

    >>> difference_by_seed({0: {"b": {"p": 1.0, "q": 0.5}}, 1: {"b": {"p": 1.0}}},
    ...                    {0: {"b": {"p": 0.0, "q": 0.5}}})
    {0: {'b': {'p': 1.0, 'q': 0.0}}}
    """
    out: dict[int, dict[str, dict[str, float]]] = {}
    for seed in sorted(set(treated) & set(baseline)):
        t, b = treated[seed], baseline[seed]
        per = {name: {pid: t[name][pid] - b[name][pid] for pid in t[name] if pid in b[name]}
               for name in t if name in b}
        per = {name: v for name, v in per.items() if v}
        if per:
            out[seed] = per
    return out


def align_blocks(by_seed: Mapping[int, Scores]) -> dict[str, np.ndarray]:
    """Blocks (benchmark -> seeds x problems) from per-seed scores.

    When every seed evaluated the same problems (whole benchmarks), column j is one problem
    for all seeds, so resampling columns resamples problems (a crossed design). When the
    subsets differ (``eval.limit`` draws them by ``train.seed``), column j is each seed's j-th
    problem by id: problems are nested in seeds, and resampling columns jointly still gives the
    problem half of the variance its expected size, as the problems are independent. A
    benchmark missing from some seed is left out; unequal counts keep the common number.

    >>> blocks = align_blocks({0: {"b": {"q": 1.0, "p": 0.0}}, 1: {"b": {"p": 1.0, "q": 1.0}}})
    >>> blocks["b"].tolist()
    [[0.0, 1.0], [1.0, 1.0]]
    """
    seeds = sorted(by_seed)
    if not seeds:
        return {}
    names = [n for n in by_seed[seeds[0]] if all(n in by_seed[s] for s in seeds)]
    blocks: dict[str, np.ndarray] = {}
    for name in names:
        columns = [sorted(by_seed[s][name]) for s in seeds]
        width = min(len(c) for c in columns)
        if width == 0:
            continue
        blocks[name] = np.array([[by_seed[s][name][pid] for pid in ids[:width]]
                                 for s, ids in zip(seeds, columns, strict=True)], dtype=float)
    return blocks


# -- the statistics ----------------------------------------------------------------------------
def _check(blocks: Blocks) -> tuple[list[np.ndarray], int]:
    arrays = [np.asarray(b, dtype=float) for b in blocks.values()]
    if not arrays or any(a.ndim != 2 or a.size == 0 for a in arrays):
        raise ValueError("blocks must be one non-empty (seeds x problems) array per benchmark")
    seeds = {a.shape[0] for a in arrays}
    if len(seeds) != 1:
        raise ValueError(f"every benchmark's block needs the same seeds; rows differ: {seeds}")
    return arrays, seeds.pop()


def block_mean(blocks: Blocks) -> float:
    """Mean over seeds of the unweighted mean over benchmarks of the mean over problems.

    >>> block_mean({"a": np.array([[1.0, 0.0]]), "b": np.array([[1.0, 1.0, 1.0, 1.0]])})
    0.75
    """
    arrays, _ = _check(blocks)
    return float(np.mean([a.mean() for a in arrays]))


@dataclass(frozen=True)
class Bootstrap:
    """A statistic, its percentile interval and its bootstrap standard errors: all resampled
    (``se``), seeds alone (``se_seeds``), problems alone (``se_problems``)."""

    estimate: float
    low: float
    high: float
    se: float
    se_seeds: float
    se_problems: float
    seeds: int
    problems: int  # in all benchmarks together

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def _weights(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """Resampling with replacement as weights: row r holds how often each index was drawn,
    divided by n, so a weighted sum is the resample's mean."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples) / n


def bootstrap(blocks: Blocks, *, resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95,
              seed: int = 0) -> Bootstrap:
    """The two-way percentile bootstrap of :func:`block_mean` (module docstring)."""
    arrays, n_seeds = _check(blocks)
    rng = np.random.default_rng(seed)
    seed_w = _weights(rng, n_seeds, resamples)
    flat_seeds = np.full((1, n_seeds), 1.0 / n_seeds)
    both = np.zeros(resamples)
    seeds_only = np.zeros(resamples)
    problems_only = np.zeros(resamples)
    for a in arrays:
        problem_w = _weights(rng, a.shape[1], resamples)
        by_seed = problem_w @ a.T  # (resamples, seeds): each seed's mean over drawn problems
        both += np.einsum("rs,rs->r", seed_w, by_seed)
        seeds_only += seed_w @ a.mean(axis=1)
        problems_only += (by_seed * flat_seeds).sum(axis=1)
    k = len(arrays)
    both, seeds_only, problems_only = both / k, seeds_only / k, problems_only / k
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(both, [tail, 100 - tail])
    return Bootstrap(estimate=block_mean(blocks), low=float(low), high=float(high),
                     se=_spread(both), se_seeds=_spread(seeds_only),
                     se_problems=_spread(problems_only), seeds=n_seeds,
                     problems=sum(a.shape[1] for a in arrays))


def _spread(values: np.ndarray) -> float:
    """The standard deviation, 0 exactly when the resamples only differ by rounding (one seed
    resampled is always that seed: its spread must read as none, not 1e-16)."""
    if np.ptp(values) <= 1e-12 * max(1.0, float(np.abs(values).max())):
        return 0.0
    return float(values.std(ddof=1))


def sign_flip_p_value(differences: Blocks, *, exact_limit: int = EXACT_FLIP_LIMIT,
                      resamples: int = FLIP_RESAMPLES, seed: int = 0) -> tuple[float, bool]:
    """Two-sided p-value of the paired sign-flip test, and whether it was enumerated exactly.

    Each (seed, problem) cell's difference contributes to :func:`block_mean` with its weight;
    flipping cells' signs gives the statistic's distribution under "no difference".

    >>> sign_flip_p_value({"b": np.array([[1.0, 1.0, 1.0, 0.0]])})  # only +-3 reach |3|: 2/8
    (0.25, True)
    """
    arrays, n_seeds = _check(differences)
    share = 1.0 / (len(arrays) * n_seeds)
    contributions = np.concatenate([(a * share / a.shape[1]).ravel() for a in arrays])
    contributions = contributions[contributions != 0]
    if contributions.size == 0:
        return 1.0, True
    observed = abs(float(contributions.sum()))
    tolerance = 1e-12 * max(1.0, observed)
    n = contributions.size
    if n <= exact_limit:
        patterns = 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)
        stats = np.abs(patterns @ contributions)
        return float(np.mean(stats >= observed - tolerance)), True
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, resamples, 1000):  # bounded memory on large evaluations
        size = min(1000, resamples - start)
        signs = rng.integers(0, 2, size=(size, n)) * 2 - 1
        hits += int(np.sum(np.abs(signs @ contributions) >= observed - tolerance))
    return (hits + 1) / (resamples + 1), False


@dataclass(frozen=True)
class SizeNeeded:
    """Roughly how many seeds (at today's problems) or problems (at today's seeds) would give
    80% power at the observed difference; ``None`` where that lever alone cannot. ``scale``:
    the factor by which seeds and problems together would have to grow (``None`` for a zero
    difference)."""

    seeds: int | None
    problems: int | None
    scale: float | None = None


def power_z(alpha: float = 0.05, power: float = 0.8) -> float:
    """z_{1-alpha/2} + z_{power}: how many standard errors the difference must span.

    >>> round(power_z(), 4)
    2.8016
    """
    normal = NormalDist()
    return normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)


def size_needed(delta: float, se_seeds: float, se_problems: float, *, seeds: int,
                problems: int, alpha: float = 0.05, power: float = 0.8) -> SizeNeeded:
    """The normal-approximation size for ``power`` at two-sided ``alpha``.

    The variance is taken as ``se_seeds**2 * seeds / n_seeds + se_problems**2 * problems /
    n_problems``; it must fall to ``(delta / power_z)**2``. Scaling one lever leaves the other
    part fixed, so a lever whose fixed remainder already exceeds the target gets ``None``.

    Growing both levers by the same factor k divides the whole variance by k:
    k = variance / target (``scale``), the answer when neither lever alone can.

    >>> n = size_needed(0.1, 0.05, 0.05, seeds=2, problems=32)  # target (0.1/2.80)^2 = 0.00127
    >>> n.seeds, n.problems, round(n.scale, 2)  # 0.005 / 0.00127: both about 3.9x
    (None, None, 3.92)
    >>> # var 0.0009 + 0.0004: seeds 2 * 0.0009 / (0.00127 - 0.0004) = 2.06 -> 3;
    >>> # problems 32 * 0.0004 / (0.00127 - 0.0009) = 34.2 -> 35
    >>> n = size_needed(0.1, 0.03, 0.02, seeds=2, problems=32)
    >>> n.seeds, n.problems
    (3, 35)
    """
    if delta == 0 or not math.isfinite(delta):
        return SizeNeeded(None, None)
    target = (delta / power_z(alpha, power)) ** 2
    var_s, var_p = se_seeds ** 2, se_problems ** 2

    def lever(scaled: float, fixed: float, current: int) -> int | None:
        if scaled == 0:  # nothing seen to shrink (one seed: its variance is unknown)
            return None
        if target <= fixed:
            return None
        return max(current, math.ceil(current * scaled / (target - fixed)))

    scale = (var_s + var_p) / target if var_s + var_p > 0 else None
    return SizeNeeded(seeds=lever(var_s, var_p, seeds) if seeds > 1 else None,
                      problems=lever(var_p, var_s, problems), scale=scale)


@dataclass(frozen=True)
class Comparison:
    """A configuration against its baseline, paired on seed and problem."""

    delta: Bootstrap  # treated - baseline
    p_value: float
    exact: bool  # the p-value enumerated every sign pattern
    needed: SizeNeeded

    @property
    def distinguishable(self) -> bool:
        """p < 0.05 and the interval excludes 0: both, as the flip test ignores seed noise."""
        return self.p_value < 0.05 and self.delta.excludes_zero()


def compare_paired(treated: Mapping[int, Scores], baseline: Mapping[int, Scores], *,
                   resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> Comparison | None:
    """The paired comparison, or ``None`` when the two share no seed and problem."""
    blocks = align_blocks(difference_by_seed(treated, baseline))
    if not blocks:
        return None
    delta = bootstrap(blocks, resamples=resamples, seed=seed)
    p_value, exact = sign_flip_p_value(blocks, seed=seed)
    needed = size_needed(delta.estimate, delta.se_seeds, delta.se_problems, seeds=delta.seeds,
                         problems=delta.problems)
    return Comparison(delta, p_value, exact, needed)

"""The sweep report: tables and plots of a sweep's trials, read back from MLflow.

MLflow is the record of a sweep (local SQLite or a server), so the report reads the parent run's
children from there: a finished sweep, an interrupted one, or one that ran on a cluster. What it
writes under ``report/``:

    trials.csv, summary.json   one row per trial: status, varied values, final metrics, run id
    report.md                  the table, the best configuration, seeds aggregated with 95%
                               bootstrap intervals, each configuration against the `none`
                               baseline (difference, interval, p-value, in words), paper rows
    accuracy_vs_alpha.png      the ranking metric against alpha, a line per modulation function
    benchmarks.png             final pass@1 per benchmark and trial, paper rows where comparable
    learning_curves.png        train reward and the ranking metric against step
    uncertainty.png            distributions of the uncertainty (SE, or GCPO's U) and the factor
    gradient_variance.png      the gradient-variance diagnostic, when the trials logged it

The intervals and the comparison read each trial's last evaluation samples
(``eval/samples_step_N.jsonl``, an artifact of its run): per (seed, problem) scores, so the
noise of the problem slice and of the seed are both in them (``seedgrpo.sweep.statistics``).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import statistics
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seedgrpo.config.applicability import NOT_APPLICABLE
from seedgrpo.evaluation.benchmarks import BENCHMARK_SPECS
from seedgrpo.evaluation.paper import PAPER_ABLATIONS, PAPER_RESULTS
from seedgrpo.sweep.statistics import (
    BOOTSTRAP_RESAMPLES,
    EXACT_FLIP_LIMIT,
    FLIP_RESAMPLES,
    Comparison,
    align_blocks,
    bootstrap,
    compare_paired,
    problem_scores,
)
from seedgrpo.tracking.sweep_trials import find_sweep_links
from seedgrpo.tracking.ui_links import SweepLinks

__all__ = ["ReportRow", "Interruption", "collect_trials", "write_report",
           "aggregate_configurations", "configuration_statistics", "plot_gradient_variance"]

logger = logging.getLogger(__name__)

CURVES = ("train/reward_mean", "train/se_mean", "train/factor_mean")
DIAGNOSTICS = ("diag/gradvar_spearman_se", "diag/gradvar_spearman_u")
_SEED = "train.seed"
_SAMPLES_PREFIX = "samples_step_"
# what the statistics read of a sample row (the completions stay on disk)
_SAMPLE_FIELDS = ("benchmark", "id", "sample", "correct")


@dataclass(frozen=True)
class Interruption:
    """A sweep stopped before its trials ended (Ctrl-C, SIGTERM): its report says so first."""

    at: str  # local time of the stop signal
    finished: int  # trials finished before the stop
    planned: int  # trials the sweep runs in all
    resume_command: str  # the command that continues it

    def heading(self) -> str:
        """
        >>> Interruption("2025-01-01 12:00:00", 1, 4, "seedgrpo-sweep e.yaml --resume /s").heading()
        'interrupted at 2025-01-01 12:00:00, 1 of 4 trials finished'
        """
        return f"interrupted at {self.at}, {self.finished} of {self.planned} trials finished"


@dataclass
class ReportRow:
    """One trial as MLflow holds it."""

    name: str
    run_id: str
    status: str
    stopped_early: bool
    varied: dict[str, str]  # the varied config paths and their values (as MLflow params)
    modulation: str
    alpha: float
    group_size: int
    seed: int
    final: dict[str, float]  # each metric's value at its last step
    last_step: int
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    eval_rows: list[dict[str, Any]] = field(default_factory=list)  # last evaluation's samples
    eval_step: int | None = None  # the step of that evaluation

    @property
    def configuration(self) -> str:
        """The trial's name without its seed: seeds of one configuration share it."""
        parts = [f"{k}={v}" for k, v in sorted(self.varied.items()) if k != _SEED]
        return ", ".join(parts) or "base"


def _client(uri: str) -> Any:
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def collect_trials(uri: str, parent_run_id: str, *, metrics: Sequence[str] = ()
                   ) -> list[ReportRow]:
    """Every child run of the sweep, with histories of ``metrics``, the curves and every
    benchmark's pass@1."""
    from seedgrpo.sweep.tracking import PARENT_TAG, STOPPED_TAG, TRIAL_TAG

    client = _client(uri)
    parent = client.get_run(parent_run_id)
    runs = client.search_runs([parent.info.experiment_id],
                              filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                              max_results=10_000, order_by=["attributes.start_time ASC"])
    records = []
    for run in runs:
        params, tags = run.data.params, run.data.tags
        varied_keys = [k for k in tags.get("seedgrpo.varied", "").split(",") if k and k != "-"]
        history = {}
        wanted = {*CURVES, *DIAGNOSTICS, *metrics} | {k for k in run.data.metrics
                                         if k.startswith("eval/") and k.endswith("/pass_at_1")}
        for key in wanted & set(run.data.metrics):
            points = client.get_metric_history(run.info.run_id, key)
            history[key] = sorted((int(m.step), float(m.value)) for m in points)
        final = {k: v for k, v in run.data.metrics.items()}
        steps = [s for points in history.values() for s, _ in points]
        eval_step, eval_rows = _last_samples(client, run.info.run_id)
        records.append(ReportRow(
            name=tags.get(TRIAL_TAG, run.info.run_name), run_id=run.info.run_id,
            status=run.info.status, stopped_early=tags.get(STOPPED_TAG) == "true",
            varied={k: params.get(k, "") for k in varied_keys},
            modulation=params.get("algorithm.modulation", "?"),
            alpha=float(params.get("algorithm.alpha", "nan")
                        if params.get("algorithm.alpha") != NOT_APPLICABLE else "nan"),
            group_size=int(params.get("algorithm.group_size", "0")),
            seed=int(params.get(_SEED, "0")), final=final, last_step=max(steps, default=0),
            history=history, groups=_groups(client, run.info.run_id), eval_rows=eval_rows,
            eval_step=eval_step))
    return records


def _last_samples(client: Any, run_id: str) -> tuple[int | None, list[dict[str, Any]]]:
    """The step and sample rows of the run's last evaluation (``eval/samples_step_N.jsonl``);
    ``(None, [])`` when it logged none. A torn last line (a killed trial) is dropped."""
    try:
        names = [a.path for a in client.list_artifacts(run_id, "eval")]
    except Exception:  # noqa: BLE001 - no artifacts yet
        return None, []
    steps = {}
    for name in names:
        stem = Path(name).name.removesuffix(".jsonl")
        if name.endswith(".jsonl") and stem.startswith(_SAMPLES_PREFIX) and \
                stem.removeprefix(_SAMPLES_PREFIX).isdigit():
            steps[int(stem.removeprefix(_SAMPLES_PREFIX))] = name
    if not steps:
        return None, []
    step = max(steps)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(client.download_artifacts(run_id, steps[step], tmp))
        with local.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                rows.append({k: row.get(k) for k in _SAMPLE_FIELDS})
    return step, rows


def _groups(client: Any, run_id: str) -> list[dict[str, Any]]:
    from seedgrpo.tracking.groups_file import GROUPS_FILE, read_group_rows

    try:
        names = [a.path for a in client.list_artifacts(run_id, "train")]
    except Exception:  # noqa: BLE001 - no artifacts yet
        return []
    wanted = f"train/{GROUPS_FILE}"
    if wanted not in names:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(run_id, wanted, tmp)
        return read_group_rows(Path(local))


# -- tables -----------------------------------------------------------------------------------
def _benchmarks(records: Sequence[ReportRow]) -> list[str]:
    names = {k.split("/")[1] for r in records for k in r.final
             if k.startswith("eval/") and k.endswith("/pass_at_1")}
    ordered = [b for b in ("heldout", *BENCHMARK_SPECS) if b in names]
    return ordered + sorted(names - set(ordered) - {"avg"}) + (["avg"] if "avg" in names else [])


def aggregate_configurations(records: Sequence[ReportRow], metric: str
                             ) -> list[dict[str, Any]]:
    """Seeds of one configuration together: mean, sample standard deviation and n."""
    groups: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if metric in r.final:
            groups[r.configuration].append(r.final[metric])
    return [{"configuration": c, "n": len(v), "mean": statistics.fmean(v),
             "std": statistics.stdev(v) if len(v) > 1 else 0.0} for c, v in groups.items()]


def _scores_by_seed(records: Sequence[ReportRow], metric: str
                    ) -> dict[int, dict[str, dict[str, float]]]:
    """Per seed, the per-problem scores of ``metric`` from the trial's last evaluation."""
    out: dict[int, dict[str, dict[str, float]]] = {}
    for r in records:
        scores = problem_scores(r.eval_rows, metric) if r.eval_rows else None
        if not scores:
            continue
        if r.seed in out:
            logger.warning("configuration %s has two trials with seed %d; the statistics use "
                           "the first", r.configuration, r.seed)
            continue
        out[r.seed] = scores
    return out


def _shared_values(r: ReportRow) -> dict[str, str]:
    """The swept values a baseline should share: all but the seed and the modulation."""
    return {k: v for k, v in r.varied.items() if k not in (_SEED, "algorithm.modulation")}


def _pick_baseline(config: ReportRow, baselines: dict[str, ReportRow]) -> str | None:
    """The `none` configuration sharing the most swept values with ``config`` (group size,
    learning rate, ...); the first of equals."""
    if not baselines:
        return None
    mine = _shared_values(config).items()
    return max(baselines, key=lambda name: len(mine & _shared_values(baselines[name]).items()))


def configuration_statistics(records: Sequence[ReportRow], metric: str
                             ) -> list[dict[str, Any]]:
    """:func:`aggregate_configurations`, each with its 95% bootstrap interval over problems x
    seeds (``ci_low``, ``ci_high``) and, against its `none` baseline paired on seed and problem,
    ``delta_vs_baseline`` with ``delta_ci_low``/``delta_ci_high``, ``p_value`` and the rough
    seeds/problems an 80%-power comparison would need. ``None`` where the samples do not allow
    it (no evaluation samples, a metric with no per-problem form, no baseline)."""
    configs = aggregate_configurations(records, metric)
    members: dict[str, list[ReportRow]] = defaultdict(list)
    for r in records:
        members[r.configuration].append(r)
    scores = {name: _scores_by_seed(members[name], metric) for name in members}
    baselines = {name: rs[0] for name, rs in members.items()
                 if all(r.modulation == "none" for r in rs)}
    for config in configs:
        name = config["configuration"]
        config.update({"modulation": members[name][0].modulation,
                       "is_baseline": name in baselines, "baseline": None,
                       "seeds_scored": len(scores[name]),
                       "eval_steps": sorted({r.eval_step for r in members[name]
                                             if r.eval_step is not None}),
                       "ci_low": None, "ci_high": None, "delta_vs_baseline": None,
                       "delta_ci_low": None, "delta_ci_high": None, "p_value": None,
                       "p_value_exact": None, "distinguishable": None,
                       "seeds_needed": None, "problems_needed": None, "scale_needed": None,
                       "paired_seeds": None, "paired_problems": None})
        blocks = align_blocks(scores[name]) if scores[name] else {}
        if blocks:  # empty when the seeds share no benchmark (a torn last evaluation)
            interval = bootstrap(blocks)
            config.update(ci_low=interval.low, ci_high=interval.high)
        if name in baselines:
            continue
        base = _pick_baseline(members[name][0], baselines)
        config["baseline"] = base
        if base is None or not scores[name] or not scores[base]:
            continue
        comparison = compare_paired(scores[name], scores[base])
        if comparison is not None:
            config.update(_comparison_fields(comparison))
    return configs


def _comparison_fields(c: Comparison) -> dict[str, Any]:
    return {"delta_vs_baseline": c.delta.estimate, "delta_ci_low": c.delta.low,
            "delta_ci_high": c.delta.high, "p_value": c.p_value, "p_value_exact": c.exact,
            "distinguishable": c.distinguishable, "seeds_needed": c.needed.seeds,
            "problems_needed": c.needed.problems, "scale_needed": c.needed.scale,
            "paired_seeds": c.delta.seeds,
            "paired_problems": c.delta.problems}


def _best(records: Sequence[ReportRow], metric: str, mode: str) -> ReportRow | None:
    scored = [r for r in records if metric in r.final]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda r: r.final[metric])


def _avg_at_k_columns(records: Sequence[ReportRow], benchmarks: Sequence[str]) -> list[str]:
    """``eval/<benchmark>/avg_at_<k>`` of the benchmarks evaluated with k > 1 samples (avg@k on
    AIME24 and AMC23 is how the paper reports them: ``eval.samples_per_benchmark``)."""
    found = {k for r in records for k in r.final
             if k.startswith("eval/") and k.count("/") == 2 and "/avg_at_" in k}
    return [k for b in benchmarks if b != "avg"
            for k in sorted(found, key=lambda k: int(k.rsplit("_", 1)[1]))
            if k.split("/")[1] == b]


def _rows(records: Sequence[ReportRow], benchmarks: Sequence[str]) -> list[dict[str, Any]]:
    avg_columns = _avg_at_k_columns(records, benchmarks)
    rows = []
    for r in records:
        row: dict[str, Any] = {"trial": r.name, "status": r.status + (
            " (stopped early)" if r.stopped_early else ""), "modulation": r.modulation,
            "alpha": None if r.modulation == "none" else r.alpha, "group_size": r.group_size,
            "seed": r.seed, "step": r.last_step,
            "train/reward_mean": r.final.get("train/reward_mean")}
        for b in benchmarks:
            row[f"eval/{b}/pass_at_1"] = r.final.get(f"eval/{b}/pass_at_1")
        for key in avg_columns:
            row[key] = r.final.get(key)
        row["run_id"] = r.run_id
        rows.append(row)
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


# -- plots ------------------------------------------------------------------------------------
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _legend(ax: Any, **options: Any) -> None:
    """A legend when the axes hold labeled artists (a sweep with no values yet has none, and
    matplotlib warns "No artists with labels" for an empty one)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**options)


def _label(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)


def plot_accuracy_vs_alpha(records: Sequence[ReportRow], metric: str, path: Path,
                           *, paper_comparable: bool) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    by_f: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    baseline: list[float] = []
    for r in records:
        if metric not in r.final:
            continue
        if r.modulation == "none":
            baseline.append(r.final[metric])
        else:
            by_f[r.modulation][r.alpha].append(r.final[metric])
    for f, points in sorted(by_f.items()):
        xs = sorted(points)
        ys = [statistics.fmean(points[x]) for x in xs]
        err = [statistics.stdev(points[x]) if len(points[x]) > 1 else 0.0 for x in xs]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=f"{f} (mean of seeds)"
                    if any(len(v) > 1 for v in points.values()) else f)
    if baseline:
        mean = statistics.fmean(baseline)
        ax.axhline(mean, color="black", linestyle="--", label=f"none (Dr. GRPO) {mean:.3f}")
        if len(baseline) > 1:
            sd = statistics.stdev(baseline)
            ax.axhspan(mean - sd, mean + sd, color="black", alpha=0.08)
    if paper_comparable and metric == "eval/avg/pass_at_1":
        ablation = PAPER_ABLATIONS["algorithm.alpha"]
        ax.plot(list(ablation), list(ablation.values()), "s:", color="gray",
                label="paper, linear (Qwen2.5-Math-7B)")
    alphas = [a for pts in by_f.values() for a in pts]
    if alphas and min(alphas) > 0 and max(alphas) / min(alphas) >= 10:
        ax.set_xscale("log")
    ax.set_xlabel("alpha (modulation strength)")
    ax.set_ylabel(metric)
    ax.set_title("Final accuracy against alpha, per modulation function")
    ax.grid(alpha=0.3)
    _legend(ax, fontsize=8)
    _save(plt, fig, path)


def plot_benchmarks(records: Sequence[ReportRow], benchmarks: Sequence[str], path: Path,
                    *, paper_comparable: bool) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(benchmarks) + 2), 4.5))
    width = 0.8 / max(1, len(records))
    for i, r in enumerate(records):
        values = [r.final.get(f"eval/{b}/pass_at_1", float("nan")) for b in benchmarks]
        ax.bar([x + i * width for x in range(len(benchmarks))], values, width, label=r.name)
    if paper_comparable:
        for row, style in ((PAPER_RESULTS[1], "k_"), (PAPER_RESULTS[2], "r_")):
            ref = row.as_metrics()
            xs = [x + 0.4 - width / 2 for x, b in enumerate(benchmarks)
                  if f"eval/{b}/pass_at_1" in ref]
            ys = [ref[f"eval/{b}/pass_at_1"] for b in benchmarks if f"eval/{b}/pass_at_1" in ref]
            if xs:
                ax.plot(xs, ys, style, markersize=30, mew=2, label=f"paper: {row.run}")
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(benchmarks))], benchmarks)
    ax.set_ylabel("pass@1 (final evaluation)")
    ax.set_title("Per-benchmark results of each trial")
    ax.grid(axis="y", alpha=0.3)
    _legend(ax, fontsize=7, ncol=2)
    _save(plt, fig, path)


def plot_learning_curves(records: Sequence[ReportRow], metric: str, path: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in records:
        for ax, key in zip(axes, ("train/reward_mean", metric), strict=True):
            points = r.history.get(key, [])
            if points:
                ax.plot([s for s, _ in points], [v for _, v in points], marker=".",
                        label=r.name)
    _label(axes[0], "step", "train/reward_mean", "Training reward")
    _label(axes[1], "step", metric, "Evaluation")
    _legend(axes[1], fontsize=7)
    _save(plt, fig, path)


def _uncertainty(row: Mapping[str, Any]) -> float | None:
    """What f read for a group: ``uncertainty`` (SE for SEED, U for GCPO); rows written before
    that slot existed hold it as ``se``."""
    value = row.get("uncertainty", row.get("se"))
    return None if value is None else float(value)


def plot_uncertainty(records: Sequence[ReportRow], path: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in records:
        values = [u for u in map(_uncertainty, r.groups) if u is not None]
        if not values:
            continue
        axes[0].hist(values, bins=12, histtype="step", linewidth=1.5, label=r.name)
        axes[1].hist([g["factor"] for g in r.groups if g.get("factor") is not None], bins=12,
                     histtype="step", linewidth=1.5, label=r.name)
    _label(axes[0], "uncertainty of a prompt's group (semantic entropy; GCPO: U)",
           "prompts (all steps)", "Uncertainty of the training prompts")
    _label(axes[1], "modulation factor f (1 = unchanged advantage)", "prompts (all steps)",
           "How much modulation scaled the advantages")
    _legend(axes[1], fontsize=7)
    _save(plt, fig, path)


def has_gradient_variance(records: Sequence[ReportRow]) -> bool:
    """Whether any trial logged the gradient-variance diagnostic (``diagnostics.
    gradient_variance_every``): its correlations, or groups with a measured variance."""
    return any(r.history.get(k) for r in records for k in DIAGNOSTICS) or any(
        g.get("grad_variance") is not None for r in records for g in r.groups)


def plot_gradient_variance(records: Sequence[ReportRow], path: Path) -> None:
    """Left: per trial, the Spearman correlation between the groups' gradient variance and
    their semantic entropy (solid) and the uncertainty f read, e.g. GCPO's U (dashed), over
    steps. Right: each measured group's gradient variance against its uncertainty (dots) and
    its semantic entropy (crosses, where it differs): does the uncertainty track how much a
    group's gradients disagree?"""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    correlations = 0
    for i, r in enumerate(records):
        color = f"C{i % 10}"
        for key, style, what in ((DIAGNOSTICS[0], "-", "SE"), (DIAGNOSTICS[1], "--", "U")):
            # NaN: a step with fewer than 3 measured groups (a rank correlation needs them)
            points = [(s, v) for s, v in r.history.get(key, []) if math.isfinite(v)]
            correlations += len(points)
            if points:
                axes[0].plot([s for s, _ in points], [v for _, v in points], style,
                             marker=".", color=color, label=f"{r.name} ({what})")
        measured = [g for g in r.groups if g.get("grad_variance") is not None]
        used = [(_uncertainty(g), float(g["grad_variance"])) for g in measured]
        used = [(u, v) for u, v in used if u is not None]
        if used:
            axes[1].scatter([u for u, _ in used], [v for _, v in used], s=12, alpha=0.6,
                            color=color, label=f"{r.name}: uncertainty")
        se = [(float(g["se"]), float(g["grad_variance"])) for g in measured
              if g.get("se") is not None and "uncertainty" in g
              and g["uncertainty"] != g["se"]]
        if se:
            axes[1].scatter([u for u, _ in se], [v for _, v in se], s=14, marker="x",
                            alpha=0.6, color=color, label=f"{r.name}: semantic entropy")
    if not correlations:
        axes[0].text(0.5, 0.75, "no correlation yet: every diagnostic step had fewer than\n"
                     "3 groups with signal (diag/gradvar_groups); more prompts per step,\n"
                     "or train.dynamic_sampling, give it more",
                     ha="center", va="center", transform=axes[0].transAxes, fontsize=9)
    axes[0].axhline(0.0, color="black", linewidth=0.8)
    axes[0].set_ylim(-1.05, 1.05)  # a correlation: the whole range, so trials compare
    _label(axes[0], "step", "Spearman(gradient variance, uncertainty)",
           "Does the uncertainty track gradient variance?")
    _label(axes[1], "uncertainty of the group", "gradient variance of the group",
           "Measured groups")
    _legend(axes[0], fontsize=7)
    _legend(axes[1], fontsize=7)
    _save(plt, fig, path)


# -- the report -------------------------------------------------------------------------------
def write_report(uri: str, parent_run_id: str, out_dir: Path, *, metric: str,
                 mode: str = "max", interruption: Interruption | None = None) -> Path:
    """Collect the sweep from MLflow and write every table and plot into ``out_dir``; an
    interrupted sweep's report is headed by when it stopped and how to continue it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = collect_trials(uri, parent_run_id, metrics=[metric])
    benchmarks = _benchmarks(records)
    rows = _rows(records, benchmarks)
    best = _best(records, metric, mode)
    configs = configuration_statistics(records, metric)
    paper_comparable = any(b in BENCHMARK_SPECS for b in benchmarks)
    summary = {"parent_run_id": parent_run_id, "metric": metric, "mode": mode,
               "best": {"trial": best.name, "value": best.final[metric],
                        "varied": best.varied, "run_id": best.run_id} if best else None,
               "trials": rows, "configurations": configs, "statistics": _METHOD,
               "paper": [asdict(r) for r in PAPER_RESULTS],
               "interrupted": asdict(interruption) if interruption else None}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    columns = list(rows[0]) if rows else ["trial"]
    with (out_dir / "trials.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    plots = {"accuracy_vs_alpha.png": lambda p: plot_accuracy_vs_alpha(
                 records, metric, p, paper_comparable=paper_comparable),
             "benchmarks.png": lambda p: plot_benchmarks(records, benchmarks, p,
                                                         paper_comparable=paper_comparable),
             "learning_curves.png": lambda p: plot_learning_curves(records, metric, p),
             "uncertainty.png": lambda p: plot_uncertainty(records, p)}
    if has_gradient_variance(records):
        plots["gradient_variance.png"] = lambda p: plot_gradient_variance(records, p)
    for name, plot in plots.items():
        plot(out_dir / name)
    (out_dir / "report.md").write_text(_markdown(records, rows, columns, best, configs, metric,
                                                 benchmarks, paper_comparable, plots,
                                                 interruption, find_sweep_links(
                                                     uri, parent_run_id, metric=metric,
                                                     mode=mode)))
    return out_dir


_METHOD = {
    "interval": "95% percentile bootstrap over problems x seeds: seeds and each benchmark's "
                "problems resampled with replacement, independently",
    "resamples": BOOTSTRAP_RESAMPLES,
    "test": "paired sign-flip permutation test on (seed, problem) differences, two-sided; "
            f"exact up to {EXACT_FLIP_LIMIT} non-zero differences, else {FLIP_RESAMPLES} seeded "
            "random flips with the +1 correction",
    "distinguishable": "p < 0.05 and the difference's 95% interval excludes 0",
    "size_needed": "normal approximation, 80% power at two-sided 5%, at the observed "
                   "difference and bootstrap variance (rough)",
    "scores": "per problem, from each trial's last evaluation samples (eval/samples_step_N"
              ".jsonl): the share of correct samples (pass@1, avg@k) or the unbiased pass@k",
}


def _interval(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2g}" if value >= 0.001 else "< 0.001"


def _p_clause(value: float | None) -> str:
    """``p = 0.04`` or ``p < 0.001``."""
    shown = _p(value)
    return f"p {shown}" if shown.startswith("<") else f"p = {shown}"


def _caveats(c: dict[str, Any], base: dict[str, Any] | None) -> str:
    """What the comparison cannot see: seed-to-seed noise with one seed, and trials evaluated
    at different steps (a failed or early-stopped trial's last evaluation)."""
    notes = []
    if c["paired_seeds"] == 1:
        notes.append("one seed, so seed-to-seed noise is not measured")
    steps = set(c.get("eval_steps") or []) | set((base or {}).get("eval_steps") or [])
    if len(steps) > 1:
        notes.append("the trials were last evaluated at different steps ("
                     + ", ".join(map(str, sorted(steps))) + "), so part of the difference "
                     "may be training length")
    return (" Caveat: " + "; ".join(notes) + ".") if notes else ""


def _verdict(c: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    """One configuration's comparison with its baseline ``base``, in words."""
    head = (f"**{c['configuration']}** vs **{c['baseline']}**: {_signed(c['delta_vs_baseline'])}"
            f" (95% CI {_interval(c['delta_ci_low'], c['delta_ci_high'])}, "
            f"{_p_clause(c['p_value'])}, {c['paired_seeds']} seed(s) x "
            f"{c['paired_problems']} problems)")
    caveats = _caveats(c, base)
    if c["distinguishable"]:
        return head + ": distinguishable from noise at this sweep's size." + caveats
    if c["delta_vs_baseline"] == 0:
        return head + ": no difference at all on these problems." + caveats
    levers = []
    if c["seeds_needed"] is not None:
        levers.append(f"about {c['seeds_needed']} seeds at these problems")
    if c["problems_needed"] is not None:
        levers.append(f"about {c['problems_needed']} problems at these seeds")
    if levers:
        need = (" Resolving a difference this size with 80% power would take roughly "
                + " or ".join(levers) + ".")
    else:
        need = (" Neither more seeds alone nor more problems alone would resolve a difference "
                "this size with 80% power")
        scale = c.get("scale_needed")
        if scale is not None and c["paired_seeds"] and c["paired_problems"]:
            need += (f": both would have to grow about {scale:.0f}x (roughly "
                     f"{math.ceil(c['paired_seeds'] * math.sqrt(scale))} seeds x "
                     f"{math.ceil(c['paired_problems'] * math.sqrt(scale))} problems, or any "
                     f"split with {scale:.0f}x the seed-problem cells).")
        else:
            need += ": it needs both, or it is smaller than this sweep can see."
    return head + ": not distinguishable from noise at this sweep's size." + need + caveats


def _statistics_markdown(configs: Sequence[dict[str, Any]], metric: str) -> list[str]:
    """The configurations over seeds with their intervals, then each against its baseline."""
    if not configs:
        return []
    lines = ["## Configurations over seeds", "",
             f"`{metric}`: mean and standard deviation over seeds, and a 95% bootstrap "
             "interval over evaluation problems x seeds (2000 resamples of both; "
             "`seedgrpo.sweep.statistics`). Each configuration is compared with the `none` "
             "baseline sharing its other swept values, paired on seed and problem: the "
             "difference, its interval and a sign-flip permutation p-value.", ""]
    table = [{**c, "95% CI": _interval(c["ci_low"], c["ci_high"]),
              "delta vs none": "baseline" if c["is_baseline"] else _signed(
                  c["delta_vs_baseline"]),
              "delta 95% CI": _interval(c["delta_ci_low"], c["delta_ci_high"]),
              "p": _p(c["p_value"])} for c in configs]
    lines += [*_markdown_table(table, ["configuration", "n", "mean", "std", "95% CI",
                                       "delta vs none", "delta 95% CI", "p"]), ""]
    if all(c["ci_low"] is None for c in configs):
        lines += [f"No interval: the trials' evaluation samples were not found, or `{metric}` "
                  "has no per-problem form (pass@1, avg@k and pass@k have one).", ""]
        return lines
    compared = [c for c in configs if c["delta_vs_baseline"] is not None]
    if not any(c["is_baseline"] for c in configs):
        return lines + ["No `none` baseline (algorithm.modulation = none) among the trials, so "
                        "no configuration is compared with one: add `none` to the sweep's "
                        "algorithm.modulation values.", ""]
    if not compared:
        return lines + ["No configuration shares a seed and evaluated problems with its "
                        "baseline, so none is compared.", ""]
    clear = [c for c in compared if c["distinguishable"]]
    lines += ["## Effect or noise?", "",
              f"Of {len(compared)} configuration(s) compared with the `none` baseline, "
              f"{len(clear)} {'differs' if len(clear) == 1 else 'differ'} from it by more than "
              "noise at this sweep's size (p < 0.05 and a 95% interval excluding 0)."
              + (" Distinguishable: " + ", ".join(c["configuration"] for c in clear) + "."
                 if clear else ""), ""]
    by_name = {c["configuration"]: c for c in configs}
    lines += [f"- {_verdict(c, by_name.get(c['baseline']))}" for c in compared]
    lines += ["", "The seeds and problems needed are a normal approximation at the observed "
              "difference and variance, for 80% power at two-sided 5%: rough, as a difference "
              "measured this noisily may be larger or smaller than it looks. The p-value "
              "treats (seed, problem) cells as independent; the interval also resamples whole "
              "seeds, which is why both must agree.", ""]
    return lines


def _markdown(records: Sequence[ReportRow], rows: Sequence[dict[str, Any]],
              columns: Sequence[str], best: ReportRow | None, configs: list[dict[str, Any]],
              metric: str, benchmarks: Sequence[str], paper_comparable: bool,
              plots: dict[str, Any], interruption: Interruption | None = None,
              links: SweepLinks | None = None) -> str:
    if interruption is None:
        lines = ["# Sweep report", ""]
    else:
        lines = [f"# Sweep report: {interruption.heading()}", "",
                 "The sweep was stopped before its trials ended; finished trials and the "
                 "others' checkpoints are kept. Continue it with:", "",
                 f"    {interruption.resume_command}", ""]
    lines += [f"{len(records)} trials, ranked by `{metric}`.", ""]
    if best is not None:
        varied = ", ".join(f"{k} = {v}" for k, v in best.varied.items()) or "the base config"
        lines += [f"**Best trial: {best.name}** ({metric} = {best.final[metric]:.3f}; {varied}).",
                  ""]
    lines += links.markdown() if links is not None else []  # the MLflow UI's views of it
    lines += ["## Trials", "", *_markdown_table(rows, [c for c in columns if c != "run_id"]), ""]
    avg_columns = [c for c in columns if "/avg_at_" in c]
    if avg_columns:
        lines += [f"`{c}`: pass@1 averaged over {c.rsplit('_', 1)[1]} samples per problem at "
                  "eval.temperature (avg@k, as the paper reports the small benchmarks; "
                  "eval.samples_per_benchmark)." for c in avg_columns] + [""]
    lines += _statistics_markdown(configs, metric)
    if paper_comparable:
        paper_rows = [{"run": r.run, **{b: getattr(r, b) / 100 for b in benchmarks
                                        if hasattr(r, b)}, "avg": r.avg / 100}
                      for r in PAPER_RESULTS]
        cols = ["run", *[b for b in benchmarks if b in BENCHMARK_SPECS], "avg"]
        lines += ["## The paper's results, for reference", "",
                  "SEED-GRPO (arXiv 2505.12346), greedy pass@1 at 3000 new tokens on the full "
                  "benchmarks. Comparable in protocol only: a CPU sweep evaluates a small model "
                  "on slices with short generations.", "", *_markdown_table(paper_rows, cols),
                  ""]
    lines += ["## Plots", ""] + [f"![{name}]({name})" for name in plots] + [""]
    return "\n".join(lines)

"""The sweep report: tables and plots of a sweep's trials, read back from MLflow.

MLflow is the record of a sweep (local SQLite or a server), so the report reads the parent run's
children from there: a finished sweep, an interrupted one, or one that ran on a cluster. What it
writes under ``report/``:

    trials.csv, summary.json   one row per trial: status, varied values, final metrics, run id
    report.md                  the table, the best configuration, seeds aggregated, paper rows
    accuracy_vs_alpha.png      the ranking metric against alpha, a line per modulation function
    benchmarks.png             final pass@1 per benchmark and trial, paper rows where comparable
    learning_curves.png        train reward and the ranking metric against step
    uncertainty.png            distributions of semantic entropy and of the modulation factor
"""

from __future__ import annotations

import csv
import json
import logging
import math
import statistics
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seedgrpo.evaluation.benchmarks import BENCHMARK_SPECS
from seedgrpo.evaluation.paper import PAPER_ABLATIONS, PAPER_RESULTS

__all__ = ["TrialRecord", "Interruption", "collect_trials", "write_report",
           "aggregate_configurations"]

logger = logging.getLogger(__name__)

CURVES = ("train/reward_mean", "train/se_mean", "train/factor_mean")
_SEED = "train.seed"


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
class TrialRecord:
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
    groups: list[dict[str, float]] = field(default_factory=list)

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
                   ) -> list[TrialRecord]:
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
        wanted = {*CURVES, *metrics} | {k for k in run.data.metrics
                                         if k.startswith("eval/") and k.endswith("/pass_at_1")}
        for key in wanted & set(run.data.metrics):
            points = client.get_metric_history(run.info.run_id, key)
            history[key] = sorted((int(m.step), float(m.value)) for m in points)
        final = {k: v for k, v in run.data.metrics.items()}
        steps = [s for points in history.values() for s, _ in points]
        records.append(TrialRecord(
            name=tags.get(TRIAL_TAG, run.info.run_name), run_id=run.info.run_id,
            status=run.info.status, stopped_early=tags.get(STOPPED_TAG) == "true",
            varied={k: params.get(k, "") for k in varied_keys},
            modulation=params.get("algorithm.modulation", "?"),
            alpha=float(params.get("algorithm.alpha", "nan")),
            group_size=int(params.get("algorithm.group_size", "0")),
            seed=int(params.get(_SEED, "0")), final=final, last_step=max(steps, default=0),
            history=history, groups=_groups(client, run.info.run_id)))
    return records


def _groups(client: Any, run_id: str) -> list[dict[str, float]]:
    from seedgrpo.runtime.metrics import GROUPS_FILE, read_group_rows

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
def _benchmarks(records: Sequence[TrialRecord]) -> list[str]:
    names = {k.split("/")[1] for r in records for k in r.final
             if k.startswith("eval/") and k.endswith("/pass_at_1")}
    ordered = [b for b in ("heldout", *BENCHMARK_SPECS) if b in names]
    return ordered + sorted(names - set(ordered) - {"avg"}) + (["avg"] if "avg" in names else [])


def aggregate_configurations(records: Sequence[TrialRecord], metric: str
                             ) -> list[dict[str, Any]]:
    """Seeds of one configuration together: mean, sample standard deviation and n."""
    groups: dict[str, list[float]] = defaultdict(list)
    for r in records:
        if metric in r.final:
            groups[r.configuration].append(r.final[metric])
    return [{"configuration": c, "n": len(v), "mean": statistics.fmean(v),
             "std": statistics.stdev(v) if len(v) > 1 else 0.0} for c, v in groups.items()]


def _best(records: Sequence[TrialRecord], metric: str, mode: str) -> TrialRecord | None:
    scored = [r for r in records if metric in r.final]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda r: r.final[metric])


def _rows(records: Sequence[TrialRecord], benchmarks: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        row: dict[str, Any] = {"trial": r.name, "status": r.status + (
            " (stopped early)" if r.stopped_early else ""), "modulation": r.modulation,
            "alpha": None if r.modulation == "none" else r.alpha, "group_size": r.group_size,
            "seed": r.seed, "step": r.last_step,
            "train/reward_mean": r.final.get("train/reward_mean")}
        for b in benchmarks:
            row[f"eval/{b}/pass_at_1"] = r.final.get(f"eval/{b}/pass_at_1")
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


def plot_accuracy_vs_alpha(records: Sequence[TrialRecord], metric: str, path: Path,
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


def plot_benchmarks(records: Sequence[TrialRecord], benchmarks: Sequence[str], path: Path,
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


def plot_learning_curves(records: Sequence[TrialRecord], metric: str, path: Path) -> None:
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


def plot_uncertainty(records: Sequence[TrialRecord], path: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in records:
        if not r.groups:
            continue
        axes[0].hist([g["se"] for g in r.groups], bins=12, histtype="step", linewidth=1.5,
                     label=r.name)
        axes[1].hist([g["factor"] for g in r.groups], bins=12, histtype="step", linewidth=1.5,
                     label=r.name)
    _label(axes[0], "semantic entropy of a prompt's group", "prompts (all steps)",
           "Uncertainty of the training prompts")
    _label(axes[1], "modulation factor f (1 = unchanged advantage)", "prompts (all steps)",
           "How much modulation scaled the advantages")
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
    configs = aggregate_configurations(records, metric)
    paper_comparable = any(b in BENCHMARK_SPECS for b in benchmarks)
    summary = {"parent_run_id": parent_run_id, "metric": metric, "mode": mode,
               "best": {"trial": best.name, "value": best.final[metric],
                        "varied": best.varied, "run_id": best.run_id} if best else None,
               "trials": rows, "configurations": configs,
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
    for name, plot in plots.items():
        plot(out_dir / name)
    (out_dir / "report.md").write_text(_markdown(records, rows, columns, best, configs, metric,
                                                 benchmarks, paper_comparable, plots,
                                                 interruption))
    return out_dir


def _markdown(records: Sequence[TrialRecord], rows: Sequence[dict[str, Any]],
              columns: Sequence[str], best: TrialRecord | None, configs: list[dict[str, Any]],
              metric: str, benchmarks: Sequence[str], paper_comparable: bool,
              plots: dict[str, Any], interruption: Interruption | None = None) -> str:
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
    lines += ["## Trials", "", *_markdown_table(rows, [c for c in columns if c != "run_id"]), ""]
    if any(c["n"] > 1 for c in configs):
        lines += ["## Configurations over seeds", "",
                  *_markdown_table(configs, ["configuration", "n", "mean", "std"]), ""]
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

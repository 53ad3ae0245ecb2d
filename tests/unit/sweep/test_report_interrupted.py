"""The sweep report of a sweep with nothing to plot yet, and of an interrupted one.

An interrupted sweep's child runs may hold no value of a metric yet: the plots are then empty,
and a legend on them made matplotlib warn "No artists with labels" into the user's terminal.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from seedgrpo.sweep.report import (
    Interruption,
    ReportRow,
    plot_accuracy_vs_alpha,
    plot_benchmarks,
    plot_learning_curves,
    plot_uncertainty,
    write_report,
)

METRIC = "eval/heldout/pass_at_1"


def _record_without_values() -> ReportRow:
    return ReportRow(name="base", run_id="r", status="KILLED", stopped_early=False, varied={},
                       modulation="linear", alpha=0.5, group_size=4, seed=0, final={},
                       last_step=0)


def test_empty_plots_draw_no_legend_and_warn_nothing(tmp_path: Path) -> None:
    records = [_record_without_values()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_accuracy_vs_alpha(records, METRIC, tmp_path / "a.png", paper_comparable=False)
        plot_learning_curves(records, METRIC, tmp_path / "c.png")
        plot_uncertainty(records, tmp_path / "u.png")
        plot_benchmarks([], ["heldout"], tmp_path / "b.png", paper_comparable=False)
    assert all((tmp_path / f"{n}.png").stat().st_size > 0 for n in "acub")


@pytest.mark.slow  # a real SQLite MLflow: ~5-10 s on 2 loaded cores
def test_an_interrupted_sweeps_report_says_so_first(tmp_path: Path) -> None:
    from seedgrpo.tracking import MlflowRun

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = MlflowRun(uri, "sweep", run_name="sweep-1", config={})
    stop = Interruption("2025-01-02 03:04:05", 1, 3,
                        "seedgrpo-sweep exp.yaml --resume /runs/exp/20250102-030000")
    out = write_report(uri, parent.run_id, tmp_path / "report", metric=METRIC,
                       interruption=stop)
    lines = (out / "report.md").read_text().splitlines()
    assert lines[0] == "# Sweep report: interrupted at 2025-01-02 03:04:05, 1 of 3 trials finished"
    assert f"    {stop.resume_command}" in lines
    assert json.loads((out / "summary.json").read_text())["interrupted"]["planned"] == 3
    finished = write_report(uri, parent.run_id, tmp_path / "again", metric=METRIC)
    assert (finished / "report.md").read_text().startswith("# Sweep report\n")

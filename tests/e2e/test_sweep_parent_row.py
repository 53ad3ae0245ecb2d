"""A real sweep's runs as MLflow's runs table shows them: the parent row carries the sweep's
outcome and its best trial's ranking metric, the trials say ``n/a`` for what they ignore.
Reuses the session's ``grid_sweep`` (no sweep of its own)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import FinishedSweep, sweep_runs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

METRIC = "eval/heldout/pass_at_1"


def test_the_parent_row_and_the_honest_params(grid_sweep: FinishedSweep, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", grid_sweep.uri)  # load_table reads the global
    client, _, (parent,), children = sweep_runs(grid_sweep.uri, "tiny_grid")
    by_name = {r.info.run_name: r for r in children}
    # the parent: how the sweep went, and the best trial's value in the trials' own column
    metrics = parent.data.metrics
    assert (metrics["sweep/trials_finished"], metrics["sweep/trials_failed"],
            metrics["sweep/trials_stopped_early"]) == (4, 0, 0)
    assert metrics["sweep/wall_time_s"] > 0
    best = parent.data.tags["seedgrpo.best_trial"]
    summary = json.loads((grid_sweep.sweep_dir / "report" / "summary.json").read_text())
    assert best == summary["best"]["trial"]
    assert parent.data.tags["seedgrpo.best_run_id"] == by_name[best].info.run_id
    assert metrics[METRIC] == pytest.approx(by_name[best].data.metrics[METRIC])
    assert metrics[METRIC] == max(r.data.metrics[METRIC] for r in children)
    # the trials table, as an MLflow table artifact
    table = client.load_table(parent.info.experiment_id, "report/trials_table.json",
                              run_ids=[parent.info.run_id])
    assert sorted(table["trial"]) == sorted(by_name)
    # the baseline has no alpha (the experiment's base alpha is 0.5) and no focal_gamma; its
    # config artifact keeps the real config
    none = by_name["none"].data.params
    assert none["algorithm.alpha"] == none["algorithm.focal_gamma"] == "n/a"
    assert none["algorithm.uncertainty"] == none["algorithm.gcpo.kappa"] == "n/a"
    assert by_name["linear-a0.5"].data.params["algorithm.alpha"] == "0.5"
    config = client.download_artifacts(by_name["none"].info.run_id, "config.json",
                                       str(tmp_path))
    assert json.loads(Path(config).read_text())["algorithm"]["alpha"] == 0.5

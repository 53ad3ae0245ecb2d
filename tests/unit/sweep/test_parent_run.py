"""A sweep's MLflow runs in a real SQLite store: the trials' honest params (``n/a`` for what
a trial ignores) and the parent run's row (outcome metrics, best trial, the trials table), for
finished, failed and interrupted sweeps, and for a resumed one whose parent closes twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from seedgrpo.config import ExperimentConfig, expand_trials, load_experiment
from seedgrpo.config.applicability import NOT_APPLICABLE
from seedgrpo.sweep.layout import SweepDir, SweepRecord
from seedgrpo.sweep.outcome import FAILED, FINISHED, STOPPED_EARLY, WALL_TIME
from seedgrpo.sweep.space import SweepSpace
from seedgrpo.sweep.tracking import (
    BEST_RUN_TAG,
    BEST_TRIAL_TAG,
    PARENT_TAG,
    STOPPED_TAG,
    TRIAL_TAG,
    TRIALS_TABLE,
    ChildRun,
    ParentRun,
)
from seedgrpo.sweep.trainable import SweepContext
from seedgrpo.tracking import MlflowRun
from seedgrpo.tracking.mlflow_run import tracking_client

pytestmark = pytest.mark.slow  # a real SQLite MLflow store: ~5-10 s a test on 2 loaded cores

METRIC = "eval/heldout/pass_at_1"
EXPERIMENT_FILE = Path(__file__).parents[3] / "experiments" / "alpha_grid.yaml"
# (trial, MLflow status, stopped early, ranking metric or None): one of each ending
CHILDREN = [("none", "FINISHED", False, 0.25), ("linear-a0.5", "FINISHED", False, 0.5),
            ("linear-a1", "FINISHED", True, 0.375), ("exp-a1", "FAILED", False, None)]


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One store for the module (its schema migrations take seconds); each test its own
    experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def test_a_trial_logs_what_it_ignores_as_na(uri: str, tmp_path: Path) -> None:
    cfg = ExperimentConfig.model_validate({"search_space": {
        "algorithm.modulation": {"grid": ["none", "linear"]},
        "algorithm.alpha": {"grid": [0.5]}}})
    trials = expand_trials(cfg)
    context = SweepContext(SweepSpace.from_trials(cfg, trials), str(tmp_path), uri,
                           "honest-params", None)
    client = tracking_client(uri)
    logged = {}
    for trial in trials:
        (tmp_path / trial.name).mkdir()
        child = ChildRun.open(tmp_path / trial.name, context, trial)
        child.finish("FINISHED")
        logged[trial.name] = client.get_run(child.run.run_id)
    none, linear = logged["none"], logged["linear-a0.5"]
    assert none.data.params["algorithm.alpha"] == NOT_APPLICABLE  # not the 0.02 it ignores
    assert none.data.params["algorithm.uncertainty"] == NOT_APPLICABLE
    assert none.data.params["algorithm.gcpo.kappa"] == NOT_APPLICABLE
    assert none.data.params["algorithm.estimator"] == "rao"  # its SE is still logged
    assert linear.data.params["algorithm.alpha"] == "0.5"
    assert linear.data.params["algorithm.uncertainty"] == "semantic_entropy"
    assert linear.data.params["algorithm.gcpo.kappa"] == NOT_APPLICABLE
    # every trial has every param column; the varied tag names what each one swept
    assert none.data.params.keys() == linear.data.params.keys()
    assert none.data.tags["seedgrpo.varied"] == "algorithm.modulation"
    assert linear.data.tags["seedgrpo.varied"] == "algorithm.modulation,algorithm.alpha"
    # config.json keeps the real config the trial ran with
    stored = client.download_artifacts(none.info.run_id, "config.json", str(tmp_path))
    assert json.loads(Path(stored).read_text())["algorithm"]["alpha"] == 0.02


def _sweep(uri: str, tmp_path: Path, experiment: str
           ) -> tuple[SweepRecord, SweepDir, Any, list[Any]]:
    loaded = load_experiment(EXPERIMENT_FILE)
    trials = expand_trials(loaded.config)
    sweep = SweepDir.new(tmp_path / experiment)
    record = SweepRecord(experiment_file=str(EXPERIMENT_FILE), overrides=[], fingerprint="-",
                         experiment_name=experiment, mlflow_uri=uri, metric=METRIC)
    return record, sweep, loaded, trials


def _children(uri: str, record: SweepRecord, children: list[tuple[str, str, bool, Any]]
              ) -> dict[str, str]:
    ids = {}
    for name, status, stopped, value in children:
        tags = {PARENT_TAG: str(record.parent_run_id), TRIAL_TAG: name}
        if stopped:
            tags[STOPPED_TAG] = "true"
        run = MlflowRun(uri, record.experiment_name, run_name=name, config={}, tags=tags)
        if value is not None:
            run.log_metrics(1, {METRIC: 0.0, "train/reward_mean": 0.1})
            run.log_metrics(4, {METRIC: value})  # the last value is what counts
        run.finish(status)
        ids[name] = run.run_id
    return ids


def _report(directory: Path) -> Path:
    """A report as ``write_report`` leaves it, reduced to what the parent logs."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = [{"trial": name, "status": status, "modulation": name.split("-")[0],
             "alpha": None if name == "none" else float(name.split("-a")[1]),
             METRIC: value, "run_id": f"id-{name}"}
            for name, status, _, value in CHILDREN]
    (directory / "summary.json").write_text(json.dumps({"metric": METRIC, "trials": rows}))
    (directory / "trials.csv").write_text("trial\n" + "\n".join(r["trial"] for r in rows))
    return directory


def test_a_finished_sweeps_parent_is_a_row_worth_reading(uri: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # load_table searches the global store
    record, sweep, loaded, trials = _sweep(uri, tmp_path, "parent-finished")
    parent = ParentRun.open(record, sweep, loaded, trials)
    record.parent_run_id = parent.run_id
    ids = _children(uri, record, CHILDREN)
    record.status, record.best_trial = "FINISHED", "linear-a0.5"
    parent.close(record, _report(tmp_path / "report"))

    client = tracking_client(uri)
    run = client.get_run(parent.run_id)
    assert run.info.status == "FINISHED"
    metrics = dict(run.data.metrics)
    assert metrics.pop(WALL_TIME) > 0
    # the best trial's last value, under the trials' own metric name: one column for all
    assert metrics == {FINISHED: 2, FAILED: 1, STOPPED_EARLY: 1, METRIC: 0.5}
    assert run.data.tags[BEST_TRIAL_TAG] == "linear-a0.5"
    assert run.data.tags[BEST_RUN_TAG] == ids["linear-a0.5"]
    # the report's files, and its trials as a table the UI's artifact view renders
    files = {a.path for a in client.list_artifacts(parent.run_id, "report")}
    assert {"report/summary.json", "report/trials.csv", TRIALS_TABLE} <= files
    assert {"path": TRIALS_TABLE, "type": "table"} in \
        json.loads(run.data.tags["mlflow.loggedArtifacts"])
    table = client.load_table(run.info.experiment_id, TRIALS_TABLE, run_ids=[parent.run_id])
    assert list(table["trial"]) == [c[0] for c in CHILDREN]
    assert list(table["alpha"]) == ["-", 0.5, 1.0, 1.0]  # `none` has no alpha
    assert list(table[METRIC])[-1] == "-"  # the failed trial logged none

    # a second sweep of the experiment: the two parent rows compare in one column
    record2, sweep2, _, _ = _sweep(uri, tmp_path / "second", "parent-finished")
    parent2 = ParentRun.open(record2, sweep2, loaded, trials)
    record2.parent_run_id = parent2.run_id
    _children(uri, record2, [("none", "FINISHED", False, 0.125)])
    record2.status, record2.best_trial = "FINISHED", "none"
    parent2.close(record2, None)
    rows = client.search_runs([run.info.experiment_id],
                              filter_string="tags.`seedgrpo.role` = 'sweep'",
                              order_by=[f"metrics.`{METRIC}` DESC"])
    assert [(r.info.run_id, r.data.metrics[METRIC]) for r in rows] == \
        [(parent.run_id, 0.5), (parent2.run_id, 0.125)]


def test_an_interrupted_then_resumed_sweep_closes_its_parent_twice(
        uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # load_table searches the global store
    record, sweep, loaded, trials = _sweep(uri, tmp_path, "parent-resumed")
    parent = ParentRun.open(record, sweep, loaded, trials)
    record.parent_run_id = parent.run_id
    ids = _children(uri, record, [("none", "FINISHED", False, 0.25),
                                  ("linear-a0.5", "KILLED", False, 0.75)])
    record.status, record.best_trial = "INTERRUPTED", None  # no trial had finished its eval
    report = _report(tmp_path / "report")
    parent.close(record, report)
    client = tracking_client(uri)
    first = client.get_run(parent.run_id)
    assert first.info.status == "KILLED"
    interrupted = dict(first.data.metrics)
    wall = interrupted.pop(WALL_TIME)
    # the killed trial counts in none of the three, and no best: no ranking metric
    assert interrupted == {FINISHED: 1, FAILED: 0, STOPPED_EARLY: 0}
    assert BEST_TRIAL_TAG not in first.data.tags

    # the resume continues the parent; the killed trial finishes, then a trial fails
    record.status = "RUNNING"
    resumed = ParentRun.open(record, sweep, loaded, trials)
    assert resumed.run_id == parent.run_id
    client.update_run(ids["linear-a0.5"], status="FINISHED")
    _children(uri, record, [("exp-a1", "FAILED", False, None)])
    record.status, record.best_trial = "FAILED", "linear-a0.5"
    resumed.close(record, report)
    second = client.get_run(parent.run_id)
    assert second.info.status == "FAILED"
    assert second.data.metrics[WALL_TIME] > wall  # both sessions' time
    assert {k: v for k, v in second.data.metrics.items() if k != WALL_TIME} == \
        {FINISHED: 2, FAILED: 1, STOPPED_EARLY: 0, METRIC: 0.75}
    assert second.data.tags[BEST_RUN_TAG] == ids["linear-a0.5"]
    # the table is replaced, not appended to (MlflowClient.log_table would list it twice)
    table = client.load_table(second.info.experiment_id, TRIALS_TABLE, run_ids=[parent.run_id])
    assert len(table) == len(CHILDREN)

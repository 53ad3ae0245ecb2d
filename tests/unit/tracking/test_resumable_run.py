"""``ResumableRun``, the MLflow run every training run keeps in its output directory (a sweep's
trials and ``seedgrpo-train`` alike), against a real SQLite store: a rerun in the same directory
continues the run, and a step MLflow already has is not logged again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seedgrpo.tracking.mlflow_run import RUN_FILE, ResumableRun, kept_run_id, tracking_client

pytestmark = pytest.mark.slow  # a real SQLite MLflow store: its schema migrations take seconds


def _open(directory: Path, uri: str) -> ResumableRun:
    return ResumableRun.open_in(directory, uri, "resumable", run_name="r",
                                config={"algorithm": {"alpha": 0.5, "gamma": 1.0}},
                                not_applicable=frozenset({"algorithm.gamma"}))


def test_a_rerun_in_the_same_directory_continues_the_run_without_repeating_steps(
        tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = _open(tmp_path, uri)
    first.log_metrics(1, {"train/loss": 1.0})
    first.log_metrics(2, {"train/loss": 2.0})
    first.finish("FAILED")  # interrupted after step 2; its checkpoint was at step 1
    assert kept_run_id(tmp_path) == first.run.run_id

    again = _open(tmp_path, uri)
    assert again.run.run_id == first.run.run_id and again.logged_step == 2
    again.log_metrics(2, {"train/loss": 20.0})  # step 2 redone: MLflow has it already
    again.log_metrics(3, {"train/loss": 3.0})
    again.finish("FINISHED")

    client = tracking_client(uri)
    history = client.get_metric_history(first.run.run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 2.0), (3, 3.0)]
    (only,) = client.search_runs([client.get_experiment_by_name("resumable").experiment_id])
    assert only.info.status == "FINISHED"
    assert only.data.params == {"algorithm.alpha": "0.5", "algorithm.gamma": "n/a"}


def test_each_directory_keeps_its_own_run_and_a_torn_file_keeps_none(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = _open(tmp_path / "a", uri), _open(tmp_path / "b", uri)
    assert a.run.run_id != b.run.run_id
    (tmp_path / "a" / RUN_FILE).write_text("{torn")  # a write killed half-way
    assert kept_run_id(tmp_path / "a") is None


def test_a_metric_new_at_the_last_step_is_logged_and_the_redone_ones_are_not(
        tmp_path: Path) -> None:
    """A finished run evaluated again (other benchmarks) adds its results at its last step."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = _open(tmp_path, uri)
    first.log_metrics(2, {"train/loss": 2.0, "eval/amc23/pass_at_1": 0.1})
    first.finish("FINISHED")
    again = _open(tmp_path, uri)
    again.log_metrics(2, {"eval/amc23/pass_at_1": 0.9, "eval/math500/pass_at_1": 0.3})
    again.finish("FINISHED")
    client = tracking_client(uri)
    run_id = first.run.run_id
    assert [m.value for m in client.get_metric_history(run_id, "eval/amc23/pass_at_1")] == [0.1]
    assert [(m.step, m.value) for m in client.get_metric_history(
        run_id, "eval/math500/pass_at_1")] == [(2, 0.3)]


def test_a_kept_run_that_is_gone_or_in_another_store_gives_way_to_a_new_run(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The checkpoints stay usable: a deleted run, or a tracking URI changed since, opens a new
    run with a warning instead of failing the training run."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = _open(tmp_path, uri)
    first.finish("FAILED")
    # the kept run is not in the store (deleted for good, or the store was recreated)
    state = json.loads((tmp_path / RUN_FILE).read_text())
    (tmp_path / RUN_FILE).write_text(json.dumps({**state, "run_id": "0" * 32}))
    with caplog.at_level("WARNING"):
        second = _open(tmp_path, uri)
    assert second.run.run_id != first.run.run_id
    assert "is not in" in caplog.text and kept_run_id(tmp_path) == second.run.run_id

    other = f"sqlite:///{tmp_path / 'other.db'}"
    with caplog.at_level("WARNING"):
        third = _open(tmp_path, other)
    assert third.run.run_id not in (first.run.run_id, second.run.run_id)
    assert "tracking now goes to" in caplog.text
    assert tracking_client(other).get_run(third.run.run_id).info.status == "RUNNING"

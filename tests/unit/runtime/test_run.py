"""How a training run ends its MLflow run (``runtime.run.TrainingSteps``), on a real SQLite
store. The training loop is a stand-in that yields steps and then fails, because what is pinned
is the order of the endings, not Ray's actors (the integration tests run the real loop)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from seedgrpo.runtime.run import RESULT_FILE, TrainingSteps
from seedgrpo.tracking.mlflow_run import ResumableRun


class _LoopThatFailsAtStep2:
    """What ``TrainingSteps`` uses of a ``TrainingLoop``: steps 0 and 1, then (after
    ``meanwhile``) an error."""

    def __init__(self, output_dir: Path, meanwhile: Callable[[], None] = lambda: None) -> None:
        self.output_dir = output_dir
        self.meanwhile = meanwhile
        self.startup_s = 1.0
        self.reused_actors = False
        self.shut_down = False
        self.log_artifact = None

    def steps(self) -> Iterator[tuple[int, dict[str, float]]]:
        yield 0, {"eval/heldout/pass_at_1": 0.25}
        yield 1, {"train/loss": 0.5}
        self.meanwhile()
        raise RuntimeError("step 2 failed: a learner rank died")

    def shutdown(self) -> None:
        self.shut_down = True


def _tracker(tmp_path: Path) -> tuple[ResumableRun, MlflowClient]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    tracker = ResumableRun.open_in(run_dir, uri, "steps", run_name="trial", config={})
    return tracker, MlflowClient(uri)


def test_a_failed_run_is_marked_failed_in_mlflow(tmp_path: Path) -> None:
    tracker, client = _tracker(tmp_path)
    loop = _LoopThatFailsAtStep2(tmp_path / "run")
    with pytest.raises(RuntimeError, match="step 2 failed"):
        list(TrainingSteps(loop, lambda: tracker))  # type: ignore[arg-type]
    run = client.get_run(tracker.run.run_id)
    assert run.info.status == "FAILED" and loop.shut_down
    assert run.data.metrics == {"eval/heldout/pass_at_1": 0.25, "train/loss": 0.5,
                                "time/startup_s": 1.0, "time/warm_start": 0.0}
    assert not (tmp_path / "run" / RESULT_FILE).exists()


def test_a_failed_run_raises_its_own_error_when_mlflow_refuses_to_close_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tracker, client = _tracker(tmp_path)
    # deleted in the UI while the trial ran: MLflow then refuses to set its status
    loop = _LoopThatFailsAtStep2(tmp_path / "run",
                                 meanwhile=lambda: client.delete_run(tracker.run.run_id))
    with caplog.at_level(logging.WARNING, logger="seedgrpo.runtime.run"), \
            pytest.raises(RuntimeError, match="step 2 failed"):
        list(TrainingSteps(loop, lambda: tracker))  # type: ignore[arg-type]
    assert "could not mark the run's MLflow run FAILED: MlflowException" in caplog.text

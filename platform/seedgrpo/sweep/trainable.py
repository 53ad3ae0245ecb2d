"""The function trainable: one Tune trial runs one ``TrialRunner`` in its own placement group.

Tune starts this function in bundle 0 of the trial's placement group; the runner places the
scorer, rollout workers and learner ranks in the other bundles of that same group (never a
nested group). Every step is reported to Tune (which the console, ASHA and Optuna read) and
logged to the trial's MLflow child run.

A trial is restartable by construction: its directory is named after the trial, the runner
continues from the last checkpoint there, the child run id is kept there (a retry or a resumed
sweep continues the same MLflow run, and steps MLflow already has are not logged twice), and a
finished trial leaves ``result.json``, so it is never trained again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seedgrpo.sweep.cluster import check_trial_node
from seedgrpo.sweep.layout import SweepDir, read_json, write_json
from seedgrpo.sweep.space import SweepSpace
from seedgrpo.sweep.tracking import ChildRun

__all__ = ["SweepContext", "run_trial", "read_result", "RESULT_FILE", "STEP_KEY"]

logger = logging.getLogger(__name__)

RESULT_FILE = "result.json"
STEP_KEY = "step"  # the time attribute ASHA reads: optimizer steps done


@dataclass(frozen=True)
class SweepContext:
    """What every trial needs from the sweep (picklable; sent once through the object store)."""

    space: SweepSpace
    sweep_dir: str
    mlflow_uri: str | None
    experiment_name: str
    parent_run_id: str | None
    sweep_name: str


def read_result(trial_dir: Path) -> dict[str, Any] | None:
    """A finished trial's final metrics, or None while it is not finished."""
    return read_json(trial_dir / RESULT_FILE)


def _write_result(trial_dir: Path, step: int, metrics: dict[str, float]) -> None:
    write_json(trial_dir / RESULT_FILE, {"step": step, "metrics": metrics})


def run_trial(config: dict[str, Any], context: SweepContext) -> None:
    """Tune's function trainable for one trial (see the module docstring)."""
    from ray import tune

    from seedgrpo.runtime.trial import TrialRunner

    check_trial_node(Path(context.sweep_dir))  # a node added after the sweep's own check
    trial_id = tune.get_context().get_trial_id() or ""
    trial = context.space.resolve(config, trial_id)
    cfg = trial.config
    trial_dir = SweepDir(Path(context.sweep_dir)).trial_dir(trial.name)
    trial_dir.mkdir(parents=True, exist_ok=True)
    done = read_result(trial_dir)
    if done is not None:  # finished before the sweep was interrupted: report, do not retrain
        tune.report({**done["metrics"], STEP_KEY: done["step"], "seedgrpo/reused": 1.0})
        return
    child = ChildRun.open(trial_dir, context, trial) if context.mlflow_uri else None
    last: dict[str, Any] = {"step": 0, "metrics": {}}

    def report(step: int, metrics: dict[str, float]) -> None:
        if child is not None:
            child.log_metrics(step, metrics)
        last.update(step=step, metrics={**last["metrics"], **metrics})
        tune.report({**metrics, STEP_KEY: step})

    def log_artifact(path: Path, where: str) -> None:
        if child is not None:
            child.log_artifact(path, where)

    runner = TrialRunner(cfg, trial_dir, report=report, log_artifact=log_artifact)
    try:
        runner.run()
    except Exception:  # not SystemExit: a trial Tune stops (ASHA) is the driver's to close
        if child is not None:  # Tune retries (max_failures) or records the error
            child.finish("FAILED")
        raise
    _write_result(trial_dir, last["step"], last["metrics"])
    if child is not None:
        child.finish("FINISHED")

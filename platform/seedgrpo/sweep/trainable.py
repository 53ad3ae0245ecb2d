"""The Tune trainable: one trial per ``TrialRunner``, and warm actors from one trial to the next.

Tune starts the trainable in bundle 0 of the trial's placement group; the runner places the
scorer, rollout workers and learner ranks in the other bundles of that same group (never a
nested group). Each ``step()`` is one training step (step 0: the evaluation before training),
reported to Tune (which the console, ASHA and Optuna read) and logged to the trial's MLflow
child run.

Warm trials (``tune.reuse_actors``): Tune keeps a finished trial's trainable, with its
placement group, for the next trial that asks for the same resources, and calls
``reset_config``. The trainable keeps the rollout engines and learner ranks it started, so the
next trial resets them (base weights, fresh optimizer, scheduler and RNGs) instead of starting
vLLM and DeepSpeed again; a trial that cannot share them (another model or shape) replaces them.
Tune's own reuse keeps only the trainable: the actors it started live here, in the trainable.

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

from ray import tune

from seedgrpo.sweep.cluster import check_trial_node
from seedgrpo.sweep.layout import SweepDir, read_json, write_json
from seedgrpo.sweep.space import SweepSpace
from seedgrpo.sweep.tracking import ChildRun

__all__ = ["SweepContext", "TrialTrainable", "read_result", "RESULT_FILE", "STEP_KEY"]

logger = logging.getLogger(__name__)

RESULT_FILE = "result.json"
STEP_KEY = "step"  # the time attribute ASHA reads: optimizer steps done


@dataclass(frozen=True)
class SweepContext:
    """What every trial needs from the sweep (picklable; sent once through the object store).

    ``mlflow_uri`` is the live tracking URI, password included: ``tune.with_parameters`` keeps
    the context in Ray's object store, never in Tune's state files, and the space's configs
    hold the URI redacted (``SweepSpace.from_trials``), so no file under the sweep has it.
    """

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


class TrialTrainable(tune.Trainable):
    """One trial at a time; the actors outlive a trial when Tune reuses this trainable."""

    def setup(self, config: dict[str, Any], context: SweepContext) -> None:
        self.context = context
        self.actors: Any = None  # the runtime's ActorSet, kept between trials
        self._begin(config)

    def _begin(self, config: dict[str, Any]) -> None:
        """Prepare the trial ``config`` stands for (nothing starts until the first step)."""
        from seedgrpo.runtime.trial import TrialRunner

        context = self.context
        check_trial_node(Path(context.sweep_dir))  # a node added after the sweep's own check
        trial = context.space.resolve(config, self.trial_id or "")
        self.total = trial.config.train.steps
        self.trial_dir = SweepDir(Path(context.sweep_dir)).trial_dir(trial.name)
        self.trial_dir.mkdir(parents=True, exist_ok=True)
        self.done = read_result(self.trial_dir)
        self.child = self.runner = self.steps = None
        self.started = False
        self.last: dict[str, Any] = {"step": 0, "metrics": {}}
        if self.done is not None:  # finished before the sweep was interrupted: not retrained
            return
        self.child = (ChildRun.open(self.trial_dir, context, trial) if context.mlflow_uri
                      else None)
        child = self.child

        def log_artifact(path: Path, where: str) -> None:
            if child is not None:
                child.log_artifact(path, where)

        self.runner = TrialRunner(trial.config, self.trial_dir, log_artifact=log_artifact,
                                  actors=self.actors)
        self.actors = None  # the runner owns them now (and shuts them down on an error)
        self.steps = self.runner.steps()

    def step(self) -> dict[str, Any]:
        if self.done is not None:  # report the stored result once, and end
            return {**self.done["metrics"], STEP_KEY: self.done["step"],
                    "seedgrpo/reused": 1.0, "done": True}
        try:
            step, metrics = next(self.steps)
        except Exception:  # the runner has shut its actors down; Tune retries or records it
            if self.child is not None:
                self.child.finish("FAILED")
            self.runner = self.steps = None
            raise
        if not self.started:  # the trial's first result: how long it took to get going
            self.started = True
            metrics = {**metrics, "time/startup_s": float(self.runner.startup_s or 0.0),
                       "time/warm_start": float(self.runner.reused_actors)}
        if self.child is not None:
            self.child.log_metrics(step, metrics)
        self.last.update(step=step, metrics={**self.last["metrics"], **metrics})
        result: dict[str, Any] = {**metrics, STEP_KEY: step}
        if step >= self.total:
            for _ in self.steps:  # the runner's epilogue: weight loads settle
                pass
            self._finish()
            result["done"] = True
        return result

    def _finish(self) -> None:
        _write_result(self.trial_dir, self.last["step"], self.last["metrics"])
        if self.child is not None:
            self.child.finish("FINISHED")
        self.actors, self.runner.actors = self.runner.actors, None  # for the next trial
        self.runner = self.steps = None

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Tune reuses this trainable for another trial: keep the actors, start that trial.

        A trial Tune stopped early (ASHA) ends here mid-run: its runner is dropped with the
        actors kept (the driver closes its MLflow run); anything it left in flight on the
        actors finishes before the next trial's reset, since each actor runs its calls in
        order."""
        if self.runner is not None:
            self.actors, self.runner.actors = self.runner.actors, None
            if self.steps is not None:
                self.steps.close()
        self.runner = self.steps = None
        self._begin(new_config)
        return True

    def cleanup(self) -> None:
        """The trainable ends (no further trial wants it): stop the actors."""
        if self.runner is not None:
            self.actors, self.runner.actors = self.runner.actors, None
        if self.actors is not None:
            self.actors.shutdown()
            self.actors = None

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        """Tune's checkpoints are not used: the runner checkpoints into the trial directory,
        which a retried or resumed trial continues from."""
        return {}

    def load_checkpoint(self, checkpoint: Any) -> None:
        return None

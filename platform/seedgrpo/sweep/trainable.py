"""The Tune trainable: one trial at a time (``runtime.run``), and warm actors from one to the next.

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

A trial runs as every training run does (``runtime.run.run_training``, shared with
``seedgrpo-train``): its directory is named after the trial, the runner continues from the last
checkpoint there, the child run id is kept there (a retry or a resumed sweep continues the same
MLflow run, and steps MLflow already has are not logged twice), and a finished trial leaves
``result.json``, so it is never trained again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune

from seedgrpo.runtime.run import read_result
from seedgrpo.sweep.cluster import check_trial_node
from seedgrpo.sweep.layout import SweepDir
from seedgrpo.sweep.space import SweepSpace
from seedgrpo.sweep.tracking import ChildRun

if TYPE_CHECKING:
    from seedgrpo.runtime.actor_set import ActorSet
    from seedgrpo.runtime.run import TrainingSteps

__all__ = ["SweepContext", "SweepTrainable", "STEP_KEY"]

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
    # each rollout.engine setting of the checked configs, resolved once by the driver
    # (``check_before_ray``)
    engines: Mapping[str, str] = field(default_factory=dict)


class SweepTrainable(tune.Trainable):
    """One trial at a time; the actors outlive a trial when Tune reuses this trainable."""

    def setup(self, config: dict[str, Any], context: SweepContext) -> None:
        self.context = context
        self.actors: ActorSet | None = None  # kept between trials
        self._begin(config)

    def _begin(self, config: dict[str, Any]) -> None:
        """Prepare the trial ``config`` stands for (nothing starts until the first step)."""
        from seedgrpo.runtime.run import run_training
        from seedgrpo.runtime.trial import checked_engine

        context = self.context
        check_trial_node(Path(context.sweep_dir))  # a node added after the sweep's own check
        trial = context.space.resolve(config, self.trial_id or "")
        cfg = trial.config
        self.total = cfg.train.steps
        trial_dir = SweepDir(Path(context.sweep_dir)).trial_dir(trial.name)
        trial_dir.mkdir(parents=True, exist_ok=True)
        self.done = read_result(trial_dir)
        self.steps: TrainingSteps | None = None
        if self.done is not None:  # finished before the sweep was interrupted: not retrained
            return
        # the driver checked every trial of a grid before Ray started (``check_before_ray``)
        # and passes its answers when the trials run on its node; an adaptive search's trials
        # are sampled later, and a multi-node cluster's run elsewhere: each is checked here
        checked = not context.space.adaptive and cfg.rollout.engine in context.engines
        engine = context.engines[cfg.rollout.engine] if checked else checked_engine(cfg)
        open_child = ((lambda: ChildRun.open(trial_dir, context, trial)) if context.mlflow_uri
                      else None)
        self.steps = run_training(cfg, trial_dir, engine_kind=engine, open_tracker=open_child,
                                  actors=self.actors)
        self.actors = None  # the run owns them now (and shuts them down on an error)

    def step(self) -> dict[str, Any]:
        if self.done is not None:  # report the stored result once, and end
            return {**self.done["metrics"], STEP_KEY: self.done["step"],
                    "seedgrpo/reused": 1.0, "done": True}
        assert self.steps is not None
        try:
            step, metrics = next(self.steps)
        except Exception:  # the run has shut its actors down; Tune retries or records it
            self.steps = None
            raise
        result: dict[str, Any] = {**metrics, STEP_KEY: step}
        if step >= self.total:
            self.steps.finish()  # the run's epilogue: weight loads settle, result.json
            self.actors = self.steps.take_actors()  # for the next trial
            self.steps = None
            result["done"] = True
        return result

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Tune reuses this trainable for another trial: keep the actors, start that trial.

        A trial Tune stopped early (ASHA) ends here mid-run: its run is stopped with the
        actors kept (the driver closes its MLflow run)."""
        if self.steps is not None:
            self.actors = self.steps.stop()
        self.steps = None
        self._begin(new_config)
        return True

    def cleanup(self) -> None:
        """The trainable ends (no further trial wants it): stop the actors."""
        if self.steps is not None:
            self.actors = self.steps.take_actors()
            self.steps = None
        if self.actors is not None:
            self.actors.shutdown()
            self.actors = None

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        """Tune's checkpoints are not used: the runner checkpoints into the trial directory,
        which a retried or resumed trial continues from."""
        return {}

    def load_checkpoint(self, checkpoint: Any) -> None:
        return None

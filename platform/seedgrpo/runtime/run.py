"""One training run, the way both ``seedgrpo-train`` and a sweep's trial run it.

``run_training`` wires a ``TrainingLoop`` to its output directory and its MLflow run and hands
back its steps one at a time: the sweep's Tune trainable takes one per Tune step, and
``seedgrpo-train`` loops over them with its progress printer. What a training run leaves is
therefore the same whoever started it:

- ``checkpoints/``, ``train/`` and ``eval/`` in the output directory (``TrainingLoop``);
- its MLflow run, whose id and last logged step are kept in the output directory
  (``tracking.mlflow_run.ResumableRun``): a rerun in the same directory (a retried trial, a
  resumed sweep, ``seedgrpo-train`` again after an interruption) continues the same run, and
  the steps redone after the last checkpoint are not logged twice;
- ``result.json`` when it ends: the last step and the metrics last seen of each name (a sweep
  never trains a trial that has one again).

The first step's metrics carry ``time/startup_s`` (from the first ``next`` to the first step:
model, data, actors, resume) and ``time/warm_start`` (1 when the actors of a finished run were
reused: ``tune.reuse_actors``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from seedgrpo.fileio import atomic_write_json, read_json

if TYPE_CHECKING:  # Ray, torch and the engines load when a run starts, not on import
    from seedgrpo.config.schema import ExperimentConfig
    from seedgrpo.runtime.actor_set import ActorSet
    from seedgrpo.runtime.trial import TrainingLoop

__all__ = ["RESULT_FILE", "RunTracker", "TrainingSteps", "read_result", "run_training"]

RESULT_FILE = "result.json"

logger = logging.getLogger(__name__)


class RunTracker(Protocol):
    """Where a training run's metrics and files go (``ResumableRun``, or the sweep's
    ``ChildRun``); ``log_metrics`` is expected to skip steps it already has."""

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def log_artifact(self, path: Path, where: str) -> None: ...

    def finish(self, status: str) -> None: ...


def read_result(output_dir: Path) -> dict[str, Any] | None:
    """A finished run's ``{"step": ..., "metrics": {...}}``, or None while it is not finished."""
    return read_json(output_dir / RESULT_FILE)


class TrainingSteps(Iterator[tuple[int, dict[str, float]]]):
    """The steps of one training run: each ``next()`` runs one step (step 0: the evaluation
    before training) and returns ``(step, metrics)``, logged to the run's tracker.

    When the steps run out the run is complete: the engines' last weight loads have settled,
    ``result.json`` is written and the tracker finished (FINISHED). A step that raises
    shuts the actors down and finishes the tracker FAILED. ``stop()`` ends the run early
    (a scheduler stopped it) and leaves the tracker to its owner; ``abandon()`` ends it
    for good.
    """

    def __init__(self, runner: TrainingLoop, open_tracker: Callable[[], RunTracker] | None
                 ) -> None:
        self.runner = runner
        self.tracker: RunTracker | None = None
        self.last: dict[str, Any] = {"step": 0, "metrics": {}}
        self.ended: str | None = None  # the status the tracker was finished with
        self._open_tracker = open_tracker
        self._steps = self._run()

    def __next__(self) -> tuple[int, dict[str, float]]:
        return next(self._steps)

    def _run(self) -> Iterator[tuple[int, dict[str, float]]]:
        runner = self.runner
        inner = runner.steps()
        status: str | None = None
        try:
            if self._open_tracker is not None:  # opened at the first step: nothing before
                self.tracker = tracker = self._open_tracker()
                runner.log_artifact = tracker.log_artifact
            first = True
            for step, metrics in inner:
                if first:  # how long the run took to get going, and whether it ran warm
                    first = False
                    metrics = {**metrics, "time/startup_s": float(runner.startup_s or 0.0),
                               "time/warm_start": float(runner.reused_actors)}
                if self.tracker is not None:
                    self.tracker.log_metrics(step, metrics)
                self.last = {"step": step, "metrics": {**self.last["metrics"], **metrics}}
                yield step, metrics
            atomic_write_json(runner.output_dir / RESULT_FILE, self.last)
            status = "FINISHED"
        except GeneratorExit:  # stopped from outside (stop()): the tracker's owner ends it
            raise
        except BaseException:
            status = "FAILED"
            runner.shutdown()  # done by the runner when a step failed; not when the tracker did
            raise
        finally:
            inner.close()
            if status is not None:
                self._end(status)

    def _end(self, status: str) -> None:
        """Finish the tracker with ``status``, once. A run that failed or was abandoned is
        already raising its own error: a tracker that cannot be closed then (its server gone,
        its run deleted) is a warning, so that error, not the tracker's, is what the user sees.
        A finished run whose tracker cannot record it raises: its result would be lost."""
        if self.ended is not None:
            return
        self.ended = status
        if self.tracker is None:
            return
        try:
            self.tracker.finish(status)
        except Exception as err:  # noqa: BLE001 - any tracker failure; the run's error follows
            if status == "FINISHED":
                raise
            logger.warning("could not mark the run's MLflow run %s: %s: %s", status,
                           type(err).__name__, err)

    def finish(self) -> None:
        """Run what is left after the last step (the weight loads in flight settle, the result
        is written, the tracker finished); a step still left is run too."""
        for _ in self:
            pass

    def take_actors(self) -> ActorSet | None:
        """The run's actors, now the caller's (for the next run: warm trials); this run no
        longer stops them."""
        actors, self.runner.actors = self.runner.actors, None
        return actors

    def stop(self) -> ActorSet | None:
        """End the run where it is and hand back its actors (anything left in flight on them
        finishes before the next run's calls: each actor runs its calls in order)."""
        actors = self.take_actors()
        self._steps.close()
        return actors

    def abandon(self, status: str = "FAILED") -> None:
        """End the run where it is, for good: its actors stopped and its tracker finished
        with ``status`` (unless it has ended already). For a caller that fails between steps
        (``seedgrpo-train`` interrupted while printing)."""
        self._steps.close()
        self.runner.shutdown()
        self._end(status)

    def shutdown(self) -> None:
        """Stop the run's actors (and the placement group it made)."""
        self.runner.shutdown()


def run_training(cfg: ExperimentConfig, output_dir: Path, *, engine_kind: str,
                 open_tracker: Callable[[], RunTracker] | None = None,
                 actors: ActorSet | None = None) -> TrainingSteps:
    """The steps of a training run of ``cfg`` in ``output_dir``; nothing starts until the
    first ``next()``.

    ``engine_kind``: ``checked_engine(cfg)``, called once by the caller before Ray started.
    ``open_tracker``: opens the run's MLflow run (at the first step), or None to track
    nothing. ``actors``: a finished run's actors, reset for this one when they can serve it.
    """
    from seedgrpo.runtime.trial import TrainingLoop

    output_dir.mkdir(parents=True, exist_ok=True)
    runner = TrainingLoop(cfg, output_dir, actors=actors, engine_kind=engine_kind)
    return TrainingSteps(runner, open_tracker)

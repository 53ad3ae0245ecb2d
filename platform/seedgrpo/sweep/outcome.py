"""What a sweep's parent run logs as metrics when it closes: one row of the runs table.

MLflow's runs table shows a sweep as its parent row; with these metrics that row says how the
sweep went (trials finished, failed, stopped early; wall time) and what it found: the best
trial's value of the ranking metric, under the metric's own name, so the parent rows of two
sweeps of one experiment line up in one column (``eval/heldout/pass_at_1``) and compare like
trials do. Pure: the trials come in as ``ChildOutcome`` values (``seedgrpo.sweep.tracking``
reads them from MLflow).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ChildOutcome", "FAILED", "FINISHED", "STOPPED_EARLY", "WALL_TIME", "parent_metrics"]

FINISHED = "sweep/trials_finished"  # ran every step
FAILED = "sweep/trials_failed"
STOPPED_EARLY = "sweep/trials_stopped_early"  # ended by the scheduler (ASHA), not an error
WALL_TIME = "sweep/wall_time_s"  # summed over the sessions of a resumed sweep


@dataclass(frozen=True)
class ChildOutcome:
    """One trial's child run as the parent sees it when the sweep ends."""

    trial: str  # the trial name (``seedgrpo.trial`` tag)
    status: str  # MLflow run status: FINISHED | FAILED | KILLED | RUNNING | SCHEDULED
    stopped_early: bool
    metric: float | None  # the ranking metric's last logged value; None when never logged


def parent_metrics(children: Sequence[ChildOutcome], *, metric: str, best_trial: str | None,
                   wall_time_s: float) -> dict[str, float]:
    """The parent run's metrics: counts of the trials by how they ended, the wall time, and
    ``metric`` of ``best_trial`` (the sweep's own pick, ``SweepRecord.best_trial``) when that
    trial logged a finite value. A trial that was interrupted (KILLED) or is still running
    counts in none of the three: finished + failed + stopped early < planned says so.

    >>> children = [ChildOutcome("none-s0", "FINISHED", False, 0.25),
    ...             ChildOutcome("linear-a0.5", "FINISHED", True, 0.5),
    ...             ChildOutcome("exp-a0.5", "FAILED", False, None),
    ...             ChildOutcome("exp-a1", "KILLED", False, 0.75)]
    >>> parent_metrics(children, metric="eval/heldout/pass_at_1", best_trial="linear-a0.5",
    ...                wall_time_s=12.5)  # doctest: +NORMALIZE_WHITESPACE
    {'sweep/trials_finished': 1.0, 'sweep/trials_failed': 1.0,
     'sweep/trials_stopped_early': 1.0, 'sweep/wall_time_s': 12.5,
     'eval/heldout/pass_at_1': 0.5}
    """
    ended = [c for c in children if c.status == "FINISHED"]
    metrics = {
        FINISHED: float(sum(not c.stopped_early for c in ended)),
        FAILED: float(sum(c.status == "FAILED" for c in children)),
        STOPPED_EARLY: float(sum(c.stopped_early for c in ended)),
        WALL_TIME: float(wall_time_s),
    }
    best = next((c for c in children if c.trial == best_trial), None)
    if best is not None and best.metric is not None and math.isfinite(best.metric):
        metrics[metric] = float(best.metric)
    return metrics

"""MLflow for a sweep: one parent run per sweep, one child run per trial, never a duplicate.

The parent run is created by the driver when the sweep starts, and its id is kept in
``sweep.json``; a resumed sweep continues it. A child run is created by the trial itself (in its
Ray worker), tagged ``mlflow.parentRunId`` so the MLflow UI nests it under the parent, named from
the varied parameters, with the flattened trial config as params (``n/a`` for a setting the
trial ignores: ``seedgrpo.config.applicability``). It is a ``ResumableRun``: its id and the
last step it logged are kept in the trial's directory, so a retried or resumed trial continues
the same run and skips the steps MLflow already has (metric histories stay one value per step).

When the sweep ends (finished, failed or interrupted), the parent run gets the sweep's outcome
as metrics (``seedgrpo.sweep.outcome``: one comparable row per sweep in the runs table), the
best trial's name and run id as tags, and the report: its files under ``report/`` and the
trials table as an MLflow table artifact, which the UI's artifact view shows as a table.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seedgrpo.config import PlannedTrial
from seedgrpo.config.applicability import not_applicable
from seedgrpo.redact import redact_config, redact_text
from seedgrpo.sweep.layout import read_json
from seedgrpo.sweep.outcome import WALL_TIME, ChildOutcome, parent_metrics
from seedgrpo.tracking import MlflowRun
from seedgrpo.tracking.mlflow_run import (
    ResumableRun,
    kept_run_id,
    log_table,
    metric_name,
    tracking_client,
)

if TYPE_CHECKING:
    from seedgrpo.config import LoadedExperiment
    from seedgrpo.sweep.layout import SweepDir, SweepRecord
    from seedgrpo.sweep.trainable import SweepContext

__all__ = ["ChildRun", "ParentRun", "TRIAL_TAG", "SWEEP_TAG", "ROLE_TAG", "PARENT_TAG",
           "BEST_TRIAL_TAG", "BEST_RUN_TAG", "TRIALS_TABLE", "close_child_run",
           "child_outcomes", "log_report"]

logger = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
ROLE_TAG = "seedgrpo.role"  # sweep | trial
SWEEP_TAG = "seedgrpo.sweep"  # the sweep directory
TRIAL_TAG = "seedgrpo.trial"  # the trial name
STOPPED_TAG = "seedgrpo.stopped_early"
BEST_TRIAL_TAG = "seedgrpo.best_trial"  # the parent's: the best trial's name
BEST_RUN_TAG = "seedgrpo.best_run_id"  # the parent's: the best trial's child run
TRIALS_TABLE = "report/trials_table.json"  # the parent's trials table (an MLflow table)


# characters MLflow's filter grammar cannot hold in a quoted string: it strips the outer quotes
# and unescapes nothing, so ``'``, ``"`` and ``\`` cannot be matched exactly; LIKE's ``%`` and
# ``_`` would be wildcards. Each becomes ``_`` (any one character) in a LIKE pattern.
_UNQUOTABLE = str.maketrans({c: "_" for c in "'\"\\%_"})


def like_pattern(value: str) -> str:
    """A quoted MLflow ``LIKE`` pattern that matches ``value`` and maybe a few look-alikes
    (each quote, backslash, ``%`` or ``_`` matches any character): a filter that always parses,
    whatever a path or name holds. The caller keeps the runs whose tag equals ``value``.

    >>> like_pattern("/runs/it's/20250101-000000")
    "'/runs/it_s/20250101-000000'"
    >>> like_pattern('a"b\\c_d%')
    "'a_b_c_d_'"
    """
    return "'" + value.translate(_UNQUOTABLE) + "'"


def _find_existing(uri: str, experiment: str, sweep_dir: str, name: str) -> str | None:
    """A child run this trial created before its id could be written (a crash in between)."""
    client = tracking_client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    # LIKE narrows the search in the store; the exact match is ours (a path or a trial name
    # may hold quotes, which MLflow's filter strings cannot escape)
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{SWEEP_TAG}` LIKE {like_pattern(sweep_dir)} and "
                      f"tags.`{TRIAL_TAG}` LIKE {like_pattern(name)}",
        max_results=100)
    exact = [r for r in runs
             if r.data.tags.get(SWEEP_TAG) == sweep_dir and r.data.tags.get(TRIAL_TAG) == name]
    return exact[0].info.run_id if exact else None


class ChildRun(ResumableRun):
    """The MLflow run of one trial of a sweep: a ``ResumableRun`` kept in the trial's
    directory, nested under the sweep's parent run."""

    @classmethod
    def open(cls, trial_dir: Path, context: SweepContext, trial: PlannedTrial) -> ResumableRun:
        uri = str(context.mlflow_uri)
        tags = {ROLE_TAG: "trial", SWEEP_TAG: context.sweep_dir, TRIAL_TAG: trial.name,
                "seedgrpo.varied": ",".join(trial.params) or "-"}
        if context.parent_run_id:
            tags[PARENT_TAG] = context.parent_run_id
        # a setting the trial ignores is logged n/a, not as the default it ignores
        return cls.open_in(
            trial_dir, uri, context.experiment_name, run_name=trial.name,
            config=trial.config.model_dump(mode="json"), tags=tags,
            not_applicable=not_applicable(trial.config),
            find_existing=lambda: _find_existing(uri, context.experiment_name,
                                                 context.sweep_dir, trial.name))


def close_child_run(uri: str, trial_dir: Path, status: str, *, stopped_early: bool = False
                    ) -> None:
    """The driver's word on a trial Tune ended (ASHA stops a trial by ending its process)."""
    run_id = kept_run_id(trial_dir)
    if run_id is None:
        return
    client = tracking_client(uri)
    if stopped_early:
        client.set_tag(run_id, STOPPED_TAG, "true")
    if client.get_run(run_id).info.status == "RUNNING" or status != "FINISHED":
        client.set_terminated(run_id, status)


def _log_experiment_file(run: MlflowRun, path: Path) -> None:
    """The experiment file as a parent-run artifact, with any tracking password in it redacted
    (a copy under the same name is logged instead of the file)."""
    import tempfile

    text = path.read_text(encoding="utf-8", errors="replace")
    clean = redact_text(text)
    if clean == text:
        run.log_artifact(path, "experiment")
        return
    with tempfile.TemporaryDirectory(prefix="seedgrpo-") as tmp:
        copy = Path(tmp) / path.name
        copy.write_text(clean, encoding="utf-8")
        run.log_artifact(copy, "experiment")


class ParentRun:
    """The sweep's own run: what was swept, its status, and at the end the report."""

    def __init__(self, run: MlflowRun) -> None:
        self.run = run
        self.run_id = run.run_id
        # the sweep's wall time: this session's, from now, plus what earlier sessions of a
        # resumed sweep logged when they closed
        self._opened = time.monotonic()
        self._earlier_wall_s = float(run.run.data.metrics.get(WALL_TIME, 0.0))

    @classmethod
    def open(cls, record: SweepRecord, sweep: SweepDir, loaded: LoadedExperiment,
             trials: list[PlannedTrial] | tuple[PlannedTrial, ...]) -> ParentRun:
        uri = str(record.mlflow_uri)
        if record.parent_run_id:  # a resumed sweep continues its parent run
            return cls(MlflowRun(uri, record.experiment_name, run_name="", config={},
                                 run_id=record.parent_run_id))
        cfg = loaded.config
        tags = {ROLE_TAG: "sweep", SWEEP_TAG: str(sweep.root),
                "seedgrpo.experiment_file": str(loaded.path),
                "mlflow.note.content": f"Sweep of {loaded.label}: {len(trials)} trials, "
                f"{cfg.tune.search_alg} search, {cfg.tune.scheduler} scheduler, ranked by "
                f"{cfg.tune.metric} ({cfg.tune.mode}). Trials are the nested runs."}
        # the parent's params say what was swept, not the base config's values (which its
        # trials override): the UI's param columns stay the trials' own
        run = MlflowRun(uri, record.experiment_name, run_name=f"sweep-{sweep.root.name}",
                        config={}, tags=tags)
        base = redact_config(cfg.model_dump(mode="json"))  # no tracking password in MLflow
        run.client.log_dict(run.run_id, base, "config.json")
        run.log_params({f"tune.{k}": str(v) for k, v in base["tune"].items()}
                       | {f"sweep.{k}": v.describe() for k, v in cfg.search_space.items()}
                       | {"sweep.num_trials": str(len(trials)),
                          "sweep.overrides": redact_text(" ".join(record.overrides)) or "-"})
        _log_experiment_file(run, loaded.path)
        return cls(run)

    def close(self, record: SweepRecord, report_dir: Path | None) -> None:
        """End the parent run with the sweep's status (KILLED when interrupted), after logging
        its outcome and report. Each of those is best effort: the run is ended whatever
        MLflow refuses, so a sweep never leaves its parent RUNNING."""
        try:
            self._log_outcome(record)
        except Exception as err:  # noqa: BLE001 - the status below matters more
            logger.warning("the sweep's outcome could not be logged to its parent run: %s",
                           redact_text(str(err)))
        if report_dir is not None and report_dir.is_dir():
            try:
                log_report(self.run.client, self.run_id, report_dir)
            except Exception as err:  # noqa: BLE001
                logger.warning("the report could not be logged to the parent run: %s",
                               redact_text(str(err)))
        status = {"FINISHED": "FINISHED", "INTERRUPTED": "KILLED"}.get(record.status, "FAILED")
        self.run.finish(status)

    def _log_outcome(self, record: SweepRecord) -> None:
        """Metrics (``seedgrpo.sweep.outcome``) and the best trial's tags, from the child runs
        as MLflow holds them now; logged at step 0, so a resumed sweep's close replaces
        them (the later value is the latest)."""
        client = self.run.client
        if record.best_trial:
            client.set_tag(self.run_id, BEST_TRIAL_TAG, record.best_trial)
        children = child_outcomes(client, self.run_id, record.metric)
        wall = self._earlier_wall_s + (time.monotonic() - self._opened)
        outcomes = [outcome for _, outcome in children.values()]
        self.run.log_metrics(0, parent_metrics(outcomes, metric=record.metric,
                                               best_trial=record.best_trial, wall_time_s=wall))
        if record.best_trial in children:
            client.set_tag(self.run_id, BEST_RUN_TAG, children[record.best_trial][0])


def child_outcomes(client: Any, parent_run_id: str, metric: str
                   ) -> dict[str, tuple[str, ChildOutcome]]:
    """Each trial's name -> (child run id, how it ended and its last ``metric``)."""
    parent = client.get_run(parent_run_id)
    runs = client.search_runs([parent.info.experiment_id],
                              filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                              max_results=10_000)
    out = {}
    for run in runs:
        tags = run.data.tags
        name = tags.get(TRIAL_TAG, run.info.run_name)
        out[name] = (run.info.run_id, ChildOutcome(
            trial=name, status=run.info.status, stopped_early=tags.get(STOPPED_TAG) == "true",
            metric=run.data.metrics.get(metric_name(metric))))
    return out


def _table_cell(value: Any) -> Any:
    """``-`` where the report has no value (the `none` trial's alpha, a metric a failed trial
    never logged), as report.md writes it; MLflow's table view would show ``null``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return value


def log_report(client: Any, run_id: str, report_dir: Path) -> None:
    """The report's files under the run's ``report/``, and its trials (``summary.json``) as
    the table artifact ``TRIALS_TABLE``, replacing what an earlier report logged."""
    client.log_artifacts(run_id, str(report_dir), "report")
    summary = read_json(report_dir / "summary.json")
    if summary and summary.get("trials") is not None:
        rows = [{k: _table_cell(v) for k, v in row.items()} for row in summary["trials"]]
        log_table(client, run_id, rows, TRIALS_TABLE)

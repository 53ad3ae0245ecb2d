"""One MLflow run of a trial: flattened config as params, per-step metrics, config artifact.

MLflow is imported only when a run starts (it takes seconds), and ``MLFLOW_DISABLE_TELEMETRY``
is set first. Metric names keep ``/`` and ``_`` only (``@`` and friends are rejected by some
stores), so ``eval/aime24/pass_at_1`` is stored exactly as the code names it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from seedgrpo.config.applicability import mark_not_applicable
from seedgrpo.fileio import atomic_write_json, read_json
from seedgrpo.redact import has_secret, redact_config, redact_uri

logger = logging.getLogger(__name__)

__all__ = ["MlflowRun", "RUN_FILE", "ResumableRun", "absolute_tracking_uri", "experiment_id",
           "flatten_config", "kept_run_id", "log_table", "metric_name", "tracking_client"]

_BAD = re.compile(r"[^A-Za-z0-9_./ -]")
_MAX_PARAM = 500  # MLflow's limit on a param value's length


def metric_name(name: str) -> str:
    """``name`` with characters MLflow may reject replaced by ``_``.

    >>> metric_name("eval/aime24/pass@1")
    'eval/aime24/pass_1'
    """
    return _BAD.sub("_", name)


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"algorithm": {"alpha": 0.5}}`` -> ``{"algorithm.alpha": "0.5"}`` (search space left out).

    >>> flatten_config({"algorithm": {"alpha": 0.5, "gcpo": {"kappa": 1.0}}, "search_space": {}})
    {'algorithm.alpha': '0.5', 'algorithm.gcpo.kappa': '1.0'}
    """
    flat: dict[str, str] = {}
    for key, value in config.items():
        if not prefix and key == "search_space":
            continue
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, f"{path}."))
        else:
            text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
            flat[path] = text[:_MAX_PARAM]
    return flat


def absolute_tracking_uri(uri: str) -> str:
    """``uri`` with a relative SQLite or file path made absolute against the working directory.

    Trials run in other processes (Ray workers) with other working directories: the embedded
    default ``sqlite:///mlflow.db`` must mean the file where the user started the sweep.

    >>> absolute_tracking_uri("http://127.0.0.1:5000")
    'http://127.0.0.1:5000'
    >>> absolute_tracking_uri("sqlite:////tmp/m.db")
    'sqlite:////tmp/m.db'
    """
    if uri.startswith("sqlite:///"):
        path = uri.removeprefix("sqlite:///")
        return uri if path.startswith("/") or path == ":memory:" else \
            f"sqlite:///{os.path.abspath(path)}"
    if uri.startswith("file:") or "://" in uri:
        return uri
    return os.path.abspath(uri)  # a plain directory: MLflow's file store


def tracking_client(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri``, MLflow's telemetry off; for a URI with a password, its
    "View run at http://user:password@..." lines (printed when a run ends) off too."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if has_secret(uri):
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


# MLflow 3's UI opens an experiment without this tag as a GenAI (traces) experiment; ours are
# training runs, shown in the runs table with nested trials
_KIND_TAG = ("mlflow.experimentKind", "custom_model_development")


def experiment_id(client: Any, name: str) -> str:
    """The id of experiment ``name``, created when missing (safe against a concurrent create)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, tags=dict([_KIND_TAG]))
    except Exception:  # noqa: BLE001 - another process created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


class MlflowRun:
    """A run in ``experiment`` at ``uri``; use as a context manager (FAILED on an exception).

    ``config`` is logged as params and ``config.json`` with its tracking URI redacted; the
    params under ``not_applicable`` (dotted paths, ``seedgrpo.config.applicability``) say
    ``n/a``, while ``config.json`` keeps every real value. With ``run_id``, the existing run is
    continued (a resumed trial or sweep): nothing is created and its params are not logged
    again, so a resume never duplicates a run.
    """

    def __init__(self, uri: str, experiment: str, *, run_name: str, config: Mapping[str, Any],
                 tags: Mapping[str, str] | None = None, run_id: str | None = None,
                 not_applicable: frozenset[str] = frozenset()) -> None:
        self.client = tracking_client(uri)
        if run_id is not None:
            self.run = self.client.get_run(run_id)
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
            return
        exp_id = experiment_id(self.client, experiment)
        self.run = self.client.create_run(exp_id, run_name=run_name, tags=dict(tags or {}))
        self.run_id = self.run.info.run_id
        if config:  # a sweep's parent logs what it swept instead (seedgrpo.sweep.tracking)
            stored = redact_config(config)  # the tracking password stays in memory
            self.log_params(mark_not_applicable(flatten_config(stored), not_applicable))
            self.client.log_dict(self.run_id, stored, "config.json")

    def log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        batch = [Param(k, str(v)[:_MAX_PARAM]) for k, v in params.items()]
        for start in range(0, len(batch), 100):  # the batch API takes at most 100 params
            self.client.log_batch(self.run_id, params=batch[start : start + 100])

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(metric_name(k), float(v), now, step) for k, v in metrics.items()]
        for start in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[start : start + 1000])

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None
                     ) -> None:
        """A file (an evaluation's samples, a summary) stored with the run."""
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def __enter__(self) -> MlflowRun:
        return self

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish("FAILED" if exc_type else "FINISHED")


RUN_FILE = "mlflow_run.json"  # in a training run's output directory: its run id, last step


def kept_run_id(directory: Path) -> str | None:
    """The id of the MLflow run whose state ``directory`` keeps (``ResumableRun``), if any."""
    state = read_json(directory / RUN_FILE)
    return state["run_id"] if state else None


class ResumableRun:
    """The MLflow run of one training run, continued by every rerun in the same directory.

    Its id, its store (redacted) and the last step it logged, with the metric names logged at
    that step, are kept in ``RUN_FILE`` in the training run's output directory, next to its
    checkpoints: a retried sweep trial, a resumed sweep or a second ``seedgrpo-train`` in the
    same directory continues the same run, and what MLflow already has (steps redone after the
    last checkpoint) is not logged again, so each metric history stays one value per step. A
    metric new at the last step is still logged: a finished run evaluated again on other
    benchmarks adds its results. When the kept run cannot be continued (the tracking URI
    changed, or the run was deleted) a new run is opened, with a warning: the checkpoints stay
    usable. Use ``open_in`` (a sweep's child run adds its tags, its parent and a search for a
    run created before its id was written).
    """

    def __init__(self, run: MlflowRun, directory: Path, logged_step: int, uri: str,
                 logged_names: set[str] | None = None) -> None:
        self.run = run
        self.directory = directory
        self.logged_step = logged_step
        self.uri = redact_uri(uri)
        # names logged at logged_step; None: unknown (a file written before they were kept)
        self.logged_names = logged_names

    @classmethod
    def open_in(cls, directory: Path, uri: str, experiment: str, *, run_name: str,
                config: Mapping[str, Any], tags: Mapping[str, str] | None = None,
                not_applicable: frozenset[str] = frozenset(),
                find_existing: Callable[[], str | None] | None = None) -> ResumableRun:
        """The run ``directory`` keeps, continued; else a new one with ``config`` as params
        (``n/a`` under ``not_applicable``). ``find_existing``: a run created before its id
        could be written (a crash in between), looked up in MLflow when no file says."""
        state = read_json(directory / RUN_FILE)
        if state is None and find_existing is not None and (existing := find_existing()):
            state = {"run_id": existing, "logged_step": -1}
        kept = cls._continued(state, directory, uri, experiment, run_name) if state else None
        if kept is None:
            run = MlflowRun(uri, experiment, run_name=run_name, config=config, tags=tags,
                            not_applicable=not_applicable)
            kept = cls(run, directory, -1, uri, set())
        kept._save()
        return kept

    @classmethod
    def _continued(cls, state: Mapping[str, Any], directory: Path, uri: str, experiment: str,
                   run_name: str) -> ResumableRun | None:
        """The kept run, or None (with a warning) when this store cannot continue it."""
        from mlflow.exceptions import MlflowException

        where = state.get("tracking_uri")
        if where is not None and where != redact_uri(uri):
            logger.warning("%s keeps MLflow run %s of %s; tracking now goes to %s: opening a "
                           "new run there", directory / RUN_FILE, state["run_id"], where,
                           redact_uri(uri))
            return None
        try:
            run = MlflowRun(uri, experiment, run_name=run_name, config={},
                            run_id=state["run_id"])
        except MlflowException as err:
            if err.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            logger.warning("MLflow run %s (kept in %s) is not in %s any more: opening a new "
                           "run", state["run_id"], directory / RUN_FILE, redact_uri(uri))
            return None
        names = state.get("logged_names")
        return cls(run, directory, int(state.get("logged_step", -1)), uri,
                   None if names is None else set(names))

    def _save(self) -> None:
        atomic_write_json(self.directory / RUN_FILE, {
            "run_id": self.run.run_id, "tracking_uri": self.uri,
            "logged_step": self.logged_step,
            "logged_names": None if self.logged_names is None else sorted(self.logged_names)})

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Log ``metrics`` at ``step``, leaving out what MLflow has already: every earlier
        step, and the names logged at the last step (a redone step)."""
        if step < self.logged_step:
            return
        if step == self.logged_step:
            if self.logged_names is None:
                return
            metrics = {k: v for k, v in metrics.items() if k not in self.logged_names}
            if not metrics:
                return
            self.logged_names |= set(metrics)
        else:
            self.logged_step, self.logged_names = step, set(metrics)
        self.run.log_metrics(step, metrics)
        self._save()

    def log_artifact(self, path: Path, where: str) -> None:
        self.run.log_artifact(path, where)

    def finish(self, status: str) -> None:
        self.run.finish(status)


def log_table(client: Any, run_id: str, rows: Sequence[Mapping[str, Any]], artifact_file: str
              ) -> None:
    """``rows`` as the run's MLflow table artifact ``artifact_file`` (``.json``), which the
    UI's artifact view shows as a sortable table; written again, it is replaced.

    ``MlflowClient.log_table`` appends to a table that is already there, so a resumed sweep or
    a second ``seedgrpo-report`` would list every trial twice: the file is written here in
    the same format (pandas ``split`` orient), logged over the old one, and registered in the
    run's ``mlflow.loggedArtifacts`` tag as ``log_table`` does (the tag is what tells the UI
    that the file is a table).
    """
    import posixpath
    import tempfile

    import pandas as pd
    from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

    if not artifact_file.endswith(".json"):
        raise ValueError(f"{artifact_file}: an MLflow table artifact is a .json file")
    directory, name = posixpath.split(artifact_file)
    with tempfile.TemporaryDirectory(prefix="seedgrpo-") as tmp:
        path = os.path.join(tmp, name)
        pd.DataFrame(list(rows)).to_json(path, orient="split", index=False, date_format="iso")
        client.log_artifact(run_id, path, directory or None)
    logged = json.loads(client.get_run(run_id).data.tags.get(MLFLOW_LOGGED_ARTIFACTS, "[]"))
    entry = {"path": artifact_file, "type": "table"}
    if entry not in logged:
        client.set_tag(run_id, MLFLOW_LOGGED_ARTIFACTS, json.dumps([*logged, entry]))

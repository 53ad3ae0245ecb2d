"""One MLflow run of a trial: flattened config as params, per-step metrics, config artifact.

MLflow is imported only when a run starts (it takes seconds), and ``MLFLOW_DISABLE_TELEMETRY``
is set first. Metric names keep ``/`` and ``_`` only (``@`` and friends are rejected by some
stores), so ``eval/aime24/pass_at_1`` is stored exactly as the code names it.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["MlflowRun", "flatten_config", "metric_name"]

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


class MlflowRun:
    """A run in ``experiment`` at ``uri``; use as a context manager (FAILED on an exception)."""

    def __init__(self, uri: str, experiment: str, *, run_name: str, config: Mapping[str, Any],
                 tags: Mapping[str, str] | None = None) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        self.run = self.client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
        self.run_id = self.run.info.run_id
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in flatten_config(config).items()]
        for start in range(0, len(params), 100):  # the batch API takes at most 100 params
            self.client.log_batch(self.run_id, params=params[start : start + 100])
        self.client.log_dict(self.run_id, dict(config), "config.json")

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

    def __exit__(self, exc_type, exc, tb) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if exc_type else "FINISHED")

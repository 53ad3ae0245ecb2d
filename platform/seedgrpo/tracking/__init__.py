"""Experiment tracking: MLflow runs for trials (and, with the sweep runner, their parents)."""

from seedgrpo.tracking.mlflow_run import MlflowRun, flatten_config, metric_name

__all__ = ["MlflowRun", "flatten_config", "metric_name"]

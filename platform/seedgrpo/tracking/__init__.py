"""Experiment tracking: MLflow runs for trials and for the sweeps that hold them."""

from seedgrpo.tracking.mlflow_run import (
    MlflowRun,
    absolute_tracking_uri,
    experiment_id,
    flatten_config,
    metric_name,
)

__all__ = ["MlflowRun", "absolute_tracking_uri", "experiment_id", "flatten_config",
           "metric_name"]

"""Experiment files: the pydantic schema, YAML loading, ``--set`` overrides and search spaces.

No Ray, torch or MLflow here: loading and checking a config (and the dry run) start nothing.
"""

from seedgrpo.config.errors import ConfigError, ConfigIssue
from seedgrpo.config.loading import LoadedExperiment, load_experiment
from seedgrpo.config.resources import Bundle, describe_resources, total_resources, trial_bundles
from seedgrpo.config.schema import Domain, ExperimentConfig
from seedgrpo.config.search_space import PlannedTrial, expand_trials, trial_name

__all__ = [
    "Bundle",
    "ConfigError",
    "ConfigIssue",
    "Domain",
    "ExperimentConfig",
    "LoadedExperiment",
    "PlannedTrial",
    "describe_resources",
    "expand_trials",
    "load_experiment",
    "total_resources",
    "trial_bundles",
    "trial_name",
]

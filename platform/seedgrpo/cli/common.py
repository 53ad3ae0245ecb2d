"""What every seedgrpo command shares: the experiment argument, ``--set``, logging, exit codes.

Exit status 2 means the input was wrong (a config error, printed as one message per problem,
never a traceback); 1 means the command failed at run time.
"""

from __future__ import annotations

import argparse
import logging
import sys

from seedgrpo.config import (
    ConfigError,
    LoadedExperiment,
    PlannedTrial,
    expand_trials,
    load_experiment,
)

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "add_experiment_arguments", "configure_logging",
           "load_or_exit", "load_trials_or_exit"]

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def add_experiment_arguments(parser: argparse.ArgumentParser) -> None:
    """The experiment file, repeatable ``--set`` overrides and ``-v``."""
    parser.add_argument("experiment", help="experiment YAML file, e.g. experiments/alpha_grid.yaml")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value by its dotted path, typed by the schema; repeatable "
             "(e.g. --set algorithm.alpha=0.5 "
             "--set 'search_space.algorithm.group_size={grid: [4, 8]}')",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v info, -vv debug)")


def configure_logging(verbosity: int) -> None:
    """Handlers are configured here, in entry points only (never in library code or actors)."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


def load_or_exit(args: argparse.Namespace) -> LoadedExperiment:
    """Load the experiment; on a config error print every problem and exit with status 2."""
    try:
        return load_experiment(args.experiment, args.overrides)
    except ConfigError as err:
        print(f"error: {err.render()}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None


def load_trials_or_exit(args: argparse.Namespace) -> tuple[LoadedExperiment, list[PlannedTrial]]:
    """Load the experiment and expand its trials; any config error exits with status 2."""
    loaded = load_or_exit(args)
    try:
        return loaded, expand_trials(loaded.config, source=loaded.label)
    except ConfigError as err:
        print(f"error: {err.render()}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None

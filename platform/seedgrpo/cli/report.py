"""``seedgrpo-report EXPERIMENT.yaml | SWEEP_DIR``: write (again) the report of a sweep.

For a finished sweep, an interrupted one, or one still running elsewhere: the report reads the
sweep's parent run and its trials from MLflow, writes tables and plots under the sweep's
``report/`` (or ``--output``) and logs them to the parent run. The last lines link to the sweep
in the MLflow UI (its trials in the runs table, their compare page); ``--ui`` then serves a local
store with ``mlflow ui`` on 127.0.0.1 until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from seedgrpo.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, configure_logging
from seedgrpo.config.schema import MLFLOW_URI_ENV

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seedgrpo-report",
        description="Write the report of a sweep (tables, plots, the best configuration) from "
                    "its MLflow runs.")
    parser.add_argument("target", help="the experiment file (its latest sweep) or a sweep "
                                       "directory (runs/<experiment>/<sweep id>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="overrides the sweep was started with (they "
                        "can move tracking.output_dir)")
    parser.add_argument("--output", default=None, help="write here instead of <sweep>/report")
    parser.add_argument("--no-log", action="store_true",
                        help="do not log the report to the sweep's parent MLflow run")
    parser.add_argument("--ui", action="store_true",
                        help="then serve the sweep's local MLflow store with mlflow ui on "
                             "127.0.0.1 and print the links to its trials; Ctrl-C stops it")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.verbose)
    from seedgrpo.redact import (
        SecretNotStored,
        live_tracking_uri,
        redact_text,
        redact_uri,
    )
    from seedgrpo.sweep.layout import SweepDir, SweepNotFound
    from seedgrpo.tracking import absolute_tracking_uri

    target = Path(args.target)
    try:
        if target.is_dir():
            sweep = SweepDir(target.resolve())
            current = os.environ.get(MLFLOW_URI_ENV)  # no config: the environment's URI
        else:
            from seedgrpo.cli.common import load_or_exit

            args.experiment = args.target
            cfg = load_or_exit(args).config
            sweep = SweepDir.latest((Path(cfg.tracking.output_dir)
                                     / str(cfg.tracking.experiment_name)).resolve())
            current = cfg.tracking.mlflow_uri
        record = sweep.read()
    except SweepNotFound as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not record.mlflow_uri or not record.parent_run_id:
        print(f"error: the sweep in {sweep.root} ran without MLflow (tracking.mlflow_uri was "
              "unset), and the report reads the trials from MLflow", file=sys.stderr)
        return EXIT_BAD_INPUT
    # sweep.json holds the URI redacted (one written before redaction may not: redact again)
    shown = redact_uri(record.mlflow_uri)
    try:
        uri = live_tracking_uri(record.mlflow_uri,
                                absolute_tracking_uri(current) if current else None)
    except SecretNotStored as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from seedgrpo.tracking.mlflow_ui import store_problem

    # a missing SQLite file would be created empty by reading it: say so instead
    problem = store_problem(uri) if uri else None
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from mlflow.exceptions import MlflowException

    from seedgrpo.sweep.report import write_report

    out = Path(args.output) if args.output else sweep.report_dir
    try:
        write_report(uri, record.parent_run_id, out, metric=record.metric, mode=record.mode)
        if not args.no_log:
            from mlflow.tracking import MlflowClient

            from seedgrpo.sweep.tracking import log_report

            # the files, and the trials as a table the MLflow UI shows
            log_report(MlflowClient(uri), record.parent_run_id, out)
    except MlflowException as err:  # its message may echo the URI, password included
        print(f"error: MLflow at {shown} could not be read: {redact_text(str(err))}",
              file=sys.stderr)
        return EXIT_FAILED
    print(f"report: {out / 'report.md'}")
    from seedgrpo.cli.ui_links import print_sweep_links, serve_sweep_ui

    if args.ui:
        return serve_sweep_ui(uri, record.parent_run_id, metric=record.metric, mode=record.mode)
    sets = [part for o in args.overrides for part in ("--set", redact_text(o))]
    print_sweep_links(uri, record.parent_run_id, metric=record.metric, mode=record.mode,
                      open_command=shlex.join(["seedgrpo-report", args.target, *sets, "--ui"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

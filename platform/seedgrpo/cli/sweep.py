"""``seedgrpo-sweep EXPERIMENT.yaml``: run a Ray Tune sweep; ``--dry-run`` lists it instead.

The dry run starts no Ray: it validates the file, expands the search space and prints one row per
trial (the varied parameters and what the trial reserves), then ``N trials``; ``--json`` prints
the expanded trial configs instead. Without it the sweep runs (``seedgrpo.sweep.runner``): a
live table per trial, MLflow parent and child runs, and the report at the end. ``--resume``
continues the latest (or the given) sweep of this experiment. Ctrl-C or SIGTERM stops a sweep
gracefully (a second one at once): it is recorded INTERRUPTED, the exact resume command is
printed, and the exit status is the shell's for that signal, 130 (SIGINT) or 143 (SIGTERM).
The last lines link to the sweep in the MLflow UI: its trials in the runs table and their compare
page; ``--ui`` then serves a local store with ``mlflow ui`` until Ctrl-C (the exit status stays
the sweep's).
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from seedgrpo.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    add_experiment_arguments,
    configure_logging,
    load_trials_or_exit,
)
from seedgrpo.config.dry_run import render_trial_table, trials_as_json
from seedgrpo.sweep.stop_signals import exit_status

if TYPE_CHECKING:
    from seedgrpo.sweep.runner import SweepOutcome

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seedgrpo-sweep",
        description="Run a Ray Tune sweep of SEED-GRPO / GCPO trials described by one experiment "
                    "file. With --dry-run: validate it and list its trials without starting Ray.",
    )
    add_experiment_arguments(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="validate, expand the search space and list the trials; start nothing")
    parser.add_argument("--json", action="store_true",
                        help="with --dry-run: print the expanded trial configs as JSON")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="SWEEP_DIR",
                        help="continue the latest sweep of this experiment (or SWEEP_DIR): "
                             "finished trials are kept, unfinished ones continue from their "
                             "checkpoints, MLflow runs are continued, not duplicated")
    parser.add_argument("--address", default=None, metavar="auto|ray://HOST:PORT",
                        help="run on an existing Ray cluster (left running); default: start "
                             "a local Ray for this sweep and stop it at the end")
    parser.add_argument("--num-cpus", type=int, default=None, metavar="N",
                        help="logical CPUs of the local Ray (default: this machine's cores); "
                             "more than the cores shares them, slower")
    parser.add_argument("--no-report", action="store_true",
                        help="skip the report at the end (seedgrpo-report writes it later)")
    parser.add_argument("--ui", action="store_true",
                        help="after the sweep (also a failed one), serve its local MLflow store "
                             "with mlflow ui on 127.0.0.1 and print the links to its trials; "
                             "Ctrl-C stops it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.verbose)
    if args.json and not args.dry_run:
        print("error: --json lists trials and needs --dry-run", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.ui and args.dry_run:
        print("error: --ui serves a sweep's runs and a dry run makes none", file=sys.stderr)
        return EXIT_BAD_INPUT
    loaded, trials = load_trials_or_exit(args)
    if args.dry_run:
        text = (json.dumps(trials_as_json(trials), indent=2) + "\n" if args.json
                else render_trial_table(loaded, trials))
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:  # `| head`: the reader left; not an error
            sys.stderr.close()
        return 0
    return _run(args, loaded, trials)


def _run(args: argparse.Namespace, loaded, trials) -> int:
    from seedgrpo.sweep.runner import SweepError, SweepOptions, resume_command, run_sweep

    if args.num_cpus is not None and args.num_cpus < 1:
        print(f"error: --num-cpus must be at least 1, got {args.num_cpus}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.address and args.num_cpus:
        print("error: --num-cpus sizes the local Ray; a cluster given with --address has its "
              "own resources", file=sys.stderr)
        return EXIT_BAD_INPUT
    options = SweepOptions(resume=bool(args.resume),
                           sweep_dir=args.resume if isinstance(args.resume, str) else None,
                           address=args.address, num_cpus=args.num_cpus, verbose=args.verbose,
                           report=not args.no_report)
    try:
        outcome = run_sweep(loaded, trials, args.overrides, options)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT if err.bad_input else EXIT_FAILED
    except KeyboardInterrupt:  # before the sweep ran, or a second signal while it closed
        latest = resume_command(args.experiment, args.overrides, None, options)
        print(f"\ninterrupted; if the sweep had started, continue it with:\n  {latest}",
              file=sys.stderr)
        return exit_status(signal.SIGINT)
    record = outcome.record
    if record.status == "INTERRUPTED":
        return _interrupted(outcome)
    print(f"\nsweep {record.status.lower()}: {outcome.sweep_dir.root}")
    if record.best_trial:
        print(f"best trial: {record.best_trial} ({loaded.config.tune.metric}, "
              f"{loaded.config.tune.mode})")
    if outcome.errors:
        print(f"{outcome.errors} trial(s) failed; their errors are under "
              f"{outcome.sweep_dir.tune_dir}; --resume retries them", file=sys.stderr)
    if outcome.report_dir is not None:
        print(f"report: {outcome.report_dir / 'report.md'}")
    status = EXIT_FAILED if outcome.errors else 0
    if args.ui:  # the links, at the address of the UI it starts
        from seedgrpo.cli.ui_links import serve_sweep_ui

        served = serve_sweep_ui(record.mlflow_uri, record.parent_run_id, metric=record.metric,
                                mode=record.mode)
        return status or served
    if record.mlflow_uri and record.parent_run_id:
        from seedgrpo.cli.ui_links import print_sweep_links

        print_sweep_links(record.mlflow_uri, record.parent_run_id, metric=record.metric,
                          mode=record.mode, open_command=shlex.join(
                              ["seedgrpo-report", str(outcome.sweep_dir.root), "--ui"]))
    return status


def _interrupted(outcome: SweepOutcome) -> int:
    """Say where the interrupted sweep is and the exact command that continues it; exit as
    the shell does for a process ended by that signal (130 for Ctrl-C, 143 for SIGTERM)."""
    print(f"\nsweep interrupted: {outcome.sweep_dir.root}")
    if outcome.report_dir is not None:
        print(f"report (so far): {outcome.report_dir / 'report.md'}")
    print(f"interrupted: finished trials and checkpoints are kept; continue with:\n"
          f"  {outcome.resume_command}", file=sys.stderr, flush=True)
    return exit_status(outcome.stop_signal or signal.SIGINT)


if __name__ == "__main__":
    raise SystemExit(main())

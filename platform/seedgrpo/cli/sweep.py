"""``seedgrpo-sweep EXPERIMENT.yaml``: validate, expand and (with ``--dry-run``) list a sweep.

The dry run starts no Ray: it validates the file, expands the search space and prints one row per
trial (the varied parameters and what the trial reserves), then ``N trials``; ``--json`` prints
the expanded trial configs instead. Running the sweep itself is the sweep runner's job (see the
README's status table).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from seedgrpo.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    add_experiment_arguments,
    configure_logging,
    load_trials_or_exit,
)
from seedgrpo.config.dry_run import render_trial_table, trials_as_json

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.verbose)
    if args.json and not args.dry_run:
        print("error: --json lists trials and needs --dry-run", file=sys.stderr)
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
    print(
        f"error: {loaded.label} is valid ({len(trials)} trials), but this version of seedgrpo "
        "cannot run sweeps yet: the Ray Tune runner is not built. Use --dry-run to list the "
        "trials.", file=sys.stderr,
    )
    return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())

"""``seedgrpo-train EXPERIMENT.yaml [--set ...] [--trial N]``: one trial on a local Ray.

Runs the base config (or the N-th trial of the expanded search space) to ``train.steps``, prints a
progress line per step, logs to MLflow when ``tracking.mlflow_uri`` is set, and continues from
the last checkpoint in its output directory when there is one, in the same MLflow run
(``--restart`` starts over, in a new one). The run itself is ``runtime.run.run_training``, as
for a sweep's trials: same output layout, same MLflow params and metrics.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from seedgrpo.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    add_experiment_arguments,
    configure_logging,
    load_trials_or_exit,
)
from seedgrpo.config import ExperimentConfig, PlannedTrial, total_resources
from seedgrpo.redact import redact_text
from seedgrpo.tracking.mlflow_run import RUN_FILE, ResumableRun

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seedgrpo-train",
        description="Train one SEED-GRPO trial on a local Ray: vLLM or HF rollouts, a scorer, "
                    "DeepSpeed learner ranks, weight sync, checkpoints.",
    )
    add_experiment_arguments(parser)
    parser.add_argument("--trial", type=int, default=None, metavar="N",
                        help="run the N-th trial of the search space (see --dry-run of "
                             "seedgrpo-sweep); default: the base config")
    parser.add_argument("--output-dir", default=None,
                        help="checkpoints go here; default: tracking.output_dir/<experiment>/"
                             "<trial name>")
    parser.add_argument("--restart", action="store_true",
                        help="delete the output directory's checkpoints and start from step 0, "
                             "in a new MLflow run")
    return parser


def _progress(total: int, *, resumed: bool):
    def report(step: int, m: dict[str, float]) -> None:
        if "train/reward_mean" not in m:  # an evaluation without a training step
            label = "after resuming a finished run" if resumed else "before training"
            if "eval/avg/pass_at_1" not in m:  # a finished run resumed, no benchmarks to run
                print(f"step {step}/{total}  already trained; no benchmarks to evaluate "
                      "(eval.benchmarks is empty)", flush=True)
                return
            print(f"step {step}/{total}  eval {m['eval/avg/pass_at_1']:.3f} ({label})",
                  flush=True)
            return
        line = (f"step {step}/{total}  reward {m['train/reward_mean']:.3f}  "
                f"se {m['train/se_mean']:.3f}  factor {m['train/factor_mean']:.3f}  "
                f"loss {m['train/loss']:+.4f}  clip {m['train/clip_frac']:.3f}  "
                f"len {m['train/response_len_mean']:.0f}  {m['time/step_s']:.1f}s")
        if "eval/avg/pass_at_1" in m:
            line += f"  eval {m['eval/avg/pass_at_1']:.3f}"
        print(line, flush=True)

    return report


def _tracker_opener(cfg: ExperimentConfig, output: Path, name: str
                    ) -> Callable[[], ResumableRun] | None:
    """The run's MLflow run, opened at its first step: the one ``output`` keeps when it has
    one (a resumed run continues it), else a new one whose params say ``n/a`` for the
    settings this config ignores, as a sweep's trials do."""
    uri = cfg.tracking.mlflow_uri
    if not uri:
        return None

    def open_run() -> ResumableRun:
        from seedgrpo.config.applicability import not_applicable

        return ResumableRun.open_in(output, uri, str(cfg.tracking.experiment_name),
                                    run_name=name, config=cfg.model_dump(mode="json"),
                                    tags={"seedgrpo.trial": name},
                                    not_applicable=not_applicable(cfg))

    return open_run


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.verbose)
    loaded, trials = load_trials_or_exit(args)
    if args.trial is not None and not 0 <= args.trial < len(trials):
        print(f"error: --trial {args.trial}: {loaded.label} has {len(trials)} trials "
              f"(0 to {len(trials) - 1}); list them with seedgrpo-sweep --dry-run",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    trial = trials[args.trial] if args.trial is not None else PlannedTrial(0, "base", {},
                                                                     loaded.config)
    cfg = trial.config
    if args.output_dir:
        output = Path(args.output_dir)
    else:  # a trial's name becomes a directory (and --restart deletes in it): kept inside
        from seedgrpo.sweep.layout import PathOutsideParent, child_path

        try:
            output = child_path(Path(cfg.tracking.output_dir) / str(cfg.tracking.experiment_name),
                                trial.name, "trial")
        except PathOutsideParent as err:
            print(f"error: {err}; give --output-dir", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.restart:  # from step 0, in a new MLflow run (the old one keeps its history)
        if (output / "checkpoints").exists():
            shutil.rmtree(output / "checkpoints")
        (output / RUN_FILE).unlink(missing_ok=True)
    from seedgrpo.models.checkpoint_files import (
        UntrustedCheckpoint,
        check_checkpoint_owner,
        read_latest,
    )

    try:
        latest = read_latest(output / "checkpoints")
        if latest is not None and not cfg.train.trust_checkpoint_owner:
            check_checkpoint_owner(output / "checkpoints", latest[0],
                                   opt_in="pass --set train.trust_checkpoint_owner=true")
    except UntrustedCheckpoint as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"error: the checkpoint in {output / 'checkpoints'} cannot be read ({err}); "
              "use --restart to start over", file=sys.stderr)
        return EXIT_FAILED
    if latest is not None:
        print(f"continuing from checkpoint {latest[0]} in {output / 'checkpoints'} "
              "(--restart starts over)", flush=True)

    import ray
    from mlflow.exceptions import MlflowException

    from seedgrpo.data import DataError
    from seedgrpo.models import ModelLoadError, resolve_model_dir
    from seedgrpo.runtime.local_ray import start_local_ray
    from seedgrpo.runtime.run import run_training
    from seedgrpo.runtime.trial import TrainingFailed, checked_engine

    report = _progress(cfg.train.steps, resumed=latest is not None)
    try:  # what can fail without Ray fails before Ray starts
        engine = checked_engine(cfg)  # refuses what this machine cannot run
        resolve_model_dir(cfg.model)  # converts or downloads once; the run reuses it
    except (TrainingFailed, ModelLoadError) as err:
        print(f"error: trial '{trial.name}' failed: {err}", file=sys.stderr)
        return EXIT_FAILED
    # one run on this machine: it shares the cores rather than wait for CPUs that never come
    start_local_ray(at_least_cpus=total_resources(cfg)["CPU"], verbose=args.verbose)
    try:
        print(f"{loaded.label}: trial '{trial.name}', {cfg.train.steps} steps, engine "
              f"{engine}, {cfg.learner.num_ranks} DeepSpeed rank(s) at ZeRO-"
              f"{cfg.learner.zero_stage}, output {output}", flush=True)
        steps = run_training(cfg, output, engine_kind=engine,
                             open_tracker=_tracker_opener(cfg, output, trial.name))
        try:
            for step, metrics in steps:
                report(step, metrics)
        except KeyboardInterrupt:  # as a sweep marks an interrupted trial
            steps.abandon("KILLED")
            raise
        except BaseException:  # a failed step has ended the run already
            steps.abandon("FAILED")
            raise
        steps.shutdown()
        final = steps.last["metrics"]
    except (TrainingFailed, ModelLoadError, DataError, MlflowException, OSError) as err:
        # MLflow and SQLAlchemy messages may echo the tracking URI, password included
        print(f"error: trial '{trial.name}' failed: {redact_text(str(err))}", file=sys.stderr)
        print(f"the last checkpoint (if any) is in {output / 'checkpoints'}; run the same "
              "command again to continue from it", file=sys.stderr)
        return EXIT_FAILED
    finally:
        ray.shutdown()
    if "eval/avg/pass_at_1" in final:
        print(f"done: eval/avg/pass_at_1 = {final['eval/avg/pass_at_1']:.3f}; checkpoints in "
              f"{output / 'checkpoints'}")
    else:
        print(f"done: trained to step {cfg.train.steps}; checkpoints in "
              f"{output / 'checkpoints'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

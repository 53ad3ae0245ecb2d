"""Run a sweep: check everything that can fail before Ray, start (or join) Ray, run Tune, close.

The order matters to users: a bad file, a missing benchmark or an engine that cannot load fails
in seconds with a message, before Ray starts; a sweep whose trials can never fit the cluster
fails right after, instead of waiting forever for resources; only then do trials start.
Locally the sweep starts its own Ray and stops only that; with ``--address`` it joins a running
cluster and leaves it running.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedgrpo._compat import tuner_run_config
from seedgrpo.config import ExperimentConfig, LoadedExperiment, PlannedTrial, total_resources
from seedgrpo.redact import redact_text, redact_uri
from seedgrpo.runtime.run import read_result
from seedgrpo.sweep.cluster import (
    ClusterView,
    SharedStorageError,
    check_nodes,
    inspect_cluster,
    network_filesystem,
    tracking_uri_problem,
)
from seedgrpo.sweep.console import ConsoleRow, SweepConsole
from seedgrpo.sweep.layout import (
    SweepDir,
    SweepNotFound,
    SweepRecord,
    config_fingerprint,
    fingerprint_matches,
)
from seedgrpo.sweep.space import SweepSpace
from seedgrpo.sweep.stop_signals import StopSignals
from seedgrpo.sweep.trainable import STEP_KEY, SweepContext, SweepTrainable

__all__ = ["SweepOptions", "SweepError", "SweepOutcome", "run_sweep", "check_capacity",
           "capacity_shortfall", "one_node_shortfall",
           "prepare_sweep_dir", "check_before_ray", "resume_command"]

logger = logging.getLogger(__name__)


class SweepError(Exception):
    """A sweep that cannot start or go on; ``bad_input`` marks the user's input as the cause."""

    def __init__(self, message: str, *, bad_input: bool = False) -> None:
        super().__init__(message)
        self.bad_input = bad_input


@dataclass(frozen=True)
class SweepOptions:
    resume: bool = False
    sweep_dir: str | None = None  # --resume PATH: that sweep instead of the latest
    address: str | None = None  # None: a local Ray of our own
    num_cpus: int | None = None  # local Ray's logical CPUs; default: the machine's cores
    verbose: int = 0
    report: bool = True


@dataclass
class SweepOutcome:
    sweep_dir: SweepDir
    record: SweepRecord
    rows: list[ConsoleRow] = field(default_factory=list)
    report_dir: Path | None = None
    errors: int = 0
    stop_signal: int | None = None  # the signal that interrupted the sweep (None: no signal)
    resume_command: str | None = None  # set when the sweep was interrupted


def resume_command(experiment: str, overrides: Sequence[str], sweep_root: Path | None,
                   options: SweepOptions) -> str:
    """The exact command that continues this sweep, quoted for a POSIX shell: the same file,
    ``--set`` values and Ray as the interrupted run, and this sweep's directory (without one,
    ``--resume`` alone: the latest sweep of the experiment).

    The command is printed and written into the report, so a password in a ``--set`` value
    is redacted (``***``); resuming then asks for it (``live_tracking_uri``).

    >>> print(resume_command("my exp.yaml", ["train.steps=8"], Path("/runs/x/1"),
    ...                      SweepOptions(num_cpus=4)))
    seedgrpo-sweep 'my exp.yaml' --set train.steps=8 --num-cpus 4 --resume /runs/x/1
    >>> print(resume_command("e.yaml", ["tracking.mlflow_uri=http://u:pw@h"], Path("/r"),
    ...                      SweepOptions()))
    seedgrpo-sweep e.yaml --set 'tracking.mlflow_uri=http://u:***@h' --resume /r
    """
    words = ["seedgrpo-sweep", experiment]
    for override in overrides:
        words += ["--set", redact_text(override)]
    if options.address:
        words += ["--address", options.address]
    if options.num_cpus:
        words += ["--num-cpus", str(options.num_cpus)]
    if not options.report:
        words.append("--no-report")
    words.append("--resume")
    if sweep_root is not None:
        words.append(str(sweep_root))
    return shlex.join(words)


# -- before Ray -------------------------------------------------------------------------------
def check_before_ray(space: SweepSpace) -> dict[str, str]:
    """What each trial would refuse at its first step, refused now: runtime support, the rollout
    engine, the model (converted or downloaded once, here), the benchmarks' files.

    Returns each ``rollout.engine`` setting of the sweep resolved (``auto`` -> vllm or hf): the
    trials of a grid take it from here (``SweepContext.engines``) instead of checking again
    (an adaptive search checks only its base config here: its trials check themselves)."""
    from seedgrpo.data import DataError
    from seedgrpo.evaluation import BenchmarkNotFound, load_benchmark
    from seedgrpo.models import ModelLoadError, resolve_model_dir
    from seedgrpo.runtime.trial import TrainingFailed, checked_engine

    engines: dict[str, str] = {}
    seen_models: set[str] = set()
    seen_benchmarks: set[tuple[str, str | None]] = set()
    for cfg in space.all_configs():
        try:
            engines[cfg.rollout.engine] = checked_engine(cfg)
        except TrainingFailed as err:
            raise SweepError(str(err), bad_input=True) from None
        key = cfg.model.model_dump_json()
        if key not in seen_models:
            seen_models.add(key)
            try:
                resolve_model_dir(cfg.model)
            except ModelLoadError as err:
                raise SweepError(str(err)) from None
        for name in cfg.eval.benchmarks:
            if name == "heldout" or (name, cfg.eval.data_dir) in seen_benchmarks:
                continue
            seen_benchmarks.add((name, cfg.eval.data_dir))
            try:
                load_benchmark(name, data_dir=cfg.eval.data_dir,
                               custom=cfg.eval.custom_benchmarks, limit=1)
            except (BenchmarkNotFound, DataError) as err:
                raise SweepError(f"{err} (eval.benchmarks needs it; benchmarks that may be "
                                 "missing go in eval.optional_benchmarks)",
                                 bad_input=True) from None
    return engines


def optional_benchmarks_found(cfg: ExperimentConfig) -> tuple[list[str], list[str]]:
    """(found, missing) among ``eval.optional_benchmarks``: said once, up front."""
    from seedgrpo.data import DataError
    from seedgrpo.evaluation import load_benchmark

    found, missing = [], []
    for name in cfg.eval.optional_benchmarks:
        try:
            load_benchmark(name, data_dir=cfg.eval.data_dir, custom=cfg.eval.custom_benchmarks,
                           limit=1)
            found.append(name)
        except DataError:
            missing.append(name)
    return found, missing


def prepare_sweep_dir(loaded: LoadedExperiment, overrides: Sequence[str],
                      options: SweepOptions) -> tuple[SweepDir, SweepRecord, bool]:
    """The sweep directory and its record: a new sweep, or the one ``--resume`` continues.

    Returns (directory, record, resumed). A resumed sweep must have the same resolved config
    as the one that started, or its trials would not be the trials it has; where things are
    kept (the tracking URI and its password, the output directory) may change. The record's
    ``mlflow_uri`` is the live URI (``sweep.json`` holds it redacted): a resumed sweep takes the
    password from this run's config or ``$MLFLOW_TRACKING_URI``.
    """
    from seedgrpo.redact import SecretNotStored, live_tracking_uri
    from seedgrpo.tracking import absolute_tracking_uri

    cfg = loaded.config
    experiment = str(cfg.tracking.experiment_name)
    root = (Path(cfg.tracking.output_dir) / experiment).resolve()
    config = cfg.model_dump(mode="json")
    uri = absolute_tracking_uri(cfg.tracking.mlflow_uri) if cfg.tracking.mlflow_uri else None
    if options.resume:
        try:
            sweep = (SweepDir(Path(options.sweep_dir).resolve()) if options.sweep_dir
                     else SweepDir.latest(root))
            record = sweep.read()
        except SweepNotFound as err:
            raise SweepError(str(err), bad_input=True) from None
        if not fingerprint_matches(record.fingerprint, config):
            raise SweepError(
                f"--resume: {sweep.root} was started from {record.experiment_file} with "
                f"overrides {redact_text(' '.join(record.overrides)) or 'none'}, and this config "
                "differs from that one; "
                "resume with the same file and --set values, or start a new sweep without "
                "--resume", bad_input=True)
        try:
            record.mlflow_uri = live_tracking_uri(record.mlflow_uri, uri)
        except SecretNotStored as err:
            raise SweepError(f"--resume: {err}", bad_input=True) from None
        return sweep, record, True
    record = SweepRecord(str(loaded.path), list(overrides), config_fingerprint(config),
                         experiment, uri, cfg.tune.metric, cfg.tune.mode)
    sweep = SweepDir.new(root)
    sweep.write(record)
    return sweep, record, False


# -- capacity ---------------------------------------------------------------------------------
def _lacking(need: dict[str, float], have: dict[str, float]) -> list[str]:
    """The resources of ``need`` that ``have`` holds less of (in ``need``'s order)."""
    return [name for name, amount in need.items() if amount > have.get(name, 0.0) + 1e-9]


def capacity_shortfall(configs: Sequence[ExperimentConfig], cluster: dict[str, float]
                       ) -> tuple[str, float, float] | None:
    """The first resource a trial needs more of than ``cluster`` has in all:
    (name, needed, available), or None when every trial fits.

    >>> capacity_shortfall([ExperimentConfig()], {"CPU": 8.0}) is None
    True
    >>> capacity_shortfall([ExperimentConfig()], {"CPU": 1.0})
    ('CPU', 2.0, 1.0)
    """
    for cfg in configs:
        need = total_resources(cfg)
        if lacking := _lacking(need, cluster):
            return lacking[0], need[lacking[0]], cluster.get(lacking[0], 0.0)
    return None


def one_node_shortfall(configs: Sequence[ExperimentConfig],
                       nodes: Sequence[dict[str, float]]) -> str | None:
    """For a STRICT_PACK trial (all bundles on one node): why no node of ``nodes`` (each
    node's total resources) can hold it, or None when one can or no trial is STRICT_PACK.

    >>> from seedgrpo.config.schema import ResourcesConfig
    >>> cfg = ExperimentConfig(resources=ResourcesConfig(placement_strategy="STRICT_PACK"))
    >>> problem = one_node_shortfall([cfg], [{"CPU": 1.0}, {"CPU": 1.0}])
    >>> problem.startswith("a trial needs CPU 2 on one node"), problem.endswith("has CPU 1")
    (True, True)
    >>> one_node_shortfall([cfg], [{"CPU": 1.0}, {"CPU": 4.0}]) is None
    True
    """
    for cfg in configs:
        if cfg.resources.placement_strategy != "STRICT_PACK":
            continue
        need = total_resources(cfg)
        # the node that lacks the fewest resources names what is missing
        lacking, nearest = min(((_lacking(need, node), node) for node in nodes or [{}]),
                               key=lambda pair: len(pair[0]))
        if lacking:
            want = ", ".join(f"{n} {need[n]:g}" for n in lacking)
            have = ", ".join(f"{n} {nearest.get(n, 0.0):g}" for n in lacking)
            return (f"a trial needs {want} on one node (resources.placement_strategy "
                    f"STRICT_PACK) and the nearest node has {have}")
    return None


def check_capacity(configs: Sequence[ExperimentConfig], cluster: dict[str, float], *,
                   local: bool, nodes: Sequence[dict[str, float]] | None = None) -> None:
    """Refuse a trial that asks for more than the cluster has in total: on a Ray that no node
    will ever join, waiting for resources would be waiting forever.

    >>> check_capacity([ExperimentConfig()], {"CPU": 2.0}, local=True)
    >>> try:
    ...     check_capacity([ExperimentConfig()], {"CPU": 1.0}, local=True)
    ... except SweepError as err:
    ...     print(str(err)[:56])
    a trial needs CPU 2 but this Ray has CPU 1 in all; lower
    """
    short = capacity_shortfall(configs, cluster)
    if short is None:
        problem = one_node_shortfall(configs, nodes) if nodes is not None else None
        if problem:
            raise SweepError(f"{problem}; use resources.placement_strategy PACK to let a trial "
                             "span nodes, or add a bigger node", bad_input=True)
        return
    name, amount, have = short
    if name == "CPU":
        hint = "lower resources.*.cpus, rollout.num_workers or learner.num_ranks"
        hint += (f", or start with --num-cpus {math.ceil(amount)} to share the cores (slower), "
                 "or run on a bigger cluster with --address") if local else \
            ", or add nodes with more CPUs"
    elif name == "GPU":
        hint = ("set resources.*.gpus to 0 to run on CPU, or run on a cluster with GPUs "
                "(--address)")
    else:
        hint = "start Ray with that custom resource, or remove it from resources.*.custom"
    where = "this Ray" if local else "the cluster"
    raise SweepError(f"a trial needs {name} {amount:g} but {where} has {name} {have:g} in "
                     f"all; {hint}", bad_input=True)


# -- the run ---------------------------------------------------------------------------------
def _start_ray(options: SweepOptions, configs: Sequence[ExperimentConfig],
               tracking_uri: str | None) -> ClusterView | None:
    """Start a local Ray (returns None), or join a cluster and refuse what its nodes could not
    share (returns what the cluster is)."""
    import ray

    from seedgrpo.config.plugins import ray_runtime_env

    # eval metrics come every eval.every_steps steps, not in every result: ASHA and Optuna
    # read the results that have them (Tune's strict check would fail the others)
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if options.address:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address=options.address, log_to_driver=options.verbose > 0,
                 runtime_env=ray_runtime_env())  # the experiment's plug-ins, on every worker
        try:
            view = inspect_cluster()
            print(f"Ray cluster at {options.address}: {view.describe()}", flush=True)
            if view.multi_node and (problem := tracking_uri_problem(tracking_uri)):
                raise SweepError(problem, bad_input=True)
            nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
            if view.autoscaler:
                short = capacity_shortfall(configs, ray.cluster_resources())
                if short is not None:
                    name, amount, have = short
                    print(f"note: a trial needs {name} {amount:g} and the cluster has "
                          f"{have:g} now: trials wait for the autoscaler to add nodes",
                          file=sys.stderr, flush=True)
                elif problem := one_node_shortfall(configs, nodes):
                    print(f"note: {problem} now: trials wait for the autoscaler to add one",
                          file=sys.stderr, flush=True)
            else:
                try:
                    check_capacity(configs, ray.cluster_resources(), local=False, nodes=nodes)
                except SweepError as err:  # no node will ever join: waiting would be forever
                    raise SweepError(f"{err} (no autoscaler runs on this cluster)",
                                     bad_input=True) from None
        except BaseException:
            ray.shutdown()  # disconnects this driver only; the cluster stays up
            raise
        return view
    from seedgrpo.runtime.local_ray import start_local_ray

    # our own Ray on this machine; a trial that needs more CPUs than it has is refused below
    # (naming --num-cpus) rather than oversubscribed, as seedgrpo-train's single run is
    start_local_ray(num_cpus=options.num_cpus, verbose=options.verbose)
    try:
        check_capacity(configs, ray.cluster_resources(), local=True)
    except SweepError:
        ray.shutdown()
        raise
    return None


def _check_shared(sweep: SweepDir, record: SweepRecord, cluster: ClusterView,
                  resumed: bool) -> None:
    """On a multi-node cluster: the sweep directory and the tracking server, from every node.

    A new sweep directory that fails the check is removed again (it holds nothing yet).
    """
    import shutil

    fs_type = network_filesystem(sweep.root)
    if fs_type is None and cluster.autoscaler:
        print(f"note: {sweep.root} is on a local filesystem; nodes the autoscaler adds must "
              "share it (their trials fail at once if they do not)", file=sys.stderr, flush=True)
    try:
        count = check_nodes(sweep.root, record.mlflow_uri)
    except SharedStorageError as err:
        if not resumed:
            shutil.rmtree(sweep.root, ignore_errors=True)
        raise SweepError(str(err), bad_input=True) from None
    logger.info("sweep directory and tracking server reachable from %d node(s)", count)


class _TrialNamer:
    """Tune's trial name and directory name: the trial's own name (picklable)."""

    def __init__(self, space: SweepSpace) -> None:
        self.space = space

    def __call__(self, trial: Any) -> str:
        return self.space.resolve(trial.config, trial.trial_id).name


def _describer(space: SweepSpace) -> Callable[[Any], ConsoleRow]:
    def describe(trial: Any) -> ConsoleRow:
        t = space.resolve(trial.config, trial.trial_id)
        a = t.config.algorithm
        alpha = None if a.modulation == "none" else a.alpha
        return ConsoleRow(t.name, a.modulation, alpha, a.group_size, t.config.train.steps)

    return describe


def _build_tuner(space: SweepSpace, cfg: ExperimentConfig, context: SweepContext,
                 sweep: SweepDir, resumed: bool) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    trainable = tune.with_resources(tune.with_parameters(SweepTrainable, context=context),
                                    resources=space.resources)
    if resumed and tune.Tuner.can_restore(str(sweep.tune_dir)):
        return tune.Tuner.restore(str(sweep.tune_dir), trainable, resume_unfinished=True,
                                  resume_errored=True)
    t = cfg.tune
    if t.scheduler == "asha":
        max_t = max(c.train.steps for c in space.all_configs())
        scheduler: Any = ASHAScheduler(time_attr=STEP_KEY, max_t=max_t,
                                       grace_period=t.grace_period,
                                       reduction_factor=t.reduction_factor)
    else:
        scheduler = FIFOScheduler()
    search_alg = None
    num_samples = 1  # grid and random: one grid over the expanded trials
    if space.adaptive:
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch(metric=t.metric, mode=t.mode, seed=t.seed)
        num_samples = t.num_samples
    namer = _TrialNamer(space)
    return tune.Tuner(
        trainable,
        param_space=space.param_space(),
        tune_config=tune.TuneConfig(
            metric=t.metric, mode=t.mode, search_alg=search_alg, scheduler=scheduler,
            num_samples=num_samples, max_concurrent_trials=t.max_concurrent_trials or None,
            trial_name_creator=namer, trial_dirname_creator=namer,
            # warm trials: the trainable keeps its engines and ranks for the next trial
            reuse_actors=t.reuse_actors),
        run_config=tune.RunConfig(
            name=sweep.tune_dir.name, storage_path=str(sweep.root),
            failure_config=tune.FailureConfig(max_failures=t.max_failures),
            verbose=0),
    )


def run_sweep(loaded: LoadedExperiment, trials: Sequence[PlannedTrial], overrides: Sequence[str],
              options: SweepOptions) -> SweepOutcome:
    """The whole sweep; raises ``SweepError`` for what stops it before trials run."""
    cfg = loaded.config
    space = SweepSpace.from_trials(cfg, trials)
    engines = check_before_ray(space)
    uri = cfg.tracking.mlflow_uri
    cluster = _start_ray(options, space.all_configs(), uri)
    try:
        return _run_on_ray(loaded, space, trials, overrides, options, cluster, engines)
    finally:
        import ray

        ray.shutdown()  # stops our local Ray; on a cluster, only disconnects this driver


def _run_on_ray(loaded: LoadedExperiment, space: SweepSpace, trials: Sequence[PlannedTrial],
                overrides: Sequence[str], options: SweepOptions,
                cluster: ClusterView | None, engines: dict[str, str]) -> SweepOutcome:
    cfg = loaded.config
    sweep, record, resumed = prepare_sweep_dir(loaded, overrides, options)
    if cluster is not None and cluster.multi_node:
        _check_shared(sweep, record, cluster, resumed)
    found, missing = optional_benchmarks_found(cfg)
    if found or missing:
        print(f"optional benchmarks: {', '.join(found) or 'none'} found"
              + (f"; {', '.join(missing)} skipped (no data: set eval.data_dir or "
                 "$SEEDGRPO_DATA_DIR)" if missing else ""), flush=True)

    from seedgrpo.sweep.tracking import ParentRun, close_child_run

    parent = None
    if record.mlflow_uri:
        parent = ParentRun.open(record, sweep, loaded, trials)
        record.parent_run_id = parent.run_id
    record.status = "RUNNING"
    sweep.write(record)
    # the driver's answers hold for trials on its own machine; where a trial may run on
    # another (multi-node or autoscaling), it checks there: another may lack vLLM or an encoder
    trusted = engines if cluster is None or not cluster.multi_node else {}
    context = SweepContext(space, str(sweep.root), record.mlflow_uri, record.experiment_name,
                           record.parent_run_id, trusted)

    def on_end(trial: Any, status: str) -> None:
        if record.mlflow_uri is None:
            return
        name = _TrialNamer(space)(trial)
        mlflow_status = {"DONE": "FINISHED", "STOPPED": "FINISHED"}.get(status, "FAILED")
        close_child_run(record.mlflow_uri, sweep.trial_dir(name), mlflow_status,
                        stopped_early=status == "STOPPED")

    console = SweepConsole(_describer(space), cfg.tune.metric, on_end=on_end)
    verb = "resuming" if resumed else "starting"
    print(f"{loaded.label}: {verb} sweep {sweep.root} ({len(trials)} trials, "
          f"{cfg.tune.search_alg} search, {cfg.tune.scheduler} scheduler)", flush=True)
    if record.mlflow_uri:
        print(f"MLflow: {redact_uri(record.mlflow_uri)}, experiment "
              f"'{record.experiment_name}', parent run {record.parent_run_id}", flush=True)
    outcome = SweepOutcome(sweep, record)
    expected = cfg.tune.num_samples if space.adaptive else len(trials)
    # Ctrl-C and SIGTERM: Tune's graceful stop (state saved, trials stopped), recorded
    with StopSignals() as stop:
        try:
            tuner = _build_tuner(space, cfg, context, sweep, resumed)
            # the callbacks are attached here, not in RunConfig: Tune pickles RunConfig into
            # its state, and a restored Tuner must report to this process's console
            tuner_run_config(tuner).callbacks = [console, stop.tune_callback()]
            results = tuner.fit()
            outcome.errors = results.num_errors
            for result in results:  # trials a resumed sweep had finished before: in the table
                console.add_result(result.metrics or {}, result.config or {},
                                   failed=result.error is not None)
            # Tune marks the trials it stopped on Ctrl-C TERMINATED, as finished ones: what
            # really ended is what the console saw end (or a resumed sweep had ended before)
            if _ended(console) < expected:
                record.status = "INTERRUPTED"
            else:
                record.status = "FINISHED" if not outcome.errors else "FAILED"
        except KeyboardInterrupt:  # a second Ctrl-C, or one before Tune ran: stop now
            record.status = "INTERRUPTED"
        except BaseException:
            record.status = "FAILED"
            raise
        finally:
            outcome.rows = list(console.rows.values())
            if record.status == "INTERRUPTED":
                outcome.stop_signal = stop.received
                outcome.resume_command = resume_command(loaded.label, overrides, sweep.root,
                                                        options)
            _finish(sweep, record, parent, options, outcome, cfg, expected=expected,
                    stopped_at=stop.received_at)
    console.print_table()
    return outcome


def _ended(console: SweepConsole) -> int:
    """Trials that ran to their end: finished, stopped early by the scheduler, or failed."""
    return sum(row.status in ("DONE", "STOPPED", "ERROR") for row in console.rows.values())


def _kill_unfinished_children(uri: str, sweep: SweepDir) -> None:
    """An interrupted sweep's trials that were still running: their child runs KILLED, as the
    parent's (a resume sets them RUNNING again and finishes them)."""
    from seedgrpo.tracking.mlflow_run import kept_run_id, tracking_client

    client = tracking_client(uri)
    for trial_dir in sorted(p for p in sweep.trials_dir.iterdir() if p.is_dir()):
        run_id = kept_run_id(trial_dir)
        if run_id is not None and client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, "KILLED")


def _finish(sweep: SweepDir, record: SweepRecord, parent: Any, options: SweepOptions,
            outcome: SweepOutcome, cfg: ExperimentConfig, *, expected: int,
            stopped_at: float | None = None) -> None:
    """Record the status, write the report, close the parent run (also when interrupted:
    then the report says so, and the parent and unfinished child runs are KILLED)."""
    finished = {name: read_result(sweep.trial_dir(name)) for name in
                (p.name for p in sweep.trials_dir.iterdir() if p.is_dir())} \
        if sweep.trials_dir.is_dir() else {}
    scored = {n: r["metrics"][cfg.tune.metric] for n, r in finished.items()
              if r and cfg.tune.metric in r["metrics"]}
    if scored:
        pick = max if cfg.tune.mode == "max" else min
        record.best_trial = pick(scored, key=scored.__getitem__)
    sweep.write(record)
    interruption = None
    if record.status == "INTERRUPTED":
        from seedgrpo.sweep.report import Interruption

        if record.mlflow_uri and sweep.trials_dir.is_dir():
            try:
                _kill_unfinished_children(record.mlflow_uri, sweep)
            except Exception as err:  # noqa: BLE001 - the report and parent run still close
                print(f"warning: the unfinished trials' MLflow runs could not be marked "
                      f"KILLED ({type(err).__name__}: {redact_text(str(err))})", file=sys.stderr)
        interruption = Interruption(
            at=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stopped_at or time.time())),
            finished=sum(r is not None for r in finished.values()), planned=expected,
            resume_command=outcome.resume_command or "")
    try:
        if options.report and record.mlflow_uri and record.parent_run_id:
            try:
                from seedgrpo.sweep.report import write_report

                outcome.report_dir = write_report(record.mlflow_uri, record.parent_run_id,
                                                  sweep.report_dir, metric=record.metric,
                                                  mode=record.mode, interruption=interruption)
            except Exception as err:  # noqa: BLE001 - a report problem must not lose the sweep
                logger.exception("the sweep report failed")
                print(f"warning: the report could not be written ({type(err).__name__}: "
                      f"{redact_text(str(err))}); "
                      f"run seedgrpo-report {sweep.root} to retry", file=sys.stderr)
    finally:  # also on a Ctrl-C during the report: the parent run never stays RUNNING
        if parent is not None:
            parent.close(record, outcome.report_dir)

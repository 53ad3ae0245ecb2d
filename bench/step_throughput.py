"""Step throughput of the real runtime, beside a peer (stock TRL GRPOTrainer) in the same run.

    python bench/step_throughput.py                                   # the reference workload
    python bench/step_throughput.py --peer-python ~/.venvs/trl-peer/bin/python \\
        --peer-script /path/to/trl_peer.py                             # ... and TRL beside it
    python bench/step_throughput.py --set rollout.max_staleness=0 --set learner.num_ranks=1
    python bench/step_throughput.py --workload demo --trials 4        # the default sweep's trials
    python bench/step_throughput.py --check-idle-engines              # learn with engines idle

It runs N steps of a named workload (``bench/workloads/<name>.yaml``, ``demo`` =
``experiments/alpha_grid.yaml``, or any experiment file) through ``TrainingLoop``, the code a
sweep runs, on a local Ray; prints a table (s/step by phase, generated tokens/s, start-up time,
peak memory per actor) and writes everything to JSON.

- ``--trials K`` runs the workload's first K trials (its search space) one after another, each
  on the previous trial's actors (reset, as a sweep's warm trials are), and reports each
  trial's start-up: the first is cold, the others warm.
- ``--peer-python/--peer-script`` first run the peer on the same workload and print the ratio
  of the median steady step times; the peer's own problems file becomes the workload's data.
  The peer is a script you supply (not part of this repository) that trains with TRL's
  GRPOTrainer and takes the arguments ``run_peer`` passes; it is called by path, so seedgrpo
  never requires TRL.
- ``--check-idle-engines`` measures the learners' update with the rollout engines up and idle,
  then with them stopped: the two must match if idle engines leave the learners their cores.

Speed goals live here, never in timed tests: the machines are noisy, so compare in one run.
Steady steps are steps 2 .. N-1 (the first warms up, the last evaluates and checkpoints).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORKLOADS = {"reference": REPO / "bench" / "workloads" / "reference.yaml",
             "demo": REPO / "experiments" / "alpha_grid.yaml"}
PHASES = (("time/step_s", "step"), ("time/rollout_wait_s", "wait for batch"),
          ("time/generate_s", "generate (engine)"), ("time/score_s", "score"),
          ("time/learn_s", "learn"), ("time/sync_s", "sync (driver)"),
          ("time/weight_load_s", "weight load (engine)"))

logger = logging.getLogger("seedgrpo.bench")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="reference",
                   help="reference (default), demo, or an experiment file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set rollout.max_staleness=0")
    p.add_argument("--steps", type=int, default=None,
                   help="steps per trial (default: the workload's train.steps)")
    p.add_argument("--trials", type=int, default=1,
                   help="run the workload's first K trials on reused actors (warm start-up)")
    p.add_argument("--problems", default=None,
                   help="JSON Lines problems (id, problem, answer) for the workload's data")
    p.add_argument("--peer-python", default=None, help="the peer's Python (a TRL venv)")
    p.add_argument("--peer-script", default=None, help="the peer script, e.g. trl_peer.py")
    p.add_argument("--check-idle-engines", action="store_true",
                   help="also time learner updates with the engines idle, then stopped")
    p.add_argument("--out", default=None, help="JSON file (default: bench/results/<date>.json)")
    p.add_argument("--num-cpus", type=int, default=None, help="local Ray CPUs (default: all)")
    return p


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(
        os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "torch": torch.__version__}


# -- the peer -------------------------------------------------------------------------------
def run_peer(args: argparse.Namespace, model_dir: Path, steps: int, work: Path
             ) -> dict[str, Any]:
    """The peer on the reference workload; its problems file lands in ``work``."""
    out, problems = work / "peer.json", work / "problems.jsonl"
    cmd = [args.peer_python, args.peer_script, "--model-dir", str(model_dir), "--out", str(out),
           "--steps", str(steps), "--micro-batch", "8", "--qwen-math",
           "--dump-jsonl", str(problems)]
    print(f"peer: {' '.join(cmd)}", flush=True)
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: the peer failed (exit {done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    summary = json.loads(out.read_text())
    summary["wall_s"] = time.monotonic() - start
    summary["problems_file"] = str(problems)
    return summary


# -- our runtime ----------------------------------------------------------------------------
def steady(values: list[float]) -> float | None:
    """Median of steps 2 .. N-1 (all of them when there are fewer than three)."""
    core = values[1:-1] if len(values) >= 3 else values
    return statistics.median(core) if core else None


def run_trials(cfgs: list[Any], work: Path) -> list[dict[str, Any]]:
    """Each config as one trial, on the previous trial's actors; per-step metrics, start-up,
    memory."""
    from seedgrpo.runtime.trial import TrainingLoop

    results, actors = [], None
    for i, cfg in enumerate(cfgs):
        steps: dict[int, dict[str, float]] = {}

        def report(step: int, metrics: dict[str, float], steps=steps, trial=i + 1) -> None:
            steps[step] = metrics
            phases = "  ".join(f"{label.split(' ')[0]} {metrics[key]:5.1f}"
                               for key, label in PHASES if key in metrics)
            print(f"  trial {trial} step {step}: {phases}", flush=True)

        runner = TrainingLoop(cfg, work / f"trial_{i}", report=report, actors=actors)
        t0 = time.monotonic()
        runner.run(keep_actors=True)
        wall = time.monotonic() - t0
        actors = runner.actors
        results.append({"trial": i + 1, "warm": runner.reused_actors,
                        "startup_s": runner.startup_s, "wall_s": wall,
                        "steps": {str(k): v for k, v in sorted(steps.items())},
                        "memory_mb": actors.memory()})
        print(f"  trial {i + 1}: {'warm' if runner.reused_actors else 'cold'} start-up "
              f"{runner.startup_s:.1f} s, {wall:.0f} s in all", flush=True)
    if actors is not None:
        results[-1]["_actors"] = actors  # kept for the idle check, dropped before JSON
    return results


def check_idle_engines(actors: Any, cfg: Any, repeats: int = 5) -> dict[str, Any]:
    """Learner updates on one batch with the engines up and idle, then with them stopped.

    The ratio compares the fastest of each set: an engine that kept spinning would slow every
    update, the fastest included, while the machine's noise only ever adds time."""
    from seedgrpo.models import resolve_model_dir
    from seedgrpo.runtime.trial import TrainingLoop

    scratch = tempfile.mkdtemp(prefix="seedgrpo-idle-")
    try:
        runner = TrainingLoop(cfg, scratch, actors=actors)
        runner._prepare_data(resolve_model_dir(cfg.model))
        batch = runner._submit(1)
        actors.rollouts.wait(batch.meta, "generating")
        actors.scorer.wait([batch.scored], "scoring")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def learn() -> list[float]:
        out = []
        for _ in range(repeats):
            start = time.monotonic()
            actors.learners.wait(actors.learners.call(
                "train", batch.prompt_ids, batch.shards, batch.scored, False), "learning")
            out.append(time.monotonic() - start)
        return out

    time.sleep(5)  # the engines have been idle a while, as between two steps
    with_engines = learn()
    actors.rollouts.kill()
    time.sleep(5)
    without = learn()
    return {"learn_s_engines_idle": with_engines, "learn_s_engines_stopped": without,
            "ratio": min(with_engines) / min(without),
            "ratio_of_medians": statistics.median(with_engines) / statistics.median(without)}


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if bool(args.peer_python) != bool(args.peer_script):
        print("error: give both --peer-python and --peer-script (or neither)", file=sys.stderr)
        return 2
    from seedgrpo.config import ConfigError, expand_trials, load_experiment
    from seedgrpo.models import resolve_model_dir

    path = WORKLOADS.get(args.workload, Path(args.workload))
    if not path.is_file():
        print(f"error: no workload '{args.workload}': use one of {', '.join(WORKLOADS)} or an "
              "experiment file", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="seedgrpo-bench-"))
    overrides = list(args.overrides)
    if args.steps:
        overrides.append(f"train.steps={args.steps}")
    try:
        loaded = load_experiment(path, overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cfg = loaded.config
    model_dir = resolve_model_dir(cfg.model)
    record: dict[str, Any] = {"date": dt.date.today().isoformat(), "machine": machine(),
                              "workload": str(path), "overrides": overrides}
    problems = args.problems
    if args.peer_python:
        record["peer"] = run_peer(args, model_dir, cfg.train.steps, work)
        problems = problems or record["peer"]["problems_file"]
    if problems:
        overrides += ["data.source=jsonl", f"data.path={problems}"]
        loaded = load_experiment(path, overrides)
        cfg = loaded.config
    trials = expand_trials(cfg) if cfg.search_space else []
    cfgs = [t.config for t in trials[: args.trials]] or [cfg] * args.trials
    record["config"] = cfg.model_dump(mode="json")

    import ray

    from seedgrpo.runtime.local_ray import start_local_ray

    start_local_ray(num_cpus=args.num_cpus)
    try:
        print(f"seedgrpo: {path.name}, {cfg.train.steps} steps x {len(cfgs)} trial(s), engine "
              f"{cfg.rollout.engine}, {cfg.learner.num_ranks} rank(s) ZeRO-"
              f"{cfg.learner.zero_stage}, max_staleness {cfg.rollout.max_staleness}", flush=True)
        results = run_trials(cfgs, work)
        actors = results[-1].pop("_actors", None)
        if args.check_idle_engines and actors is not None:
            print("idle-engine check: learner updates with the engines idle, then stopped",
                  flush=True)
            record["idle_engines"] = check_idle_engines(actors, cfgs[-1])
        if actors is not None:
            actors.shutdown()
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)  # checkpoints: gigabytes per trial
    record["trials"] = results

    first = results[0]
    step_rows = [first["steps"][k] for k in sorted(first["steps"], key=int) if k != "0"]
    summary = {label: steady([m[key] for m in step_rows if key in m]) for key, label in PHASES}
    tokens = steady([m["throughput/tokens_per_s"] for m in step_rows])
    rows = [(f"{label} (s)", f"{v:.2f}" if v is not None else "-")
            for label, v in summary.items()]
    rows.append(("generated tokens/s (engine)", f"{tokens:.1f}" if tokens else "-"))
    rows += [(f"start-up, trial {r['trial']} ({'warm' if r['warm'] else 'cold'}) (s)",
              f"{r['startup_s']:.1f}") for r in results]
    rows += [(f"peak RSS {name} (MiB)", f"{mb:.0f}") for name, mb in
             results[-1]["memory_mb"].items()]
    record["summary"] = {"steady_step_s": summary["step"], "phases_s": summary,
                         "tokens_per_s": tokens,
                         "startup_s": [r["startup_s"] for r in results]}
    if "peer" in record:
        peer_step = record["peer"]["timing"]["median_steady_step_s"]
        ratio = peer_step / summary["step"]
        record["summary"]["peer_steady_step_s"] = peer_step
        record["summary"]["throughput_vs_peer"] = ratio
        rows += [("peer (TRL) steady s/step", f"{peer_step:.2f}"),
                 ("throughput vs peer", f"{ratio:.2f}x")]
    if "idle_engines" in record:
        idle = record["idle_engines"]
        for state in ("idle", "stopped"):
            times = idle[f"learn_s_engines_{state}"]
            rows.append((f"learn, engines {state} (s)",
                         f"fastest {min(times):.2f}, median {statistics.median(times):.2f}"))
        rows.append(("idle / stopped", f"{idle['ratio']:.2f} (fastest), "
                     f"{idle['ratio_of_medians']:.2f} (medians)"))
    m = record["machine"]
    print(f"\n{record['date']}, {m['cpu']}, {m['cores']} cores, torch {m['torch']}")
    print(table(rows))
    out = Path(args.out) if args.out else REPO / "bench" / "results" / (
        f"{record['date']}-{path.stem}-{int(time.time())}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

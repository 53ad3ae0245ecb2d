"""``seedgrpo-sweep`` and ``seedgrpo-report`` as a user runs them: real Ray Tune, real DeepSpeed,
real SQLite MLflow, the tiny model. Slow: each test runs whole sweeps."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import FinishedSweep, run_cli, script, sweep_runs, write_experiment

# whole sweeps: minutes each on 2 loaded cores, past the suite's 300 s default
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_grid_sweep_makes_one_parent_and_a_child_per_trial(grid_sweep: FinishedSweep) -> None:
    client, exp, parents, children = sweep_runs(grid_sweep.uri, "tiny_grid")
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"
    (parent,) = parents
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sweep.algorithm.alpha"] == "grid[0.25, 0.5, 1]"
    assert parent.data.params["sweep.num_trials"] == "4"
    # `none` ignores alpha, so it runs once: 4 trials, named from their varied values
    assert sorted(r.info.run_name for r in children) == [
        "linear-a0.25", "linear-a0.5", "linear-a1", "none"]
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED"
        params = run.data.params
        assert params["algorithm.group_size"] == "4"
        name = run.info.run_name
        assert params["algorithm.modulation"] == ("none" if name == "none" else "linear")
        if name != "none":
            assert float(params["algorithm.alpha"]) == float(name.removeprefix("linear-a"))
        for key in ("train/reward_mean", "train/se_mean", "train/factor_mean", "time/step_s",
                    "eval/heldout/pass_at_1"):
            history = client.get_metric_history(run.info.run_id, key)
            assert [m.step for m in history] == [1, 2], key
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.json", "eval", "train"} <= artifacts
        samples = {a.path for a in client.list_artifacts(run.info.run_id, "eval")}
        assert samples == {"eval/samples_step_000001.jsonl", "eval/samples_step_000002.jsonl"}
    # warm trials: the first trial starts the engines and ranks, the next three reuse them
    warm = sorted(client.get_metric_history(r.info.run_id, "time/warm_start")[0].value
                  for r in children)
    assert warm == [0.0, 1.0, 1.0, 1.0]
    # linear modulation: factor = 1 - alpha * SE / ln G, visibly ordered by alpha
    factor = {r.info.run_name: r.data.metrics["train/factor_mean"] for r in children}
    assert factor["none"] == 1.0
    assert factor["linear-a0.25"] > factor["linear-a0.5"] > factor["linear-a1"]
    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.md", "report/accuracy_vs_alpha.png", "report/benchmarks.png",
            "report/learning_curves.png", "report/uncertainty.png"} <= report
    # the console: a final table, the best trial, where the report is
    out = grid_sweep.stdout
    assert "trial" in out and "linear-a0.25" in out and "DONE" in out
    assert "best trial:" in out and "report:" in out and "mlflow ui --backend-store-uri" in out


def test_report_numbers_match_mlflow(grid_sweep: FinishedSweep, tmp_path: Path) -> None:
    client, _, (parent,), children = sweep_runs(grid_sweep.uri, "tiny_grid")
    report_dir = grid_sweep.sweep_dir / "report"
    summary = json.loads((report_dir / "summary.json").read_text())
    by_name = {r.info.run_name: r for r in children}
    assert {row["trial"] for row in summary["trials"]} == set(by_name)
    for row in summary["trials"]:
        run = by_name[row["trial"]]
        for key in ("train/reward_mean", "eval/heldout/pass_at_1"):
            last = client.get_metric_history(run.info.run_id, key)[-1]
            assert row[key] == pytest.approx(last.value), (row["trial"], key)
        assert row["step"] == 2 and row["run_id"] == run.info.run_id
    with (report_dir / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["trial"] for r in rows] == [t["trial"] for t in summary["trials"]]
    for r, t in zip(rows, summary["trials"], strict=True):
        assert float(r["eval/heldout/pass_at_1"]) == pytest.approx(t["eval/heldout/pass_at_1"])
    best = summary["best"]
    values = [t["eval/heldout/pass_at_1"] for t in summary["trials"]]
    assert best["value"] == max(values) and best["trial"] in by_name
    assert parent.data.tags["seedgrpo.best_trial"] == best["trial"]
    for png in ("accuracy_vs_alpha.png", "benchmarks.png", "learning_curves.png",
                "uncertainty.png"):
        assert (report_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # on demand, from the experiment file: the same numbers
    again = run_cli("seedgrpo-report", str(grid_sweep.experiment), "--output",
                    str(tmp_path / "again"), "--no-log", cwd=grid_sweep.workdir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "again" / "summary.json").read_text())["trials"] == \
        summary["trials"]


def test_optuna_with_asha_stops_a_trial_early(tmp_path: Path, model_cache: Path) -> None:
    # the tiny random model answers nothing right, so accuracy cannot rank trials; the mean
    # modulation factor (1 - alpha * SE / ln G, SE near ln G here) is a deterministic
    # function of the sampled alpha, and ASHA must stop the trials that draw a large alpha
    experiment = write_experiment(tmp_path, "tiny_optuna", model_cache, """
tune: {search_alg: optuna, scheduler: asha, num_samples: 4, seed: 3, metric: train/factor_mean,
       mode: max, grace_period: 1, reduction_factor: 2, max_concurrent_trials: 1}
search_space:
  algorithm.alpha: {loguniform: [0.01, 1.0]}
""", steps=4)
    out = run_cli("seedgrpo-sweep", str(experiment), cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    client, _, (parent,), children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}",
                                                "tiny_optuna")
    assert len(children) == 4
    alphas = [float(r.data.params["algorithm.alpha"]) for r in children]
    assert len(set(alphas)) == 4 and all(0.01 <= a <= 1.0 for a in alphas)
    steps = {r.info.run_name: len(client.get_metric_history(r.info.run_id,
                                                             "train/factor_mean"))
             for r in children}
    stopped = [r for r in children if r.data.tags.get("seedgrpo.stopped_early") == "true"]
    assert stopped, steps
    for run in stopped:
        assert steps[run.info.run_name] < 4 and run.info.status == "FINISHED"
    assert "stopped early by ASHA" in out.stdout
    assert any(n == 4 for n in steps.values())  # the best ones run to the end


def _wait_for(predicate, timeout_s: float, what: str, poll_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


STEPS = 40


def test_interrupted_sweep_resumes_without_rerunning_or_duplicating(tmp_path: Path,
                                                                      model_cache: Path) -> None:
    experiment = write_experiment(tmp_path, "tiny_resume", model_cache, """
tune: {metric: eval/heldout/pass_at_1, max_concurrent_trials: 1}
search_space:
  algorithm.modulation: {grid: [none, linear]}
  algorithm.alpha: {grid: [0.5, 1.0]}
""", steps=STEPS)
    # tiny steps take well under a second: enough of them, and checkpoints every 5, leave a
    # window of many seconds between a trial's first checkpoint and its end to interrupt in
    sets = ["--set", "train.checkpoint_every=5", "--set", f"eval.every_steps={STEPS}"]
    proc = subprocess.Popen([script("seedgrpo-sweep"), str(experiment), *sets], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    root = tmp_path / "runs" / "tiny_resume"
    try:
        def one_done_and_one_checkpointed() -> bool:
            trials = root.glob("*/trials/*")
            done = [t for t in trials if (t / "result.json").is_file()]
            started = [t for t in root.glob("*/trials/*") if not (t / "result.json").is_file()
                       and (t / "checkpoints" / "latest").is_file()]
            return bool(done) and bool(started)

        _wait_for(one_done_and_one_checkpointed, 400, "a finished and a checkpointed trial",
                  poll_s=0.2)
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, stdout[-2000:] + stderr[-4000:]
    assert "--resume" in stderr
    sweep_dir = root / (root / "latest").read_text().strip()
    assert json.loads((sweep_dir / "sweep.json").read_text())["status"] == "INTERRUPTED"
    finished = {t.name: (t / "result.json").stat().st_mtime_ns
                for t in (sweep_dir / "trials").iterdir() if (t / "result.json").is_file()}
    assert finished

    unfinished = [t.name for t in (sweep_dir / "trials").iterdir()
                  if not (t / "result.json").is_file()
                  and (t / "checkpoints" / "latest").is_file()]
    assert unfinished, "the interrupt came after every trial had finished"

    out = run_cli("seedgrpo-sweep", str(experiment), *sets, "--resume", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    assert f"resuming sweep {sweep_dir}" in out.stdout
    lines = out.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("trial ")):]
    assert sum(" DONE " in line for line in table) == 3, table  # the earlier ones too
    # finished trials were not trained again
    for name, mtime in finished.items():
        assert (sweep_dir / "trials" / name / "result.json").stat().st_mtime_ns == mtime
    client, _, parents, children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "tiny_resume")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.info.run_name for r in children) == ["linear-a0.5", "linear-a1", "none"]
    for run in children:  # one run per trial, one value per step
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        history = client.get_metric_history(run.info.run_id, "train/reward_mean")
        assert [m.step for m in history] == list(range(1, STEPS + 1)), run.info.run_name
    assert not math.isnan(json.loads((sweep_dir / "report" / "summary.json").read_text())[
        "trials"][0]["eval/heldout/pass_at_1"])


def _monitor_reported() -> bool:
    """Until the head's monitor has reported once, a sweep cannot tell a plain Ray from an
    autoscaling one, and takes the safe side (autoscaling): wait for that first report."""
    from seedgrpo._compat import ray_autoscaling_status
    from seedgrpo.sweep.cluster import readonly_autoscaler

    status = ray_autoscaling_status()
    return bool(status) and readonly_autoscaler(json.loads(status))


def test_address_joins_a_running_cluster_and_leaves_it_running(tmp_path: Path,
                                                               model_cache: Path) -> None:
    import ray

    experiment = write_experiment(tmp_path, "tiny_cluster", model_cache, """
tune: {metric: eval/heldout/pass_at_1}
search_space:
  algorithm.alpha: {grid: [0.5]}
""", steps=1)
    context = ray.init(address="local", num_cpus=2, include_dashboard=False,
                       log_to_driver=False)
    try:
        address = context.address_info["address"]
        _wait_for(_monitor_reported, 60, "Ray's monitor to report its (read-only) provider")
        # one host, no autoscaler: a trial that can never fit is refused, not waited for
        refused = run_cli("seedgrpo-sweep", str(experiment), "--address", address, "--set",
                          "resources.learner_rank.gpus=1", cwd=tmp_path)
        assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-3000:]
        assert "needs GPU 1" in refused.stderr and "no autoscaler" in refused.stderr
        out = run_cli("seedgrpo-sweep", str(experiment), "--address", address, cwd=tmp_path)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
        assert "1 node(s) on 1 host(s)" in out.stdout  # one host: the SQLite file is fine
        assert "DONE" in out.stdout
        # the cluster the sweep joined is still up, with its resources back
        _wait_for(lambda: ray.available_resources().get("CPU") == 2.0, 60,
                  "the sweep's placement groups to be released")
        assert ray.get(ray.remote(lambda: 1).remote(), timeout=60) == 1
    finally:
        ray.shutdown()

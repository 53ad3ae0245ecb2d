"""Sweeps the way a team runs them: a shared MLflow server on PostgreSQL, and a Ray cluster
that autoscales. Everything is real and on this machine: Debian's PostgreSQL (an unprivileged
throwaway cluster on 127.0.0.1), ``mlflow server``, Ray's fake multi-node autoscaler (worker
nodes are real raylets on this machine; a custom resource stands in for GPUs), the sweep CLI.
Each test stops exactly the processes it started. Slow: whole sweeps.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import run_cli, script, write_experiment
from .fake_cluster import RAY_ENV, FakeAutoscalingCluster
from .processes import MlflowServer, Postgres, postgres_available

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TWO_TRIALS = """
tune: {metric: eval/heldout/pass_at_1}
search_space:
  algorithm.alpha: {grid: [0.25, 1.0]}
"""


def _node_ip() -> str:
    """This machine's address on its network, as Ray nodes see it: what a server must be
    reached on from "other" nodes. Loopback-only machines cannot run the cluster tests."""
    import ray

    ip = ray.util.get_node_ip_address()
    if ip.startswith("127.") or ip == "::1":
        message = "this machine has no non-loopback address for the cluster tests"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return ip


def _rest(uri: str, endpoint: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """One call to MLflow's REST API (what the UI and every client use)."""
    url = f"{uri}/api/2.0/mlflow/{endpoint}"
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type":
                                                              "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _sweep_runs(uri: str, experiment: str) -> tuple[dict, list[dict]]:
    """The sweep's parent run and its child runs, read through the REST API."""
    exp = _rest(uri, "experiments/get-by-name?experiment_name=" + experiment)["experiment"]
    runs = _rest(uri, "runs/search", {"experiment_ids": [exp["experiment_id"]],
                                      "max_results": 100}).get("runs", [])

    def tags(run: dict) -> dict[str, str]:
        return {t["key"]: t["value"] for t in run["data"].get("tags", [])}

    parents = [r for r in runs if tags(r).get("seedgrpo.role") == "sweep"]
    children = [r for r in runs if tags(r).get("seedgrpo.role") == "trial"]
    assert len(parents) == 1, [tags(r) for r in runs]
    parent = parents[0]
    for child in children:
        assert tags(child)["mlflow.parentRunId"] == parent["info"]["run_id"]
    return parent, children


def _metric_keys(run: dict) -> set[str]:
    return {m["key"] for m in run["data"].get("metrics", [])}


@pytest.fixture
def postgres(tmp_path_factory: pytest.TempPathFactory):
    if not postgres_available():
        message = "PostgreSQL (initdb, pg_ctl) is not installed: make setup installs it as root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    import tempfile

    # not under pytest's tmp dirs: those are private to the test user, and the server runs
    # as another (unprivileged) user when the tests run as root
    server = Postgres(Path(tempfile.mkdtemp(prefix="sg-pg-", dir="/tmp")))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        import shutil

        shutil.rmtree(server.root, ignore_errors=True)


def test_sweep_tracks_to_an_mlflow_server_on_postgres(tmp_path: Path, model_cache: Path,
                                                      postgres: Postgres) -> None:
    """The team set-up of docker/compose.yaml, without Docker: a 2-trial sweep logs its parent
    and child runs to ``mlflow server`` on PostgreSQL; the runs are read back over REST and the
    rows are in PostgreSQL itself."""
    server = MlflowServer(script("mlflow"), postgres.uri, tmp_path, _node_ip())
    try:
        server.wait_ready()
        experiment = write_experiment(tmp_path, "pg_sweep", model_cache, TWO_TRIALS)
        out = run_cli("seedgrpo-sweep", str(experiment), "--set",
                      f"tracking.mlflow_uri={server.uri}", cwd=tmp_path)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
        assert f"MLflow: {server.uri}" in out.stdout

        parent, children = _sweep_runs(server.uri, "pg_sweep")
        assert parent["info"]["status"] == "FINISHED"
        params = {p["key"]: p["value"] for p in parent["data"]["params"]}
        assert params["sweep.num_trials"] == "2"
        assert sorted(c["info"]["run_name"] for c in children) == ["a0.25", "a1"]
        for child in children:
            assert child["info"]["status"] == "FINISHED"
            assert {"train/reward_mean", "train/factor_mean",
                    "eval/heldout/pass_at_1"} <= _metric_keys(child)
            history = _rest(server.uri, "metrics/get-history?run_id="
                            f"{child['info']['run_id']}&metric_key=train/factor_mean")
            assert [m["step"] for m in history["metrics"]] == [1, 2]
            # artifacts went through the server's proxy into its artifact store
            listed = _rest(server.uri, f"artifacts/list?run_id={child['info']['run_id']}")
            assert {f["path"] for f in listed.get("files", [])} >= {"config.json", "eval",
                                                                 "train"}, listed
        assert any((tmp_path / "mlflow-artifacts").rglob("config.json"))

        import psycopg

        with psycopg.connect(postgres.uri.replace("postgresql+psycopg", "postgresql")) as db:
            (count,) = db.execute("SELECT count(*) FROM runs").fetchone()  # type: ignore[misc]
            assert count == 3  # the parent and two trials, in PostgreSQL
    finally:
        server.stop()


FAKE_GPU_SWEEP = """
resources:
  call_timeout_s: 300
  driver: {cpus: 0.25}
  scorer: {cpus: 0.25}
  rollout_worker: {cpus: 0.5, custom: {fake_gpu: 0.5}}
  learner_rank: {cpus: 0.5, custom: {fake_gpu: 0.5}}
""" + TWO_TRIALS


def test_autoscaling_cluster_adds_nodes_for_trials_and_removes_them(
        tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cluster with a CPU-0 head and no workers: each trial needs one `fake_gpu` node, so the
    autoscaler adds workers, both trials finish and reach MLflow, and the idle workers are
    removed after the idle timeout. A SQLite tracking URI is refused on this cluster first."""
    host = _node_ip()
    cluster = FakeAutoscalingCluster(
        {"fake_gpu_worker": {"resources": {"CPU": 2, "fake_gpu": 1,
                                           "object_store_memory": 200_000_000},
                             "min_workers": 0, "max_workers": 2}},
        head_cpus=0, idle_timeout_minutes=0.2, host=host)
    server = MlflowServer(script("mlflow"), f"sqlite:///{tmp_path / 'server.db'}", tmp_path,
                          host)
    for name, value in RAY_ENV.items():  # the sweep CLI joins with the cluster's settings
        monkeypatch.setenv(name, value)
    try:
        cluster.start()
        server.wait_ready()
        assert cluster.alive_workers("fake_gpu") == 0
        experiment = write_experiment(tmp_path, "scaling", model_cache, FAKE_GPU_SWEEP)

        refused = run_cli("seedgrpo-sweep", str(experiment), "--address", cluster.address,
                          cwd=tmp_path, timeout=300)
        assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-3000:]
        assert "sqlite:///mlflow.db is a file on this machine" in refused.stderr
        assert not (tmp_path / "runs").exists()  # refused before anything was written

        workers_seen: list[int] = []
        done = threading.Event()

        def watch() -> None:  # the autoscaler's work, seen from outside while trials run
            while not done.is_set():
                try:
                    workers_seen.append(cluster.alive_workers("fake_gpu"))
                except Exception:  # noqa: BLE001 - a status call racing a node start
                    pass
                done.wait(3)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        out = run_cli("seedgrpo-sweep", str(experiment), "--address", cluster.address,
                      "--set", f"tracking.mlflow_uri={server.uri}", cwd=tmp_path)
        done.set()
        watcher.join(timeout=60)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
        assert "autoscaling" in out.stdout
        assert "trials wait for the autoscaler" in out.stderr
        assert max(workers_seen, default=0) >= 1, workers_seen

        parent, children = _sweep_runs(server.uri, "scaling")
        assert parent["info"]["status"] == "FINISHED"
        assert sorted(c["info"]["run_name"] for c in children) == ["a0.25", "a1"]
        assert all(c["info"]["status"] == "FINISHED" for c in children)
        assert all("eval/heldout/pass_at_1" in _metric_keys(c) for c in children)

        deadline = time.monotonic() + 180  # idle timeout 12 s, plus the autoscaler's rounds
        while cluster.alive_workers("fake_gpu") and time.monotonic() < deadline:
            time.sleep(3)
        assert cluster.alive_workers("fake_gpu") == 0, "idle workers were not removed"
        assert cluster.status()["nodes"], "the head must still be up"
    finally:
        server.stop()
        cluster.stop()

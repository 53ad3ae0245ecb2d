"""A real sweep whose tracking URI carries a password, in a directory whose path holds a quote.

``seedgrpo-sweep`` logs to a real ``mlflow server`` through ``http://alice:PASSWORD@...`` (the
server ignores the credentials; the client sends them), from ``$MLFLOW_TRACKING_URI``. The
password must reach no file under the working directory (sweep record, Tune state, trial
files, checkpoints), no file of the server's store (params, tags, artifacts), and neither
stdout nor stderr; ``--resume`` with a rotated password continues the sweep, and
``seedgrpo-report`` reconnects with the environment's password. The working directory's
``'`` is in every MLflow tag filter a new trial runs. Also ``seedgrpo-train`` without
benchmarks, run again on its finished checkpoint.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import BIN, TINY_SWEEP, script

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

FIRST, ROTATED = "pw-first-" + "Kx7", "pw-rotated-" + "Q3m"  # built: this file holds neither


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A real MLflow tracking server (SQLite store, proxied artifacts) on a free port."""
    store = tmp_path_factory.mktemp("server")
    port = _free_port()
    log = open(store / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
         "--artifacts-destination", str(store / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((store / "server.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield port, store
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)
        log.close()


def _run(name: str, *args: str, cwd: Path, env: dict[str, str]
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([script(name), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1", **env})


def _files_holding(root: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _experiment(workdir: Path, cache: Path, *, benchmarks: str = "") -> Path:
    text = TINY_SWEEP.format(cache=cache, steps=1)
    # the tracking URI comes from $MLFLOW_TRACKING_URI, as on a cluster's images
    text = text.replace('tracking: {mlflow_uri: "sqlite:///mlflow.db", output_dir: runs}',
                        "tracking: {output_dir: runs}")
    assert "mlflow_uri" not in text
    if benchmarks:
        text = text.replace("eval: {", f"eval: {{benchmarks: {benchmarks}, ")
    else:
        text += "tune: {metric: eval/heldout/pass_at_1}\n"
    path = workdir / "secret_sweep.yaml"
    path.write_text(text)
    return path


def test_a_tracking_password_reaches_no_file_param_or_console(
        tmp_path: Path, model_cache: Path, mlflow_server: tuple[int, Path]) -> None:
    port, store = mlflow_server
    workdir = tmp_path / "it's a sweep"  # a quote in every path MLflow filters on
    workdir.mkdir()
    experiment = _experiment(workdir, model_cache)
    live = f"http://alice:{FIRST}@127.0.0.1:{port}"
    out = _run("seedgrpo-sweep", str(experiment), cwd=workdir,
               env={"MLFLOW_TRACKING_URI": live})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    shown = f"http://alice:***@127.0.0.1:{port}"
    assert shown in out.stdout and FIRST not in out.stdout + out.stderr

    sweep_dir = workdir / "runs" / "secret_sweep" / (
        workdir / "runs" / "secret_sweep" / "latest").read_text().strip()
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["mlflow_uri"] == shown and record["status"] == "FINISHED"
    assert (sweep_dir / "tune").is_dir() and (sweep_dir / "trials").is_dir()
    assert _files_holding(workdir, FIRST) == []
    assert _files_holding(store, FIRST) == []  # the server's params, tags and artifacts

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"http://127.0.0.1:{port}")
    exp = client.get_experiment_by_name("secret_sweep")
    runs = client.search_runs([exp.experiment_id])
    roles = sorted(r.data.tags.get("seedgrpo.role") for r in runs)
    assert roles == ["sweep", "trial"], roles
    for run in runs:
        assert FIRST not in json.dumps([run.data.params, run.data.tags])
        assert run.info.status == "FINISHED"
        where = client.download_artifacts(run.info.run_id, "config.json", str(tmp_path))
        assert json.loads(Path(where).read_text())["tracking"]["mlflow_uri"] == shown
    (child,) = [r for r in runs if r.data.tags["seedgrpo.role"] == "trial"]
    assert child.data.tags["seedgrpo.sweep"] == str(sweep_dir)  # the quote, as it is
    assert child.data.params["tracking.mlflow_uri"] == shown
    checkpoint_config = json.loads(
        next((sweep_dir / "trials").glob("*/checkpoints/experiment.json")).read_text())
    assert checkpoint_config["tracking"]["mlflow_uri"] == shown

    # --resume with the password rotated: the same sweep, connected with the new password
    resumed = _run("seedgrpo-sweep", str(experiment), "--resume", cwd=workdir,
                   env={"MLFLOW_TRACKING_URI": f"http://alice:{ROTATED}@127.0.0.1:{port}"})
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-5000:]
    assert f"resuming sweep {sweep_dir}" in resumed.stdout
    assert ROTATED not in resumed.stdout + resumed.stderr
    assert _files_holding(workdir, ROTATED) == [] and _files_holding(store, ROTATED) == []
    assert len(client.search_runs([exp.experiment_id])) == 2  # continued, not duplicated

    # the report reconnects with the environment's password, and without it says what to do
    report = _run("seedgrpo-report", str(sweep_dir), "--no-log", cwd=workdir,
                  env={"MLFLOW_TRACKING_URI": f"http://alice:{ROTATED}@127.0.0.1:{port}"})
    assert report.returncode == 0, report.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    refused = subprocess.run([script("seedgrpo-report"), str(sweep_dir), "--no-log"],
                             capture_output=True, text=True, cwd=workdir, timeout=300, env=env)
    assert refused.returncode == 2, refused.stderr
    assert "password is not stored" in refused.stderr and "MLFLOW_TRACKING_URI" in refused.stderr


def test_train_without_benchmarks_finishes_and_reruns_on_its_checkpoint(
        tmp_path: Path, model_cache: Path) -> None:
    """``eval.benchmarks: []``: the last step evaluates nothing, and running the finished run
    again (it resumes from its last checkpoint) reports the step instead of crashing."""
    experiment = _experiment(tmp_path, model_cache, benchmarks="[]")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    first = _run("seedgrpo-train", str(experiment), cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-5000:]
    assert "done: trained to step 1" in first.stdout
    again = _run("seedgrpo-train", str(experiment), cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-5000:]
    assert "continuing from checkpoint step_" in again.stdout
    assert "already trained; no benchmarks to evaluate" in again.stdout
    assert "Traceback" not in again.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("secret_sweep").experiment_id])
    assert [r.info.status for r in runs] == ["FINISHED"]  # the rerun continued its run
    assert not list((tmp_path / "runs").rglob("samples_step_*.jsonl"))


def test_the_cluster_check_reaches_a_server_whose_uri_has_a_password(
        tmp_path: Path, mlflow_server: tuple[int, Path]) -> None:
    """Each node's probe of the tracking server: credentials in the URI are not a host name
    (urllib would look up ``alice:PASSWORD@127.0.0.1``), and no message repeats them."""
    from seedgrpo.sweep.cluster import _probe, tracking_uri_problem

    port, _ = mlflow_server
    answer = _probe(str(tmp_path / "marker"), f"http://alice:{FIRST}@127.0.0.1:{port}")
    assert answer["tracking"] is None, answer
    problem = tracking_uri_problem(f"http://alice:{FIRST}@127.0.0.1:{port}")
    assert problem is not None and FIRST not in problem and "alice:***@" in problem

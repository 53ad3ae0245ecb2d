"""``--ui``: a real ``mlflow ui`` on a real SQLite store, served until Ctrl-C, then gone.

The store holds what a sweep leaves: an experiment, a parent run and three trial runs nested
under it. The server test runs ``seedgrpo-report SWEEP_DIR --ui`` as a user does, reads the
links it prints, asks the server for them and sends SIGINT.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from seedgrpo.cli import report
from seedgrpo.cli.ui_links import print_sweep_links, serve_sweep_ui
from seedgrpo.sweep.layout import SweepDir, SweepRecord
from seedgrpo.tracking.mlflow_ui import DEFAULT_PORT, free_port, store_problem

BIN = Path(sys.executable).parent
METRIC = "eval/heldout/pass_at_1"
TRIALS = (("none", "none", "n/a", 0.25), ("linear-a0.5", "linear", "0.5", 0.5),
          ("linear-a1", "linear", "1.0", 0.375))


def _sweep(tmp_path: Path, *, store: bool = True) -> tuple[SweepDir, str, str, list[str]]:
    """A sweep directory whose sweep.json names a SQLite store holding its runs (or, with
    ``store=False``, a store file that is not there): the directory, the experiment id, the
    parent run id and the trial run ids."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = SweepDir(tmp_path / "runs" / "grid" / "20261203-070000")
    sweep.root.mkdir(parents=True)
    experiment, parent, trials = "0", "f" * 32, []
    if store:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        experiment = client.create_experiment(
            "grid", tags={"mlflow.experimentKind": "custom_model_development"})
        parent = client.create_run(experiment, run_name="sweep-1",
                                   tags={"seedgrpo.role": "sweep"}).info.run_id
        for name, modulation, alpha, value in TRIALS:
            run = client.create_run(experiment, run_name=name, tags={
                "mlflow.parentRunId": parent, "seedgrpo.role": "trial",
                "seedgrpo.trial": name,
                "seedgrpo.varied": "algorithm.modulation,algorithm.alpha"}).info.run_id
            client.log_param(run, "algorithm.modulation", modulation)
            client.log_param(run, "algorithm.alpha", alpha)
            client.log_metric(run, METRIC, value, step=1)
            client.set_terminated(run)
            trials.append(run)
            time.sleep(0.01)  # distinct start times: the links list trials in this order
        client.set_terminated(parent)
    sweep.write(SweepRecord("grid.yaml", [], "x", "grid", uri, metric=METRIC, mode="max",
                            parent_run_id=parent, status="FINISHED"))
    return sweep, experiment, parent, trials


def test_the_last_lines_link_to_the_trials_and_say_how_to_open_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep, experiment, parent, trials = _sweep(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    print_sweep_links(uri, parent, metric=METRIC, mode="max",
                      open_command=f"seedgrpo-report {sweep.root} --ui")
    assert capsys.readouterr().out.splitlines() == [
        "the trials in the MLflow UI (a local store: run with --ui to open them):",
        "  trials:  http://127.0.0.1:5000/#/experiments/" + experiment + "/runs?workflowType="
        "machine_learning&searchFilter=tags.mlflow.parentRunId%20%3D%20%27" + parent + "%27"
        "&orderByKey=metrics.%60eval%2Fheldout%2Fpass_at_1%60&orderByAsc=false",
        "  compare: http://127.0.0.1:5000/#/compare-runs?runs=%5B%22" + "%22%2C%22".join(trials)
        + "%22%5D&experiments=%5B%22" + experiment + "%22%5D",
        f"  open:    seedgrpo-report {sweep.root} --ui   (or mlflow ui --backend-store-uri "
        f"{uri})"]


def test_free_port_prefers_mlflows_default_and_falls_back_when_taken() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        held.listen()
        other = free_port(taken)
        assert other != taken and other > 0
    assert free_port(taken) == taken  # released: preferred again
    assert free_port(None) > 0


def test_ui_refuses_a_missing_store_in_one_line_and_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep, *_ = _sweep(tmp_path, store=False)
    assert report.main([str(sweep.root), "--ui"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: no MLflow store at {tmp_path / 'mlflow.db'}: the SQLite file is "
                   "not there\n")
    assert not (tmp_path / "mlflow.db").exists()  # mlflow ui would have created it empty
    assert store_problem(f"file://{tmp_path / 'mlruns'}") == (
        f"no MLflow store at {tmp_path / 'mlruns'}: the directory is not there")


def test_ui_for_a_tracking_server_starts_nothing(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A server has its own UI: one line says so, nothing starts, the exit status is 0. (The
    server here is not reachable, so its links cannot be read: a warning, not a failure.)"""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens there once this socket is closed
    uri = f"http://alice:s3cret@127.0.0.1:{closed}"
    assert serve_sweep_ui(uri, "p" * 32, metric=METRIC, mode="max") == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == (f"--ui: http://alice:***@127.0.0.1:{closed} is a tracking "
                                    "server with its own UI: nothing to start")
    assert "s3cret" not in out + err


def test_ui_needs_a_sweep_that_used_mlflow(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_sweep_ui(None, None, metric=METRIC, mode="max") == 2
    assert "ran without MLflow" in capsys.readouterr().err


def test_sweep_dry_run_rejects_ui(capsys: pytest.CaptureFixture[str]) -> None:
    from seedgrpo.cli import sweep

    assert sweep.main(["experiments/alpha_grid.yaml", "--dry-run", "--ui"]) == 2
    assert "--ui" in capsys.readouterr().err


@contextlib.contextmanager
def _holding(port: int) -> Iterator[None]:
    """``port`` kept busy (when it is free) for the block, as another program would."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # held even in TIME_WAIT
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            pass  # listened on by something else: busy either way
        yield


def _lines(stream) -> queue.Queue[str | None]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _read_until(lines: queue.Queue[str | None], prefix: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"no line starting with {prefix!r} in:\n" + "\n".join(seen))


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def _search(address: str, experiment: str, filter_string: str) -> list[str]:
    """The run ids the server finds for a filter, as the runs page asks it (REST)."""
    body = json.dumps({"experiment_ids": [experiment], "filter": filter_string,
                       "max_results": 100}).encode()
    request = urllib.request.Request(f"{address}/api/2.0/mlflow/runs/search", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return sorted(r["info"]["run_id"] for r in json.load(response).get("runs", []))


def _listening(port: int) -> list[str]:
    """``mlflow`` or ``uvicorn`` processes started with ``--port PORT``: a leaked server."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError, ValueError):
            args = cmdline.read_bytes().split(b"\0")
            if {b"mlflow", b"uvicorn"} & set(args) and \
                    args[args.index(b"--port") + 1] == str(port).encode():
                found.append(cmdline.parent.name)
    return found


@pytest.mark.slow  # a real mlflow ui: 5-15 s to start on 2 loaded cores, and the report's plots
def test_report_ui_serves_the_links_until_ctrl_c_then_stops(tmp_path: Path) -> None:
    sweep, experiment, parent, trials = _sweep(tmp_path)
    with _holding(DEFAULT_PORT):  # 5000 taken: --ui must pick another port and print it
        proc = subprocess.Popen(
            [str(BIN / "seedgrpo-report"), str(sweep.root), "--ui", "--no-log", "--output",
             str(tmp_path / "report")], cwd=tmp_path, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            lines = _lines(proc.stdout)
            out = _read_until(lines, "  compare: ", timeout=240)
            heading = next(line for line in out if line.startswith("MLflow UI for "))
            found = re.search(r" at (http://127\.0\.0\.1:(\d+)) \(Ctrl-C stops it\):$", heading)
            assert found, heading
            address, port = found[1], int(found[2])
            assert port != DEFAULT_PORT
            runs_link = next(line for line in out if line.startswith("  trials:  ")).split()[-1]
            compare_link = out[-1].split()[-1]
            assert runs_link.startswith(f"{address}/#/experiments/{experiment}/runs?")
            assert compare_link == (
                f"{address}/#/compare-runs?runs=%5B%22" + "%22%2C%22".join(trials)
                + f"%22%5D&experiments=%5B%22{experiment}%22%5D")
            # the server answers, serves the UI's page, and the runs link's filter finds
            # exactly the sweep's trials (not its parent)
            assert _get(f"{address}/health") == (200, b"OK")
            status, page = _get(compare_link.split("#")[0])
            assert status == 200 and b"<div id=\"root\"" in page
            query = dict(p.split("=", 1) for p in urlsplit(runs_link).fragment
                         .split("?", 1)[1].split("&"))
            assert _search(address, experiment, unquote(query["searchFilter"])) == \
                sorted(trials)
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            proc.wait(timeout=60)
            err = proc.stderr.read()
            rest = _read_until(lines, "MLflow UI stopped", timeout=10)
        finally:
            if proc.poll() is None:  # a failed check: stop it as a user would, then for sure
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert rest[-1] == "MLflow UI stopped"
    with pytest.raises(OSError):
        _get(f"{address}/health")
    assert _listening(port) == []  # mlflow and its uvicorn are both gone
    # report.md links the same views, at mlflow ui's default address
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## The trials in the MLflow UI" in text
    assert f"](http://127.0.0.1:{DEFAULT_PORT}/#{compare_link.split('#', 1)[1]})" in text

"""``mlflow ui`` for a sweep's local store, for as long as the user looks at it (``--ui``).

The server is MLflow's own, started as ``mlflow ui --backend-store-uri STORE --host 127.0.0.1
--port PORT --workers 1``:

- on 127.0.0.1 only: the runs are the user's, not the network's;
- on port 5000, ``mlflow ui``'s default, when it is free, so the links printed at the end of a
  sweep and written into report.md open as printed; on any free port otherwise (the links are
  then printed again with it);
- quick to start: one worker, and MLflow's job runner off (a second process, for GenAI jobs a
  sweep never has);
- in its own session, so that Ctrl-C reaches this process only, which then stops the whole
  server (``mlflow`` and its ``uvicorn``) and waits for it: nothing is left listening.

A store that is not there is refused before anything starts: ``mlflow ui`` would create an
empty SQLite file and serve it, which looks like a sweep that logged nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from urllib.parse import unquote, urlsplit

from seedgrpo.redact import has_secret, redact_text, redact_uri
from seedgrpo.tracking.ui_links import is_local_store

__all__ = ["DEFAULT_PORT", "LocalUI", "UIError", "free_port", "serve_until_interrupted",
           "store_problem"]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 5000  # ``mlflow ui``'s own default: where links for a local store point
HOST = "127.0.0.1"
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # besides SIGINT (KeyboardInterrupt)
_BIND_RETRIES = 3  # another process may take a free port between the check and the bind


def _libc_prctl() -> Callable[..., int] | None:
    """Linux's ``prctl``, loaded here (not in a forked child, where loading is unsafe)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the server's process before it runs mlflow: SIGTERM it when this process dies, even
    by SIGKILL (which no handler sees), so a killed command leaves no server listening."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class UIError(RuntimeError):
    """``mlflow ui`` did not start (its log's last lines are in the message)."""


def _store_path(uri: str) -> Path | None:
    """The file or directory a SQLite or file store lives in; None for a database URL.

    >>> _store_path("sqlite:////data/mlflow.db"), _store_path("file:///data/mlruns")
    (PosixPath('/data/mlflow.db'), PosixPath('/data/mlruns'))
    >>> _store_path("mlruns"), _store_path("postgresql://db/mlflow")
    (PosixPath('mlruns'), None)
    """
    if uri.startswith("sqlite:///"):
        return Path(unquote(uri.removeprefix("sqlite:///").split("?", 1)[0]))
    if uri.startswith("file:"):
        return Path(unquote(urlsplit(uri).path))
    return None if "://" in uri else Path(uri)


def store_problem(uri: str) -> str | None:
    """Why ``mlflow ui`` cannot show ``uri``'s runs, in one line; None when it can.

    >>> store_problem("sqlite:////nonexistent/mlflow.db")
    'no MLflow store at /nonexistent/mlflow.db: the SQLite file is not there'
    >>> store_problem("sqlite:///:memory:")
    'an in-memory SQLite store keeps nothing to show'
    >>> store_problem("postgresql://db/mlflow") is None  # a server that mlflow ui will reach
    True
    >>> store_problem("databricks") is None  # not a local store: nothing to check here
    True
    """
    if not is_local_store(uri):
        return None
    if uri in ("sqlite://", "sqlite:///:memory:"):
        return "an in-memory SQLite store keeps nothing to show"
    path = _store_path(uri)
    if path is None:
        return None
    if uri.startswith("sqlite:"):
        return None if path.is_file() else \
            f"no MLflow store at {path}: the SQLite file is not there"
    return None if path.is_dir() else f"no MLflow store at {path}: the directory is not there"


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(preferred: int | None = DEFAULT_PORT) -> int:
    """``preferred`` when nothing listens on it at 127.0.0.1, else a port the system picks."""
    if preferred and _port_is_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# straight to 127.0.0.1: an $http_proxy must not carry the check elsewhere
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(address: str) -> bool:
    try:
        with _DIRECT.open(f"{address}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class LocalUI:
    """``mlflow ui`` serving ``store_uri`` on 127.0.0.1; ``with LocalUI(uri) as ui:`` starts it
    and waits until it answers (``ui.address``), and stops it at the end of the block."""

    def __init__(self, store_uri: str, *, port: int | None = DEFAULT_PORT,
                 timeout_s: float = 180.0) -> None:
        self.store_uri = store_uri
        self.preferred_port = port
        self.timeout_s = timeout_s
        self.address = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._log_dir = tempfile.TemporaryDirectory(prefix="seedgrpo-mlflow-ui-")
        self._log = Path(self._log_dir.name) / "mlflow-ui.log"

    def _command(self, port: int) -> tuple[list[str], dict[str, str]]:
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        command = [sys.executable, "-m", "mlflow", "ui", "--host", HOST, "--port", str(port),
                   "--workers", "1"]
        if has_secret(self.store_uri):  # a database password stays off the process list
            env["MLFLOW_BACKEND_STORE_URI"] = self.store_uri
        else:
            command += ["--backend-store-uri", self.store_uri]
        return command, env

    def _log_tail(self) -> str:
        try:
            text = self._log.read_text(errors="replace")
        except OSError:
            return ""
        return redact_text("\n".join(text.strip().splitlines()[-15:]))

    def start(self) -> str:
        """Start the server and wait until it answers; its address (``http://127.0.0.1:N``)."""
        port = free_port(self.preferred_port)
        for attempt in range(_BIND_RETRIES):
            command, env = self._command(port)
            with self._log.open("wb") as log:
                self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, env=env,
                                                start_new_session=True,
                                                preexec_fn=_die_with_parent)
            self.address = f"http://{HOST}:{port}"
            logger.info("mlflow ui for %s starting at %s (pid %d)",
                        redact_uri(self.store_uri), self.address, self.process.pid)
            deadline = time.monotonic() + self.timeout_s
            while self.process.poll() is None and time.monotonic() < deadline:
                if _answers(self.address):
                    return self.address
                time.sleep(0.25)
            exited = self.process.poll()
            tail = self._log_tail()
            self.stop()
            if "address already in use" in tail.lower() and attempt + 1 < _BIND_RETRIES:
                port = free_port(None)  # taken since it was checked: any other one
                continue
            why = (f"did not answer within {self.timeout_s:.0f} s" if exited is None
                   else f"exited with status {exited}")
            raise UIError(f"mlflow ui {why}" + (f"; its last lines:\n{tail}" if tail else ""))
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop the server: SIGTERM to ``mlflow``, which hands it to its ``uvicorn`` and waits
        for it; then whatever is left of its process group is killed (a server stopped while
        it started, or one that would not stop within ``timeout_s``)."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("mlflow ui did not stop within %.0f s: killed", timeout_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def __enter__(self) -> LocalUI:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        with _signals_ignored():  # a second Ctrl-C must not leave the server half-stopped
            self.stop()
        self._log_dir.cleanup()

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP ignored for the block (from the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, *_STOP_SIGNALS)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP (a closed terminal) end the wait, so the server is stopped
    whichever way this process is asked to end (main thread only). SIGINT is set too: a
    library that ran before (Ray Tune) may have left its own handler there."""
    saved = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, *_STOP_SIGNALS)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def serve_until_interrupted(store_uri: str, on_ready: Callable[[str], None], *,
                            port: int | None = DEFAULT_PORT, timeout_s: float = 180.0) -> bool:
    """Serve ``store_uri`` until Ctrl-C (or SIGTERM, SIGHUP), then stop the server.

    ``on_ready(address)`` runs once the server answers (it prints the links). True when the
    user stopped it; False when the server ended by itself first. Raises ``UIError`` when it
    does not start; a Ctrl-C while it starts stops it and returns True.
    """
    with _stop_signals_interrupt():
        try:
            with LocalUI(store_uri, port=port, timeout_s=timeout_s) as ui:
                on_ready(ui.address)
                assert ui.process is not None
                ui.process.wait()
                return False
        except KeyboardInterrupt:
            return True

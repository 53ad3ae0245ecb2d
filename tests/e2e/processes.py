"""Start and stop the servers the cluster tests need, touching no process they did not start.

Every helper here records the ids of the processes it started (and their descendants), and
stops exactly those: never ``ray stop`` or a ``pkill`` pattern, which would take down a
developer's own Ray or MLflow on the same machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(ready: Callable[[], bool], timeout: float, what: str, *,
               log: Path | None = None, interval: float = 0.5) -> None:
    """Poll ``ready`` until it is true; fail with the log's tail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(interval)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{what} not ready after {timeout:g} s\n{tail}")


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it, now."""
    try:
        root = psutil.Process(pid)
        return {pid, *(p.pid for p in root.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


def in_session(session_id: int) -> set[int]:
    """Processes of a session we created (``start_new_session``): they outlive their parent
    when it dies first, so the tree alone would miss them."""
    found = set()
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == session_id:
                found.add(proc.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def stop_pids(pids: Iterable[int], *, grace_s: float = 15.0) -> None:
    """SIGTERM these processes, then SIGKILL whichever is left after ``grace_s``."""
    procs = []
    for pid in set(pids):
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class MlflowServer:
    """``mlflow server`` on a backend store, reachable on ``host`` (this machine's address, so
    that Ray nodes could reach it too), with its artifacts proxied to a local directory."""

    def __init__(self, mlflow_bin: str, backend_uri: str, workdir: Path, host: str) -> None:
        self.port = free_port()
        self.host = host
        self.uri = f"http://{host}:{self.port}"
        self.log = workdir / "mlflow-server.log"
        allowed = ",".join(f"{h}:{self.port}" for h in {host, "127.0.0.1", "localhost"})
        cmd = [mlflow_bin, "server", "--backend-store-uri", backend_uri,
               "--artifacts-destination", str(workdir / "mlflow-artifacts"),
               "--host", "0.0.0.0", "--port", str(self.port), "--workers", "1",
               "--allowed-hosts", allowed]
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
        env.pop("MLFLOW_TRACKING_URI", None)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         cwd=workdir, start_new_session=True)

    def wait_ready(self, timeout: float = 120.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.proc.returncode}):\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            return http_ok(f"{self.uri}/health")

        wait_until(ready, timeout, "mlflow server", log=self.log)

    def stop(self) -> None:
        stop_pids(descendants(self.proc.pid) | in_session(self.proc.pid))


def _postgres_bin(name: str) -> str | None:
    for directory in (*os.environ.get("PATH", "").split(os.pathsep),
                      *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)):
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def postgres_available() -> bool:
    return all(_postgres_bin(n) for n in ("initdb", "pg_ctl", "createdb"))


class Postgres:
    """A throwaway PostgreSQL cluster in ``root``, on 127.0.0.1, owned by an unprivileged user.

    PostgreSQL refuses to run as root: when the tests run as root (CI containers), the data
    directory is given to ``nobody`` and every server command runs as that user.
    """

    user = "mlflow"
    database = "mlflow"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.port = free_port()
        self._as_user: dict[str, int] = {}
        if os.geteuid() == 0:
            import pwd

            nobody = pwd.getpwnam("nobody")
            self._as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid}
            root.chmod(0o755)
            os.chown(root, nobody.pw_uid, nobody.pw_gid)

    def _run(self, name: str, *args: str) -> None:
        binary = _postgres_bin(name)
        assert binary, f"{name} not found (Debian package postgresql)"
        subprocess.run([binary, *args], check=True, capture_output=True, text=True,
                       cwd=self.root, env={**os.environ, "LC_ALL": "C.UTF-8"},
                       **self._as_user)  # type: ignore[arg-type]

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust",
                  "--encoding=UTF8", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} "
                   f"-c unix_socket_directories={self.root} -c fsync=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                  self.database)

    @property
    def uri(self) -> str:
        """The SQLAlchemy URI MLflow's server takes (psycopg 3 driver)."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def postmaster_pid(self) -> int | None:
        pid_file = self.data / "postmaster.pid"
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        pid = self.postmaster_pid()
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        if pid is not None:  # pg_ctl failed or timed out: the postmaster and its children
            stop_pids(descendants(pid), grace_s=5)


def ray_workers(root_pid: int, name: str) -> list[psutil.Process]:
    """The live Ray worker processes below ``root_pid`` whose title names the actor class (or
    the actor's method being run): Ray titles a worker ``ray::Class`` when idle and
    ``ray::Class.method`` while it runs that method."""
    found = []
    for pid in descendants(root_pid):
        try:
            proc = psutil.Process(pid)
            title = proc.cmdline()
            if (proc.status() != psutil.STATUS_ZOMBIE and title
                    and title[0].split()[0].split(".")[0] == f"ray::{name}"):
                found.append(proc)
        except (psutil.Error, IndexError):
            continue
    return found


def process_title(proc: psutil.Process) -> str:
    """The process's title now (Ray's ``ray::Class.method``), or "" once it has gone."""
    try:
        cmdline = proc.cmdline()
        return cmdline[0] if cmdline else ""
    except psutil.Error:
        return ""

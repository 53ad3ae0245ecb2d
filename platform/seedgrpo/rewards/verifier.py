"""Time-bounded math-verify equivalence, safe from any thread and against hostile answers.

A ``Verifier`` owns one worker process (``_verify_worker``) and sends it one pair at a time. Each
check has a hard wall-clock bound: when the worker does not answer in ``timeout_s`` it is killed
and restarted, and the pair scores "not equivalent". Input that could only be pathological
(longer than ``MAX_ANSWER_CHARS`` or nested deeper than ``MAX_BRACE_DEPTH``) is refused before
it reaches the parser. Every such outcome increments a counter, so a scorer can log how often
rewards failed closed instead of hiding it (STACK_NOTES, "math-verify").

Checks are serialised by a lock: the time bound holds per check, so a batch of n hostile answers
can take n bounds. Scorers that need throughput run several verifiers (one per process).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import asdict, dataclass

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_BRACE_DEPTH",
    "VerifierCounters",
    "VerifyError",
    "Verifier",
    "default_verifier",
]

logger = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 2_000  # the longest gold answer in the five benchmarks is under 300 chars
MAX_BRACE_DEPTH = 40  # real answers nest a few levels; deeper only stalls the parser
_STARTUP_TIMEOUT_S = 60.0  # importing math-verify and sympy on a busy 2-core machine


class VerifyError(RuntimeError):
    """Raised instead of failing closed when a ``Verifier`` is built with ``raise_on_error``."""


@dataclass
class VerifierCounters:
    """How every check ended; logged by scorers so silent zeros stay visible."""

    checks: int = 0
    equivalent: int = 0
    unparsed: int = 0  # math-verify found no expression in gold or prediction
    errors: int = 0  # math-verify raised (its own timeouts included), or the worker failed
    timeouts: int = 0  # the hard bound fired and the worker was restarted
    refused: int = 0  # too long or too deeply nested to be a real answer
    worker_starts: int = 0


def _brace_depth(text: str) -> int:
    depth = best = 0
    for ch in text:
        if ch == "{":
            depth += 1
            best = max(best, depth)
        elif ch == "}":
            depth = max(0, depth - 1)
    return best


class _WorkerFailed(Exception):
    """The worker could not start, died, or said something unreadable."""


class _Worker:
    """One worker process and a line reader on its raw stdout descriptor.

    Reading the descriptor with ``os.read`` into our own buffer (not a buffered file object)
    keeps ``select`` truthful: no line can hide in a Python-side buffer.
    """

    def __init__(self) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "seedgrpo.rewards._verify_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
        )
        self._buffer = b""

    def send(self, request: dict) -> None:
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError) as err:
            raise _WorkerFailed(f"the worker exited ({self.stderr_tail()})") from err

    def read(self, timeout_s: float) -> dict | None:
        """The next reply, or None when none arrives in time; ``_WorkerFailed`` on EOF/garbage."""
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise _WorkerFailed(f"the worker exited ({self.stderr_tail()})")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except ValueError as err:
            raise _WorkerFailed(f"unreadable reply {line[:80]!r}") from err
        if not isinstance(reply, dict):
            raise _WorkerFailed(f"unreadable reply {line[:80]!r}")
        return reply

    def stderr_tail(self) -> str:
        try:
            self.stderr.seek(0)
            text = self.stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return "no stderr"
        return text.splitlines()[-1][:300] if text else "no stderr"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.stderr.close()

    def close(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


_instances: weakref.WeakSet[Verifier] = weakref.WeakSet()


class Verifier:
    """Equivalence of two final answers under math-verify, bounded in time.

    >>> v = Verifier()
    >>> v.equivalent("\\\\frac{1}{2}", "0.5"), v.equivalent("025", "25"), v.equivalent("5", "6")
    (True, True, False)
    >>> v.close()
    """

    def __init__(self, *, timeout_s: float = 5.0, raise_on_error: bool = False) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s is {timeout_s}; it must be > 0")
        self.timeout_s = float(timeout_s)
        self.raise_on_error = raise_on_error
        self.counters = VerifierCounters()
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        _instances.add(self)

    def _after_fork(self) -> None:
        """In a forked child: fresh lock, no worker (the pipes belong to the parent)."""
        self._lock = threading.Lock()
        self._worker = None

    # -- worker lifecycle -------------------------------------------------------------------
    def _ensure_worker(self) -> _Worker:
        if self._worker is not None and self._worker.proc.poll() is None:
            return self._worker
        if self._worker is not None:
            self._worker.kill()
        worker = _Worker()
        self.counters.worker_starts += 1
        try:
            ready = worker.read(_STARTUP_TIMEOUT_S)
        except _WorkerFailed:
            ready = None
        if not ready or not ready.get("ready"):
            reason = worker.stderr_tail()
            worker.kill()
            raise _WorkerFailed(
                f"the math-verify worker did not start ({reason}); check that math-verify is "
                f"installed: {sys.executable} -m seedgrpo.rewards._verify_worker"
            )
        self._worker = worker
        return worker

    def _drop_worker(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker = None

    def close(self) -> None:
        """Stop the worker process (a new one starts on the next check)."""
        with self._lock:
            if self._worker is not None:
                self._worker.close()
                self._worker = None

    # -- checks -----------------------------------------------------------------------------
    def _fail(self, counter: str, message: str) -> bool:
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        if self.raise_on_error:
            raise VerifyError(message)
        level = logging.WARNING if counter == "errors" else logging.DEBUG
        logger.log(level, "verify failed closed (%s): %s", counter, message)
        return False

    def equivalent(self, gold: str, pred: str) -> bool:
        """True when ``pred`` states the same mathematical answer as ``gold`` (gold first)."""
        with self._lock:
            self.counters.checks += 1
            for name, text in (("gold", gold), ("pred", pred)):
                if len(text) > MAX_ANSWER_CHARS:
                    return self._fail("refused", f"{name} has {len(text)} chars "
                                      f"(limit {MAX_ANSWER_CHARS})")
                if _brace_depth(text) > MAX_BRACE_DEPTH:
                    return self._fail("refused", f"{name} nests braces deeper than "
                                      f"{MAX_BRACE_DEPTH}")
            inner_timeout = max(1, int(self.timeout_s / 3))
            try:
                worker = self._ensure_worker()
                worker.send({"gold": gold, "pred": pred, "timeout_s": inner_timeout})
                reply = worker.read(self.timeout_s)
            except _WorkerFailed as err:
                self._drop_worker()
                return self._fail("errors", str(err))
            if reply is None:
                self._drop_worker()
                return self._fail("timeouts", f"no verdict within {self.timeout_s:.1f} s")
            status = reply.get("status")
            if status == "error":
                return self._fail("errors", str(reply.get("detail")))
            if status == "unparsed":
                self.counters.unparsed += 1
                return False
            if reply.get("equivalent") is True:
                self.counters.equivalent += 1
                return True
            return False

    def counter_values(self) -> dict[str, int]:
        """The counters as a plain dict, for logging."""
        return asdict(self.counters)


_default: Verifier | None = None
_default_lock = threading.Lock()


def default_verifier() -> Verifier:
    """The process-wide verifier that ``math_reward`` and ``cluster_answers`` share."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Verifier()
            atexit.register(_default.close)
        return _default


def _reset_after_fork() -> None:
    global _default_lock
    _default_lock = threading.Lock()
    for verifier in list(_instances):
        verifier._after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)

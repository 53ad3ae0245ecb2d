"""Time-bounded math-verify equivalence, safe from any thread and against hostile answers.

A ``Verifier`` owns one worker process (``_verify_worker``) and sends it one pair at a time. Each
check has a hard wall-clock bound: when the worker does not answer in ``timeout_s`` it is killed
and restarted, and the pair scores "not equivalent". Input that could only be pathological
(longer than ``MAX_ANSWER_CHARS`` or nested deeper than ``MAX_BRACE_DEPTH``) is refused before
it reaches the parser. Every such outcome increments a counter, so a scorer can log how often
rewards failed closed instead of hiding it (STACK_NOTES, "math-verify").
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import selectors
import subprocess
import sys
import threading
import time
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
    errors: int = 0  # math-verify raised (its own timeouts included)
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


class Verifier:
    """Equivalence of two final answers under math-verify, bounded in time.

    >>> v = Verifier()
    >>> v.equivalent("\\\\frac{1}{2}", "0.5"), v.equivalent("025", "25"), v.equivalent("5", "6")
    (True, True, False)
    >>> v.close()
    """

    def __init__(self, *, timeout_s: float = 5.0, raise_on_error: bool = False) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s is {timeout_s}; it must be > 0")
        self.timeout_s = float(timeout_s)
        self.raise_on_error = raise_on_error
        self.counters = VerifierCounters()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._owner_pid = os.getpid()

    # -- worker lifecycle -------------------------------------------------------------------
    def _start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "seedgrpo.rewards._verify_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.counters.worker_starts += 1
        line = self._read_line(proc, _STARTUP_TIMEOUT_S)
        if line is None or not json.loads(line).get("ready"):
            proc.kill()
            raise RuntimeError(
                "the math-verify worker did not start within "
                f"{_STARTUP_TIMEOUT_S:.0f} s; check that math-verify is installed "
                f"({sys.executable} -m seedgrpo.rewards._verify_worker)"
            )
        return proc

    def _worker(self) -> subprocess.Popen[str]:
        if self._owner_pid != os.getpid():  # forked: the pipes belong to the parent
            self._proc, self._owner_pid = None, os.getpid()
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        return self._proc

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def close(self) -> None:
        """Stop the worker process (it restarts on the next check)."""
        with self._lock:
            if self._proc is not None and self._owner_pid == os.getpid():
                self._proc.stdin.close()  # type: ignore[union-attr]
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._kill()
            self._proc = None

    @staticmethod
    def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str | None:
        """One line from the worker, or None when none arrives in ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
            while (left := deadline - time.monotonic()) > 0:
                if sel.select(left):
                    line = proc.stdout.readline()  # type: ignore[union-attr]
                    return line or None  # "" means the worker died
        return None

    # -- checks -----------------------------------------------------------------------------
    def _fail(self, counter: str, message: str) -> bool:
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        if self.raise_on_error:
            raise VerifyError(message)
        logger.debug("verify failed closed (%s): %s", counter, message)
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
            proc = self._worker()
            inner_timeout = max(1, int(self.timeout_s / 3))
            request = {"gold": gold, "pred": pred, "timeout_s": inner_timeout}
            try:
                proc.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            except BrokenPipeError:
                self._kill()
                return self._fail("errors", "the math-verify worker exited unexpectedly")
            line = self._read_line(proc, self.timeout_s)
            if line is None:
                self._kill()
                return self._fail("timeouts", f"no verdict within {self.timeout_s:.1f} s")
            reply = json.loads(line)
            if reply["status"] == "error":
                return self._fail("errors", reply["detail"])
            if reply["status"] == "unparsed":
                self.counters.unparsed += 1
                return False
            if reply["equivalent"]:
                self.counters.equivalent += 1
            return bool(reply["equivalent"])

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

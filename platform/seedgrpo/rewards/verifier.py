"""Time-bounded math-verify equivalence, safe from any thread and against hostile answers.

A ``Verifier`` owns one worker process (``_verify_worker``) and sends it one pair at a time. Each
check has a hard wall-clock bound: when the worker does not answer in ``timeout_s`` it is killed
and restarted, and the pair scores "not equivalent". Input that could only be pathological
(longer than ``MAX_ANSWER_CHARS`` or nested deeper than ``MAX_BRACE_DEPTH``) is refused before
it reaches the parser. Every such outcome increments a counter, so a scorer can log how often
rewards failed closed instead of hiding it (docs/PLATFORM_NOTES.md, "math-verify").

Checks are serialised by a lock: the time bound holds per check, so a batch of n hostile answers
can take n bounds. Scorers that need throughput run several verifiers (one per process). Repeats
are cheap: the worker parses each distinct text once, verdicts are cached per (gold, pred), and a
text whose parse failed fails closed at once from then on. Callers with a budget (clustering)
shorten a call's bound with ``timeout_s``.
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
from collections import OrderedDict
from dataclasses import asdict, dataclass

from seedgrpo.algorithms.clustering import AnswerEquivalence

__all__ = [
    "CACHE_SIZE",
    "GRADING_TIMEOUT_S",
    "TRAINING_TIMEOUT_S",
    "MAX_ANSWER_CHARS",
    "MIN_CALL_S",
    "MAX_BRACE_DEPTH",
    "VerifierCounters",
    "VerifyError",
    "Verifier",
    "default_verifier",
]

logger = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 2_000  # the longest gold answer in the five benchmarks is under 300 chars
MAX_BRACE_DEPTH = 40  # real answers nest a few levels; deeper only stalls the parser
MIN_CALL_S = 1.5  # a budget-shortened bound still lets math-verify's own 1 s alarm fire first
CACHE_SIZE = 4_096  # remembered verdicts and unparseable texts (each: a pair of short strings)
# the hard bound of one check. Training answers are short and a step waits on every group;
# benchmark answers are longer (math-verify's own alarm is 3 s there) and a slow parse must not
# count as a wrong answer, so grading allows twice as long
TRAINING_TIMEOUT_S = 5.0
GRADING_TIMEOUT_S = 10.0
_STARTUP_TIMEOUT_S = 60.0  # importing math-verify and sympy on a busy 2-core machine


class VerifyError(RuntimeError):
    """Raised instead of failing closed when a ``Verifier`` is built with ``raise_on_error``."""


@dataclass
class VerifierCounters:
    """How every check ended; logged by scorers so silent zeros stay visible."""

    checks: int = 0
    unparsed: int = 0  # math-verify found no expression in gold or prediction
    errors: int = 0  # math-verify raised (its own timeouts included), or the worker failed
    timeouts: int = 0  # the hard bound fired and the worker was restarted
    refused: int = 0  # too long or too deeply nested to be a real answer
    worker_starts: int = 0
    parses: int = 0  # texts the worker parsed (each distinct text once per worker)
    cache_hits: int = 0  # checks answered from the verdict cache or the failed-text memory


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

    def __init__(self, *, timeout_s: float = TRAINING_TIMEOUT_S, raise_on_error: bool = False
                 ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s is {timeout_s}; it must be > 0")
        self.timeout_s = float(timeout_s)
        self.raise_on_error = raise_on_error
        self.counters = VerifierCounters()
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        # (gold, pred) -> (verdict, the counter of a failure to replay)
        self._verdicts: OrderedDict[tuple[str, str], tuple[bool | None, str | None]] = (
            OrderedDict())
        self._failed: OrderedDict[str, str] = OrderedDict()  # text -> why it did not parse
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
    def _fail(self, counter: str, message: str, *, replay: bool = False) -> None:
        """Count a check that failed closed; raise instead under ``raise_on_error``. A replayed
        failure (a cached verdict, a remembered text) counts again but logs only at DEBUG."""
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        if self.raise_on_error:
            raise VerifyError(message)
        level = logging.WARNING if counter == "errors" and not replay else logging.DEBUG
        logger.log(level, "verify failed closed (%s): %s", counter, message)

    def _bound(self, timeout_s: float | None) -> float:
        """This call's hard bound: ``timeout_s`` when given (a caller's budget), at most ours."""
        if timeout_s is None:
            return self.timeout_s
        return min(self.timeout_s, max(MIN_CALL_S, float(timeout_s)))

    def _refusal(self, texts: dict[str, str]) -> str | None:
        for name, text in texts.items():
            if len(text) > MAX_ANSWER_CHARS:
                return f"{name} has {len(text)} chars (limit {MAX_ANSWER_CHARS})"
            if _brace_depth(text) > MAX_BRACE_DEPTH:
                return f"{name} nests braces deeper than {MAX_BRACE_DEPTH}"
        return None

    def _remember_failed(self, text: str, reason: str) -> None:
        if len(self._failed) >= CACHE_SIZE:
            self._failed.popitem(last=False)
        self._failed[text] = reason

    def _ask(self, request: dict, texts: dict[str, str], bound: float
             ) -> tuple[dict | None, str | None]:
        """The worker's reply to ``request``, or None after counting (and maybe raising) why
        there is none; with it, the counter of a failure worth caching (math-verify's own
        verdict on these texts, not a crashed worker or a shortened bound). Texts that could
        not be parsed are remembered, so they never cost a parse again."""
        for text in texts.values():
            if text in self._failed:
                self.counters.cache_hits += 1
                self._fail("errors", f"{self._failed[text]} (remembered)", replay=True)
                return None, None
        refusal = self._refusal(texts)
        if refusal is not None:
            self._fail("refused", refusal)
            return None, None
        try:
            worker = self._ensure_worker()
            worker.send({**request, "timeout_s": max(1, int(bound / 3))})
            reply = worker.read(bound)
        except _WorkerFailed as err:
            self._drop_worker()
            self._fail("errors", str(err))
            return None, None
        full_bound = bound >= self.timeout_s
        if reply is None:
            self._drop_worker()
            if full_bound and len(texts) == 1:  # a parse request: only this text is to blame
                self._remember_failed(next(iter(texts.values())), "parse timed out")
            self._fail("timeouts", f"no verdict within {bound:.1f} s")
            return None, "timeouts" if full_bound else None
        self.counters.parses += int(reply.get("parses", 0))
        status = reply.get("status")
        if status == "error":
            failed = reply.get("failed")
            if failed in texts:
                self._remember_failed(texts[failed], str(reply.get("detail")))
            self._fail("errors", str(reply.get("detail")))
            return None, "errors"
        if status == "unparsed":
            self.counters.unparsed += 1
            return None, "unparsed"
        return reply, None

    def parse(self, text: str, *, timeout_s: float | None = None) -> bool:
        """Parse ``text`` in the worker, which keeps the result for later checks; True when
        math-verify found an expression. ``timeout_s`` shortens the hard bound (a caller's
        remaining budget; never below ``MIN_CALL_S``)."""
        with self._lock:
            reply, _ = self._ask({"op": "parse", "text": text}, {"text": text},
                                 self._bound(timeout_s))
            return reply is not None

    def compare(self, gold: str, pred: str, *, timeout_s: float | None = None) -> bool | None:
        """True or False when math-verify decided whether ``pred`` states ``gold`` (gold
        first); None when it could not (unparsed, refused, error, timeout). Outcomes are cached
        per (gold, pred), so a repeated answer costs no second check; a replayed failure counts
        in its counter again, since the README reads them as answers that were not judged.
        ``timeout_s`` as in ``parse``."""
        with self._lock:
            self.counters.checks += 1
            key = (gold, pred)
            if key in self._verdicts:
                self._verdicts.move_to_end(key)
                self.counters.cache_hits += 1
                verdict, counter = self._verdicts[key]
                if counter == "unparsed":
                    self.counters.unparsed += 1
                elif counter is not None:
                    self._fail(counter, "the same pair failed before", replay=True)
                return verdict
            reply, counter = self._ask({"op": "verify", "gold": gold, "pred": pred},
                                       {"gold": gold, "pred": pred}, self._bound(timeout_s))
            verdict = None if reply is None else reply.get("equivalent") is True
            if verdict is not None or counter is not None:
                if len(self._verdicts) >= CACHE_SIZE:
                    self._verdicts.popitem(last=False)
                self._verdicts[key] = (verdict, counter)
            return verdict

    def equivalent(self, gold: str, pred: str) -> bool:
        """True when ``pred`` states the same mathematical answer as ``gold`` (gold first)."""
        return self.compare(gold, pred) is True

    def answer_equivalence(self) -> AnswerEquivalence:
        """This verifier as the equivalence test of ``math_verify`` clustering: each call's hard
        bound is cut to the seconds left of the group's budget (never below ``MIN_CALL_S``)."""
        return AnswerEquivalence(
            parse=lambda text, seconds_left: self.parse(text, timeout_s=seconds_left),
            equivalent=lambda rep, new, seconds_left: self.compare(rep, new,
                                                                  timeout_s=seconds_left),
        )

    def counter_values(self) -> dict[str, int]:
        """The counters as a plain dict, for logging."""
        return asdict(self.counters)


_default: Verifier | None = None
_default_lock = threading.Lock()


def default_verifier() -> Verifier:
    """The process-wide verifier ``math_reward`` uses when it is given none."""
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

"""Ctrl-C and SIGTERM during a sweep: one graceful stop, recorded, for both signals.

Tune catches SIGINT inside ``fit()`` itself: it saves its experiment state, stops the running
trials and returns as if the sweep had ended, with each stopped trial TERMINATED like a finished
one. ``ray.init`` turns SIGTERM into ``sys.exit`` (and Ray's native handler prints a stack dump
first), which would unwind the sweep as a failure. ``StopSignals`` takes both signals while the
sweep runs: the first one is remembered and handed to Tune's own stop (so a SIGTERM from a job
scheduler stops the sweep exactly as Ctrl-C does); a second one, from a user who does not want
to wait for the last checkpoint, raises ``KeyboardInterrupt`` at once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType, TracebackType
from typing import Any

__all__ = ["StopSignals", "exit_status"]

logger = logging.getLogger(__name__)

CAUGHT = (signal.SIGINT, signal.SIGTERM)
# Tune's own lines on a stop name Ctrl-C only and tell to resume with Tuner.restore(); the
# sweep says what happened and prints its own resume command instead
_TUNE_STOP_LINES = ("Stop signal received", "Experiment has been interrupted")


def _not_tune_stop_line(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_TUNE_STOP_LINES)


def exit_status(signum: int) -> int:
    """The shell's convention for a process ended by a signal: 128 + its number.

    >>> exit_status(signal.SIGINT), exit_status(signal.SIGTERM)
    (130, 143)
    """
    return 128 + int(signum)


class StopSignals:
    """SIGINT and SIGTERM handlers for the time of a ``with`` block (main thread only).

    ``received`` is the first signal that came (None: none), ``received_at`` its wall-clock
    time. ``tune_callback()`` is a Tune callback that, once Tune has installed its own SIGINT
    handler, puts this one in front of it and calls it on the first signal.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.received_at: float | None = None
        self._saved: dict[int, Any] = {}
        self._tune_stop: Any = None  # Tune's SIGINT handler, while fit() runs

    # -- the handlers -------------------------------------------------------------------------
    def __enter__(self) -> StopSignals:
        logging.getLogger("ray.tune.tune").addFilter(_not_tune_stop_line)
        if threading.current_thread() is threading.main_thread():
            for signum in CAUGHT:
                self._saved[signum] = signal.getsignal(signum)
                signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        self._saved.clear()
        self._tune_stop = None
        logging.getLogger("ray.tune.tune").removeFilter(_not_tune_stop_line)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None or self._tune_stop is None:
            # a second signal, or no Tune loop to stop gracefully: stop now
            self.received = self.received or signum
            self.received_at = self.received_at or time.time()
            raise KeyboardInterrupt
        self.received, self.received_at = signum, time.time()
        logger.warning("%s received: the sweep saves its state and stops its trials (send it "
                       "again to stop at once)", signal.Signals(signum).name)
        tune_stop, self._tune_stop = self._tune_stop, None
        tune_stop(signal.SIGINT, frame)  # Tune saves its state, stops the trials, returns
        # Tune's handler puts back the one it found (this one) for SIGINT; SIGTERM is still ours

    def _adopt_tune_handler(self) -> None:
        """Tune has just installed its SIGINT handler: keep it to call, and take SIGINT back."""
        if not self._saved:  # not installed (another thread than the main one)
            return
        current = signal.getsignal(signal.SIGINT)
        if current is not self._handle and callable(current):
            self._tune_stop = current
            signal.signal(signal.SIGINT, self._handle)

    def tune_callback(self) -> Any:
        """A Tune callback whose ``setup`` (called after Tune installed its SIGINT handler,
        before the first trial starts) hands Tune's handler to this object."""
        from ray.tune import Callback

        stop = self

        class AdoptTuneStop(Callback):  # type: ignore[misc]
            def setup(self, **info: Any) -> None:
                stop._adopt_tune_handler()

        return AdoptTuneStop()

"""``StopSignals``: Ctrl-C and SIGTERM become one graceful stop, recorded; a second stops now.

Real signals sent to this process (handlers run in the main thread, as in the CLI); Tune's own
SIGINT handler is stood in for by a function that records its call, installed the way Tune
installs it (after ``StopSignals``, keeping the handler it found).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from seedgrpo.sweep.stop_signals import StopSignals


def _deliver(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # the handler runs at the next bytecode boundary


def _install_tune_like_handler(calls: list[int]) -> None:
    """What Tune's ``_setup_signal_catching`` does: its handler, which puts back the one it
    found after the first signal."""
    found = signal.getsignal(signal.SIGINT)

    def tune_stop(signum: int, frame: object) -> None:
        calls.append(signum)
        signal.signal(signal.SIGINT, found)

    signal.signal(signal.SIGINT, tune_stop)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_is_recorded_and_handed_to_tunes_stop(signum: int) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    calls: list[int] = []
    with StopSignals() as stop:
        _install_tune_like_handler(calls)
        stop._adopt_tune_handler()  # what the Tune callback's setup does
        _deliver(signum)
        assert stop.received == signum and stop.received_at is not None
        assert calls == [signal.SIGINT]  # Tune's graceful stop, for SIGTERM too
        with pytest.raises(KeyboardInterrupt):  # a second one: stop at once
            _deliver(signal.SIGINT)
        assert stop.received == signum
    assert {s: signal.getsignal(s) for s in before} == before


def test_without_tune_running_a_signal_stops_at_once() -> None:
    with StopSignals() as stop, pytest.raises(KeyboardInterrupt):
        _deliver(signal.SIGTERM)
    assert stop.received == signal.SIGTERM

"""The sweep's console: one row per trial, kept current, instead of Tune's wall of text.

On a terminal the table is redrawn in place at most every ``refresh_s`` seconds (and at every
status change); elsewhere (CI logs, a file) each event is one line, so logs stay readable.
Rendering is a pure function of the rows, so what the user sees is tested exactly.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TextIO

__all__ = ["ConsoleRow", "SweepConsole", "render_table"]


@dataclass
class ConsoleRow:
    """What the console shows of one trial."""

    name: str
    modulation: str
    alpha: float | None  # None: modulation `none` ignores it
    group_size: int
    steps: int
    status: str = "PENDING"
    step: int = 0
    reward: float | None = None
    metric: float | None = None
    note: str = ""


def _num(value: float | None, fmt: str = "{:.3f}") -> str:
    return "-" if value is None else fmt.format(value)


def render_table(rows: Sequence[ConsoleRow], metric: str) -> str:
    """The table: trial, status, modulation, alpha, G, step, reward and the ranking metric.

    >>> print(render_table([ConsoleRow("linear-a0.5", "linear", 0.5, 4, 8, "RUNNING", 3, 0.25)],
    ...                    "eval/avg/pass_at_1"))
    trial        status   f       alpha  G  step  reward  eval/avg/pass_at_1
    linear-a0.5  RUNNING  linear  0.5    4  3/8   0.250   -
    """
    header = ["trial", "status", "f", "alpha", "G", "step", "reward", metric]
    body = [[r.name, r.status + (f" ({r.note})" if r.note else ""), r.modulation,
             "-" if r.alpha is None else f"{r.alpha:.3g}", str(r.group_size),
             f"{r.step}/{r.steps}", _num(r.reward), _num(r.metric)] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(header)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *body]]
    return "\n".join(lines)


def _tune_callback_base() -> type:
    from ray.tune import Callback

    return Callback


class SweepConsole(_tune_callback_base()):  # type: ignore[misc]
    """A Tune callback that keeps the trial table current."""

    def __init__(self, describe: Callable[[Any], ConsoleRow], metric: str, *,
                 stream: TextIO | None = None, refresh_s: float = 5.0,
                 on_end: Callable[[Any, str], None] | None = None) -> None:
        self.describe = describe  # Tune trial -> a fresh row
        self.metric = metric
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.refresh_s = refresh_s
        self.on_end = on_end or (lambda trial, status: None)
        self.rows: dict[str, ConsoleRow] = {}
        self._drawn_lines = 0
        self._last_draw = 0.0

    # -- rows -----------------------------------------------------------------------------
    def _row(self, trial: Any) -> ConsoleRow:
        if trial.trial_id not in self.rows:
            self.rows[trial.trial_id] = self.describe(trial)
        return self.rows[trial.trial_id]

    def _event(self, trial: Any, status: str, note: str = "") -> None:
        row = self._row(trial)
        row.status, row.note = status, note
        self._show(row, force=True)

    def _show(self, row: ConsoleRow, *, force: bool) -> None:
        if self.live:
            now = time.monotonic()
            if force or now - self._last_draw >= self.refresh_s:
                self._redraw()
                self._last_draw = now
            return
        parts = [f"[{time.strftime('%H:%M:%S')}] {row.name}: {row.status}",
                 f"step {row.step}/{row.steps}"]
        if row.reward is not None:
            parts.append(f"reward {row.reward:.3f}")
        if row.metric is not None:
            parts.append(f"{self.metric} {row.metric:.3f}")
        if row.note:
            parts.append(row.note)
        print("  ".join(parts), file=self.stream, flush=True)

    def _redraw(self) -> None:
        text = render_table(list(self.rows.values()), self.metric)
        if self._drawn_lines:  # back to the table's first line, clear to the end
            self.stream.write(f"\x1b[{self._drawn_lines}F\x1b[J")
        self.stream.write(text + "\n")
        self.stream.flush()
        self._drawn_lines = text.count("\n") + 1

    def print_table(self) -> None:
        """The final table (always printed, also when events were printed as lines)."""
        if self.live and self._drawn_lines:
            self._redraw()
        else:
            print(render_table(list(self.rows.values()), self.metric), file=self.stream,
                  flush=True)

    def add_result(self, metrics: dict[str, Any], config: dict[str, Any], *,
                   failed: bool) -> None:
        """A trial known only from Tune's results (finished before a resume): add its row."""
        trial_id = metrics.get("trial_id")
        if not trial_id or trial_id in self.rows:
            return
        trial = SimpleNamespace(trial_id=trial_id, config=config)
        row = self._row(trial)
        row.step = int(metrics.get("step", 0))
        row.reward = metrics.get("train/reward_mean")
        row.metric = metrics.get(self.metric)
        row.status = "ERROR" if failed else ("DONE" if row.step >= row.steps else "STOPPED")
        row.note = "before the resume"

    # -- Tune's callback hooks ------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._event(trial, "RUNNING")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        row = self._row(trial)
        row.status = "RUNNING"
        row.step = int(result.get("step", row.step))
        if "train/reward_mean" in result:
            row.reward = float(result["train/reward_mean"])
        if self.metric in result:
            row.metric = float(result[self.metric])
        if result.get("seedgrpo/reused"):
            row.note = "finished earlier"
        self._show(row, force=False)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        row = self._row(trial)
        stopped = row.step < row.steps
        self._event(trial, "STOPPED" if stopped else "DONE",
                    "stopped early by ASHA" if stopped else row.note)
        self.on_end(trial, "STOPPED" if stopped else "DONE")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        where = getattr(trial, "error_file", None) or getattr(trial, "path", "")
        self._event(trial, "ERROR", f"see {where}" if where else "")
        self.on_end(trial, "ERROR")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._event(trial, "RETRYING", "from its last checkpoint")

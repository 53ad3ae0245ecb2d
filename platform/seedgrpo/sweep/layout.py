"""Where a sweep keeps its files, and the record that lets ``--resume`` and the report find it.

Layout under ``tracking.output_dir/<experiment>/<sweep id>/``::

    sweep.json        what was run: experiment file, overrides, config fingerprint, MLflow ids
    tune/             Ray Tune's experiment state (what Tuner.restore reads)
    trials/<name>/    one trial's checkpoints, eval samples, per-prompt rows, MLflow run id
    report/           the sweep report (tables, plots)

``<experiment>/latest`` names the newest sweep, so ``--resume`` and ``seedgrpo-report`` need
only the experiment file. The sweep id is the start time, so sweeps of one file never collide.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SweepDir", "SweepRecord", "config_fingerprint", "SweepNotFound", "read_json",
           "write_json"]

RECORD_FILE = "sweep.json"
LATEST_FILE = "latest"


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when it is missing or torn (a process killed mid-write)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


class SweepNotFound(Exception):
    """No sweep where one was expected; the message says where it looked and what to do."""


def config_fingerprint(config: dict[str, Any]) -> str:
    """A short hash of a resolved config: a resumed sweep must be the sweep that was started."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class SweepRecord:
    """What ``sweep.json`` holds."""

    experiment_file: str
    overrides: list[str]
    fingerprint: str
    experiment_name: str
    mlflow_uri: str | None
    metric: str = "eval/avg/pass_at_1"  # tune.metric: what ranks the trials
    mode: str = "max"
    started: float = field(default_factory=time.time)
    parent_run_id: str | None = None
    status: str = "RUNNING"  # RUNNING | FINISHED | FAILED | INTERRUPTED
    best_trial: str | None = None


@dataclass(frozen=True)
class SweepDir:
    """The directory of one sweep."""

    root: Path

    @property
    def tune_dir(self) -> Path:
        return self.root / "tune"

    @property
    def trials_dir(self) -> Path:
        return self.root / "trials"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    def trial_dir(self, name: str) -> Path:
        return self.trials_dir / name

    # -- the record ---------------------------------------------------------------------------
    def read(self) -> SweepRecord:
        data = read_json(self.root / RECORD_FILE)
        if data is None:
            raise SweepNotFound(f"{self.root} is not a sweep directory (no readable "
                                f"{RECORD_FILE})")
        return SweepRecord(**data)

    def write(self, record: SweepRecord) -> None:
        write_json(self.root / RECORD_FILE, asdict(record))

    # -- finding sweeps -----------------------------------------------------------------------
    @classmethod
    def new(cls, experiment_root: Path) -> SweepDir:
        """A fresh sweep directory under ``experiment_root``, which then names it as latest."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        root = experiment_root / stamp
        n = 1
        while root.exists():  # two sweeps in one second
            n += 1
            root = experiment_root / f"{stamp}-{n}"
        root.mkdir(parents=True)
        tmp = experiment_root / (LATEST_FILE + ".tmp")
        tmp.write_text(root.name)
        os.replace(tmp, experiment_root / LATEST_FILE)
        return cls(root.resolve())

    @classmethod
    def latest(cls, experiment_root: Path) -> SweepDir:
        pointer = experiment_root / LATEST_FILE
        if not pointer.is_file():
            raise SweepNotFound(f"no sweep of this experiment in {experiment_root} (no "
                                f"'{LATEST_FILE}' file there); start one without --resume, or "
                                "give the sweep directory")
        return cls((experiment_root / pointer.read_text().strip()).resolve())

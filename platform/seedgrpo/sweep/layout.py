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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seedgrpo.fileio import atomic_write_json, atomic_write_text, read_json
from seedgrpo.redact import redact_text, redact_uri

__all__ = ["SweepDir", "SweepRecord", "config_fingerprint", "fingerprint_matches",
           "SweepNotFound", "PathOutsideParent", "child_path", "read_json", "write_json",
           "LOCATION_SETTINGS"]

RECORD_FILE = "sweep.json"
LATEST_FILE = "latest"


def write_json(path: Path, data: Any) -> None:
    """Write atomically and durably: a reader, even after a power cut, sees the old file or the
    new one, never half of one."""
    atomic_write_json(path, data)


class SweepNotFound(Exception):
    """No sweep where one was expected; the message says where it looked and what to do."""


class PathOutsideParent(ValueError):
    """A name that would place a file outside the directory meant to hold it."""


def child_path(parent: Path, name: str, what: str) -> Path:
    """``parent / name``, refused unless it stays inside ``parent`` (one level, no ``..``, no
    absolute name, no symlink out): names come from configs and records, not from us.

    >>> child_path(Path("/runs/x/trials"), "linear-a0.5", "trial").as_posix()
    '/runs/x/trials/linear-a0.5'
    >>> try:
    ...     child_path(Path("/runs/x/trials"), "../../etc", "trial")
    ... except PathOutsideParent as err:
    ...     print(str(err)[:61])
    trial name '../../etc' would be a path outside /runs/x/trials
    """
    problem = not name or name in (".", "..") or "/" in name or "\0" in name
    path = parent / name
    if not problem:
        base = parent.resolve()
        problem = not path.resolve().is_relative_to(base) or path.resolve() == base
    if problem:
        raise PathOutsideParent(f"{what} name {name!r} would be a path outside {parent}; a name "
                                "must be one plain directory name (no '/' and not '..')")
    return path


# where things are kept, not what a trial is: a resumed sweep may move them (a new tracking
# password, a renamed output mount, another model cache) and still be the same sweep
LOCATION_SETTINGS = (("tracking", "mlflow_uri"), ("tracking", "output_dir"),
                     ("model", "cache_dir"))


def _without_locations(config: dict[str, Any]) -> dict[str, Any]:
    out = dict(config)
    for section, key in LOCATION_SETTINGS:
        if isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items() if k != key}
    return out


def _hash(config: dict[str, Any]) -> str:
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_fingerprint(config: dict[str, Any]) -> str:
    """A short hash of a resolved config without its locations (``LOCATION_SETTINGS``): a
    resumed sweep must run the trials that were started, wherever it now logs and stores them.

    >>> a = {"tracking": {"mlflow_uri": "http://u:old@h", "output_dir": "runs"}, "x": 1}
    >>> b = {"tracking": {"mlflow_uri": "http://u:new@h", "output_dir": "/mnt/runs"}, "x": 1}
    >>> config_fingerprint(a) == config_fingerprint(b)
    True
    >>> config_fingerprint({**a, "x": 2}) == config_fingerprint(a)
    False
    """
    return _hash(_without_locations(config))


def fingerprint_matches(recorded: str, config: dict[str, Any]) -> bool:
    """Whether ``config`` is the config of a sweep recorded with ``recorded``. Older sweeps
    still match: one started before locations were left out (its fingerprint hashed the whole
    config), and one started before a config key was renamed (it hashed the old spelling:
    ``config.renamed_keys.with_old_spellings``)."""
    from seedgrpo.config.renamed_keys import with_old_spellings

    old = with_old_spellings(config)
    return recorded in (config_fingerprint(config), _hash(config), config_fingerprint(old),
                        _hash(old))


@dataclass
class SweepRecord:
    """What ``sweep.json`` holds.

    In memory ``mlflow_uri`` is the live URI (with its password, to connect); ``SweepDir.write``
    stores it redacted, and a resumed sweep or a report takes the secret from its own config or
    environment again (``seedgrpo.redact.live_tracking_uri``).
    """

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
        """The directory of trial ``name``; refused (``PathOutsideParent``) outside trials/."""
        return child_path(self.trials_dir, name, "trial")

    # -- the record ---------------------------------------------------------------------------
    def read(self) -> SweepRecord:
        data = read_json(self.root / RECORD_FILE)
        if data is None:
            raise SweepNotFound(f"{self.root} is not a sweep directory (no readable "
                                f"{RECORD_FILE})")
        return SweepRecord(**data)

    def write(self, record: SweepRecord) -> None:
        """Store ``record`` with its secrets redacted (tracking URI, ``--set`` values)."""
        data = asdict(record)
        data["mlflow_uri"] = redact_uri(record.mlflow_uri)
        data["overrides"] = [redact_text(o) for o in record.overrides]
        write_json(self.root / RECORD_FILE, data)

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
        # durable, and a per-process temp name: two sweeps starting at once never share one
        atomic_write_text(experiment_root / LATEST_FILE, root.name)
        return cls(root.resolve())

    @classmethod
    def latest(cls, experiment_root: Path) -> SweepDir:
        pointer = experiment_root / LATEST_FILE
        if not pointer.is_file():
            raise SweepNotFound(f"no sweep of this experiment in {experiment_root} (no "
                                f"'{LATEST_FILE}' file there); start one without --resume, or "
                                "give the sweep directory")
        try:
            root = child_path(experiment_root, pointer.read_text().strip(), "sweep")
        except PathOutsideParent as err:
            raise SweepNotFound(f"{pointer} does not name a sweep of this experiment ({err}); "
                                "give the sweep directory to --resume") from None
        return cls(root.resolve())

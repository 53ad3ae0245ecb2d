"""Trial checkpoints: DeepSpeed state per rank plus the trainer state the driver owns.

Layout under ``<output_dir>/checkpoints``::

    step_000004/            DeepSpeed tag directory (model, optimizer, scheduler per rank)
    trainer_state_000004.json  step, sampler cursor, metric history length
    experiment.json         the trial's resolved config (seedgrpo-eval rebuilds the model)
    latest                  the tag of the newest complete checkpoint, written last

``latest`` is replaced atomically after every rank saved, so an interrupted save leaves the
previous checkpoint as the one a restart continues from. Sampling seeds are derived from
(train.seed, step), so the step and the sampler cursor are all the randomness a resume needs.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["TrainerState", "checkpoint_tag", "write_trainer_state", "read_latest",
           "prune_checkpoints", "write_experiment", "read_experiment", "EXPERIMENT_FILE"]

EXPERIMENT_FILE = "experiment.json"


@dataclass
class TrainerState:
    step: int  # optimizer steps completed
    sampler: dict[str, Any]


def checkpoint_tag(step: int) -> str:
    return f"step_{step:06d}"


def write_trainer_state(root: Path, state: TrainerState) -> None:
    """Write the trainer state, then point ``latest`` at this step (atomically)."""
    root.mkdir(parents=True, exist_ok=True)
    tag = checkpoint_tag(state.step)
    (root / f"trainer_state_{state.step:06d}.json").write_text(json.dumps(asdict(state)))
    tmp = root / "latest.tmp"
    tmp.write_text(tag)
    os.replace(tmp, root / "latest")


def write_experiment(root: Path, config: dict[str, Any]) -> None:
    """The trial's config beside its checkpoints (atomically; the same for every step)."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / (EXPERIMENT_FILE + ".tmp")
    tmp.write_text(json.dumps(config, indent=1))
    os.replace(tmp, root / EXPERIMENT_FILE)


def read_experiment(root: Path) -> dict[str, Any]:
    return json.loads((root / EXPERIMENT_FILE).read_text())


def read_latest(root: Path) -> tuple[str, TrainerState] | None:
    """The newest complete checkpoint's tag and trainer state, or None when there is none."""
    latest = root / "latest"
    if not latest.is_file():
        return None
    tag = latest.read_text().strip()
    step = int(tag.removeprefix("step_"))
    data = json.loads((root / f"trainer_state_{step:06d}.json").read_text())
    return tag, TrainerState(**data)


def prune_checkpoints(root: Path, keep: int) -> list[int]:
    """Delete all but the newest ``keep`` complete checkpoints; returns the steps deleted.

    Only checkpoints with a trainer state count, and the one ``latest`` names is always kept.
    """
    steps = sorted(int(p.stem.removeprefix("trainer_state_"))
                   for p in root.glob("trainer_state_*.json"))
    latest = read_latest(root)
    protected = {latest[1].step} if latest else set()
    doomed = [s for s in steps[:-keep] if s not in protected]
    for step in doomed:
        shutil.rmtree(root / checkpoint_tag(step), ignore_errors=True)
        (root / f"trainer_state_{step:06d}.json").unlink(missing_ok=True)
    return doomed

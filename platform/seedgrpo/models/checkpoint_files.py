"""The files of a ``seedgrpo-train`` checkpoint directory: their names, and how to read them.

Layout under ``<output_dir>/checkpoints``::

    step_000004/            DeepSpeed tag directory (model, optimizer, scheduler per rank)
    step_000004/hf/         seedgrpo-eval's safetensors export of that step (written later)
    trainer_state_000004.json  step, sampler cursor, the tag directory's files and sizes
    pending_batch_000004.json  the batch generated ahead of step 5 (``runtime.batches``)
    experiment.json         the trial's resolved config (seedgrpo-eval rebuilds the model)
    latest                  the tag of the newest complete checkpoint, written last

A checkpoint is *complete* when its trainer state parses and every file it lists is in the tag
directory at the recorded size. When ``latest`` is missing, empty, torn or names an incomplete
step, ``read_latest`` warns and falls back to the newest complete checkpoint.

This module is the format, for every layer that reads a checkpoint: the trainer resuming, the
learner ranks loading one, ``seedgrpo-eval`` exporting one. Writing and pruning are the
training driver's (``seedgrpo.runtime.checkpoint``), which uses these names.

Loading a checkpoint unpickles it (DeepSpeed's ``torch.load(weights_only=False)``), which runs
whatever code its author put there: ``check_checkpoint_owner`` refuses a checkpoint another user
owns unless told to trust it. Share trained weights as the safetensors export, never as this
directory.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EXPERIMENT_FILE", "EXPORT_DIR", "LATEST_FILE", "MODEL_STATES", "TrainerState",
           "UntrustedCheckpoint", "all_steps", "check_checkpoint_owner", "checkpoint_tag",
           "complete_steps", "foreign_paths", "pending_batch_path", "read_experiment",
           "read_latest", "step_named_by_latest", "trainer_state_path"]

logger = logging.getLogger(__name__)

EXPERIMENT_FILE = "experiment.json"
LATEST_FILE = "latest"
EXPORT_DIR = "hf"  # seedgrpo-eval's export inside a tag directory, written after the save
# DeepSpeed writes one of these per tag whatever the ZeRO stage (mp_rank_00_model_states.pt,
# or zero_pp_rank_N_mp_rank_00_model_states.pt under ZeRO-3): what a trainer state written
# before file lists were recorded is checked against
MODEL_STATES = "*model_states.pt"
_TAG = re.compile(r"step_(\d+)")
_STATE = re.compile(r"trainer_state_(\d+)\.json")


@dataclass
class TrainerState:
    step: int  # optimizer steps completed
    sampler: dict[str, Any]
    # the tag directory's files (relative path -> size in bytes) once every rank had saved:
    # what makes the checkpoint complete
    files: dict[str, int] = field(default_factory=dict)


class UntrustedCheckpoint(Exception):
    """A checkpoint directory another user owns; loading it would run their code."""


def checkpoint_tag(step: int) -> str:
    """The tag directory's name of ``step``.

    >>> checkpoint_tag(4)
    'step_000004'
    """
    return f"step_{step:06d}"


def trainer_state_path(root: Path, step: int) -> Path:
    return root / f"trainer_state_{step:06d}.json"


def pending_batch_path(root: Path, step: int) -> Path:
    """Where the batch generated ahead of the checkpoint at ``step`` is kept
    (``runtime.batches`` writes and reads it; pruning a step deletes it)."""
    return root / f"pending_batch_{step:06d}.json"


def read_experiment(root: Path) -> dict[str, Any]:
    """The trial's config as saved beside its checkpoints."""
    return json.loads((root / EXPERIMENT_FILE).read_text())


# -- which checkpoint is complete ----------------------------------------------------------------
def _load_complete(root: Path, step: int) -> tuple[TrainerState | None, str]:
    """The trainer state of a complete checkpoint at ``step``, or None and what is wrong."""
    path = trainer_state_path(root, step)
    try:
        data = json.loads(path.read_text())
        state = TrainerState(**data)
    except FileNotFoundError:
        return None, f"{path.name} is missing"
    except (OSError, ValueError, TypeError):  # torn JSON, bad UTF-8, a directory, other keys
        return None, f"{path.name} is torn or not a trainer state"
    if not (isinstance(state.step, int) and isinstance(state.sampler, dict)
            and isinstance(state.files, dict)
            and all(isinstance(k, str) and isinstance(v, int) for k, v in state.files.items())):
        return None, f"{path.name} is torn or not a trainer state"
    tag_dir = root / checkpoint_tag(step)
    if state.step != step:
        return None, f"{path.name} records step {state.step}"
    if not tag_dir.is_dir():
        return None, f"{tag_dir.name}/ is missing"
    for name, size in state.files.items():
        file = tag_dir / name
        if not file.is_file() or file.stat().st_size != size:
            return None, f"{tag_dir.name}/{name} is missing or not the size it was saved at"
    if not state.files and not any(tag_dir.glob(MODEL_STATES)):
        return None, f"{tag_dir.name}/ holds no DeepSpeed model states"
    return state, ""


def all_steps(root: Path) -> list[int]:
    """Every step with a tag directory or a trainer state, complete or not (ascending)."""
    steps: set[int] = set()
    if root.is_dir():
        for p in root.iterdir():
            m = (_TAG.fullmatch(p.name) if p.is_dir() else _STATE.fullmatch(p.name))
            if m:
                steps.add(int(m.group(1)))
    return sorted(steps)


def complete_steps(root: Path) -> list[int]:
    """The steps of the complete checkpoints under ``root``, ascending."""
    return [s for s in all_steps(root) if _load_complete(root, s)[0] is not None]


def step_named_by_latest(root: Path) -> tuple[int | None, str]:
    """The step ``latest`` names, or None and what is wrong with it ('' when it is absent)."""
    path = root / LATEST_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None, ""
    except (OSError, UnicodeDecodeError):  # torn bytes, or a directory where the file belongs
        return None, f"{path} is torn or not a file"
    m = _TAG.fullmatch(text)
    if not text:
        return None, f"{path} is empty"
    if m is None:
        return None, f"{path} holds {text[:40]!r}, not a step tag"
    return int(m.group(1)), ""


def read_latest(root: Path) -> tuple[str, TrainerState] | None:
    """The tag and trainer state of the checkpoint to resume from: the one ``latest`` names
    when it is complete, otherwise (with a warning) the newest complete one; None when there
    is none."""
    named, problem = step_named_by_latest(root)
    if named is not None:
        state, problem = _load_complete(root, named)
        if state is not None:
            return checkpoint_tag(named), state
        problem = f"{root / LATEST_FILE} names {checkpoint_tag(named)}, but {problem}"
    steps = all_steps(root)
    if not problem and steps:
        problem = f"{root / LATEST_FILE} is missing"
    for step in reversed(steps):
        state, _ = _load_complete(root, step)
        if state is not None:
            logger.warning("%s; resuming from %s, the newest complete checkpoint", problem,
                           checkpoint_tag(step))
            return checkpoint_tag(step), state
    if problem and steps:
        logger.warning("%s, and no checkpoint in %s is complete; starting from step 0",
                       problem, root)
    return None


# -- who may be trusted ------------------------------------------------------------------------
def foreign_paths(owned: Iterable[tuple[Path, int]], uid: int) -> list[Path]:
    """The paths among ``(path, owner uid)`` pairs that ``uid`` does not own.

    >>> foreign_paths([(Path("a"), 1000), (Path("b"), 0)], uid=1000)
    [PosixPath('b')]
    """
    return [path for path, owner in owned if owner != uid]


def check_checkpoint_owner(root: Path, tag: str | None = None, *, opt_in: str,
                           uid: int | None = None) -> None:
    """Raise ``UntrustedCheckpoint`` when ``root``, or the tag directory ``tag`` or anything in
    it, is owned by someone other than ``uid`` (default: this process's user). ``opt_in`` says
    how the user trusts it anyway (a config field, a flag). Where there are no uids (Windows)
    nothing is checked."""
    if uid is None:
        if not hasattr(os, "getuid"):
            return
        uid = os.getuid()
    paths = [root]
    if tag is not None and (root / tag).is_dir():
        paths += [root / tag, *sorted((root / tag).rglob("*"))]
    foreign = foreign_paths(((p, p.lstat().st_uid) for p in paths), uid)
    if foreign:
        owner = foreign[0].lstat().st_uid
        raise UntrustedCheckpoint(
            f"{foreign[0]} is owned by uid {owner}, not by you (uid {uid}): loading a "
            "checkpoint unpickles it, which runs any code its owner put there; load only your "
            f"own, or {opt_in} if you trust uid {owner}")

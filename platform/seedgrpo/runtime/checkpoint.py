"""Trial checkpoints: DeepSpeed state per rank plus the trainer state the driver owns.

Layout under ``<output_dir>/checkpoints``::

    step_000004/            DeepSpeed tag directory (model, optimizer, scheduler per rank)
    trainer_state_000004.json  step, sampler cursor, the tag directory's files and sizes
    pending_batch_000004.json  the batch generated ahead of step 5 (``runtime.batches``)
    experiment.json         the trial's resolved config (seedgrpo-eval rebuilds the model)
    latest                  the tag of the newest complete checkpoint, written last

A checkpoint is *complete* when its trainer state parses and every file it lists is in the tag
directory at the recorded size. Every write is atomic and durable (``seedgrpo.fileio``: fsync
of the file and its directory), in this order: the ranks' files (fsynced once all ranks
returned), the trainer state, ``latest``. A save interrupted at any point, or a power cut,
leaves the previous checkpoint complete. When ``latest`` is missing, empty, torn or names an
incomplete step, ``read_latest`` warns and falls back to the newest complete checkpoint.
Sampling seeds are derived from (train.seed, step), so the step and the sampler cursor are all
the randomness a resume needs.

Loading a checkpoint unpickles it (DeepSpeed's ``torch.load(weights_only=False)``), which runs
whatever code its author put there: ``check_checkpoint_owner`` refuses a checkpoint another user
owns unless told to trust it. Share trained weights as the safetensors export
(``seedgrpo-eval`` writes ``<tag>/hf``), never as this directory.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seedgrpo.fileio import atomic_write_json, atomic_write_text, fsync_dir, fsync_tree

__all__ = ["TrainerState", "UntrustedCheckpoint", "checkpoint_tag", "write_trainer_state",
           "read_latest", "complete_steps", "prune_checkpoints", "write_experiment",
           "read_experiment", "foreign_paths", "check_checkpoint_owner", "EXPERIMENT_FILE",
           "LATEST_FILE"]

logger = logging.getLogger(__name__)

EXPERIMENT_FILE = "experiment.json"
LATEST_FILE = "latest"
_TAG = re.compile(r"step_(\d+)")
_STATE = re.compile(r"trainer_state_(\d+)\.json")
# DeepSpeed writes one of these per tag whatever the ZeRO stage (mp_rank_00_model_states.pt,
# or zero_pp_rank_N_mp_rank_00_model_states.pt under ZeRO-3): what a trainer state written
# before file lists were recorded is checked against
_MODEL_STATES = "*model_states.pt"
_EXPORT_DIR = "hf"  # seedgrpo-eval's export inside a tag directory, written after the save


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
    return f"step_{step:06d}"


def _state_path(root: Path, step: int) -> Path:
    return root / f"trainer_state_{step:06d}.json"


def _pending_path(root: Path, step: int) -> Path:
    # runtime.batches.pending_path (not imported: it pulls in torch for a file name)
    return root / f"pending_batch_{step:06d}.json"


def _tag_files(tag_dir: Path) -> dict[str, int]:
    return {p.relative_to(tag_dir).as_posix(): p.stat().st_size
            for p in sorted(tag_dir.rglob("*"))
            if p.is_file() and p.relative_to(tag_dir).parts[0] != _EXPORT_DIR}


def write_trainer_state(root: Path, state: TrainerState) -> None:
    """Make the ranks' files durable, record them in the trainer state, write that, then point
    ``latest`` at this step: each write atomic and fsynced, in that order."""
    root.mkdir(parents=True, exist_ok=True)
    tag = checkpoint_tag(state.step)
    tag_dir = root / tag
    files = {}
    if tag_dir.is_dir():
        fsync_tree(tag_dir)  # torch.save closes without syncing
        files = _tag_files(tag_dir)
    fsync_dir(root)  # the tag directory's own name (and a pending batch's)
    recorded = TrainerState(state.step, state.sampler, files)
    atomic_write_json(_state_path(root, state.step), asdict(recorded), indent=None)
    atomic_write_text(root / LATEST_FILE, tag)


def write_experiment(root: Path, config: dict[str, Any]) -> None:
    """The trial's config beside its checkpoints (atomically; the same for every step)."""
    atomic_write_json(root / EXPERIMENT_FILE, config)


def read_experiment(root: Path) -> dict[str, Any]:
    return json.loads((root / EXPERIMENT_FILE).read_text())


# -- which checkpoint is complete ----------------------------------------------------------------
def _load_complete(root: Path, step: int) -> tuple[TrainerState | None, str]:
    """The trainer state of a complete checkpoint at ``step``, or None and what is wrong."""
    path = _state_path(root, step)
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
    if not state.files and not any(tag_dir.glob(_MODEL_STATES)):
        return None, f"{tag_dir.name}/ holds no DeepSpeed model states"
    return state, ""


def _all_steps(root: Path) -> list[int]:
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
    return [s for s in _all_steps(root) if _load_complete(root, s)[0] is not None]


def _named_by_latest(root: Path) -> tuple[int | None, str]:
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
    named, problem = _named_by_latest(root)
    if named is not None:
        state, problem = _load_complete(root, named)
        if state is not None:
            return checkpoint_tag(named), state
        problem = f"{root / LATEST_FILE} names {checkpoint_tag(named)}, but {problem}"
    steps = _all_steps(root)
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


def prune_checkpoints(root: Path, keep: int) -> list[int]:
    """Delete all but the newest ``keep`` complete checkpoints, and every incomplete one older
    than the newest complete (a save interrupted before its trainer state); returns the steps
    deleted. The newest complete checkpoint, the one ``latest`` names and anything newer than
    the newest complete (a save that may still be under way) are never deleted."""
    complete = complete_steps(root)
    if not complete:
        return []
    newest = complete[-1]
    protected = {newest, _named_by_latest(root)[0]}
    doomed = [s for s in complete[:-keep] if s not in protected]
    doomed += [s for s in _all_steps(root) if s < newest and s not in complete
               and s not in protected]
    for step in sorted(doomed):
        # the trainer state first: a prune interrupted here leaves an incomplete step, which
        # the next prune removes, never a complete-looking one with files missing
        _state_path(root, step).unlink(missing_ok=True)
        shutil.rmtree(root / checkpoint_tag(step), ignore_errors=True)
        _pending_path(root, step).unlink(missing_ok=True)
    if doomed:
        fsync_dir(root)
    return sorted(doomed)


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

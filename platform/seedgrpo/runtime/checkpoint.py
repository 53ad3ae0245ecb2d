"""Writing and pruning a trial's checkpoints: the training driver's side of the format.

The directory's layout, and reading it back (``read_latest``, ``read_experiment``, the owner
check), live in ``seedgrpo.models.checkpoint_files``, below every layer that reads a checkpoint.
Every write here is atomic and durable (``seedgrpo.fileio``: fsync of the file and its
directory), in this order: the ranks' files (fsynced once all ranks returned), the trainer
state, ``latest``. A save interrupted at any point, or a power cut, leaves the previous
checkpoint complete. Sampling seeds are derived from (train.seed, step), so the step and the
sampler cursor are all the randomness a resume needs.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from seedgrpo.fileio import atomic_write_json, atomic_write_text, fsync_dir, fsync_tree
from seedgrpo.models.checkpoint_files import (
    EXPERIMENT_FILE,
    EXPORT_DIR,
    LATEST_FILE,
    TrainerState,
    all_steps,
    checkpoint_tag,
    complete_steps,
    pending_batch_path,
    step_named_by_latest,
    trainer_state_path,
)

__all__ = ["write_trainer_state", "write_experiment", "prune_checkpoints",
           "checkpoint_space_warning", "next_checkpoint_space_warning"]


def _tag_files(tag_dir: Path) -> dict[str, int]:
    return {p.relative_to(tag_dir).as_posix(): p.stat().st_size
            for p in sorted(tag_dir.rglob("*"))
            if p.is_file() and p.relative_to(tag_dir).parts[0] != EXPORT_DIR}


def write_trainer_state(root: Path, state: TrainerState) -> TrainerState:
    """Make the ranks' files durable, record them in the trainer state, write that, then point
    ``latest`` at this step: each write atomic and fsynced, in that order. Returns the state as
    recorded (with the ranks' files and their sizes)."""
    root.mkdir(parents=True, exist_ok=True)
    tag = checkpoint_tag(state.step)
    tag_dir = root / tag
    files = {}
    if tag_dir.is_dir():
        fsync_tree(tag_dir)  # torch.save closes without syncing
        files = _tag_files(tag_dir)
    fsync_dir(root)  # the tag directory's own name (and a pending batch's)
    recorded = TrainerState(state.step, state.sampler, files)
    atomic_write_json(trainer_state_path(root, state.step), asdict(recorded), indent=None)
    atomic_write_text(root / LATEST_FILE, tag)
    return recorded


def write_experiment(root: Path, config: dict[str, Any]) -> None:
    """The trial's config beside its checkpoints (atomically; the same for every step)."""
    atomic_write_json(root / EXPERIMENT_FILE, config)


def prune_checkpoints(root: Path, keep: int) -> list[int]:
    """Delete all but the newest ``keep`` complete checkpoints, and every incomplete one older
    than the newest complete (a save interrupted before its trainer state); returns the steps
    deleted. The newest complete checkpoint, the one ``latest`` names and anything newer than
    the newest complete (a save that may still be under way) are never deleted."""
    complete = complete_steps(root)
    if not complete:
        return []
    newest = complete[-1]
    protected = {newest, step_named_by_latest(root)[0]}
    doomed = [s for s in complete[:-keep] if s not in protected]
    doomed += [s for s in all_steps(root) if s < newest and s not in complete
               and s not in protected]
    for step in sorted(doomed):
        # the trainer state first: a prune interrupted here leaves an incomplete step, which
        # the next prune removes, never a complete-looking one with files missing
        trainer_state_path(root, step).unlink(missing_ok=True)
        shutil.rmtree(root / checkpoint_tag(step), ignore_errors=True)
        pending_batch_path(root, step).unlink(missing_ok=True)
    if doomed:
        fsync_dir(root)
    return sorted(doomed)


def checkpoint_space_warning(size: int, free: int, where: Path | str, keep: int) -> str | None:
    """What to tell the user when a disk with ``free`` bytes cannot take one more checkpoint of
    ``size`` bytes (the next save writes a whole new one before the oldest is pruned); None when
    it can.

    Why warn now: a full disk otherwise shows up minutes or hours later, as an ``OSError`` from
    ``torch.save`` deep inside a learner rank, and the trial then fails at its next checkpoint.

    >>> checkpoint_space_warning(2 * 10**9, 5 * 10**9, "/runs/t/checkpoints", 2) is None
    True
    >>> warning = checkpoint_space_warning(2_100_000_000, 900_000_000, "/runs/t", 2)
    >>> warning[:warning.index(";")]
    'the next checkpoint will not fit: this one takes 2.1 GB and 0.9 GB is free in /runs/t'
    """
    if free >= size:
        return None
    return (f"the next checkpoint will not fit: this one takes {size / 1e9:.1f} GB and "
            f"{free / 1e9:.1f} GB is free in {where}; free some disk space, or keep fewer "
            f"checkpoints (train.keep_checkpoints, now {keep}) or save them less often "
            "(train.checkpoint_every)")


def next_checkpoint_space_warning(root: Path, saved: TrainerState, keep: int) -> str | None:
    """``checkpoint_space_warning`` for the checkpoint ``write_trainer_state`` just recorded
    under ``root``: its size is the rank files it listed (none where the ranks wrote to another
    node's disk, which never warns), the free space is this disk's."""
    return checkpoint_space_warning(sum(saved.files.values()), shutil.disk_usage(root).free,
                                    root, keep)

"""Files that survive a crash or a power cut: atomic replacement, made durable with fsync.

``os.replace`` alone is atomic for running processes but not for the disk: after a power cut a
file renamed into place can come back empty (ext4 ``data=ordered`` with delayed allocation,
XFS), or the rename itself can be lost. The recipe every database uses: write a temporary file
beside the target, fsync it, rename it over the target, then fsync the directory that holds the
name. A reader then sees the old content or the new, never a torn or empty file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_text", "atomic_write_json", "fsync_dir", "fsync_tree", "read_json"]


def fsync_dir(path: Path) -> None:
    """Make the names in directory ``path`` (files created, renamed, removed) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:  # some file systems (and Windows) refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file under ``root`` and every directory from ``root`` down (after another
    writer, e.g. DeepSpeed's ``torch.save``, closed them without syncing)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically and durably (temp file, fsync, rename, fsync
    of the directory). The temp name is unique per process, so two writers never share one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, data: Any, *, indent: int | None = 1) -> None:
    """``atomic_write_text`` of ``data`` as JSON."""
    atomic_write_text(path, json.dumps(data, indent=indent))


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when it is missing or torn (written before these writes
    were atomic, or by a process killed mid-write)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None

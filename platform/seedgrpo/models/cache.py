"""Where converted and generated models live, and how two processes avoid building one twice.

Sweeps start several trials at once; each may ask for the bundled model before it has been
converted. Conversion happens under an exclusive file lock into a temporary directory that is
renamed into place, so a reader never sees a half-written model.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["cache_root", "build_once"]


def cache_root(configured: str | None = None) -> Path:
    """``model.cache_dir``, else ``$SEEDGRPO_CACHE_DIR``, else ``$XDG_CACHE_HOME/seedgrpo``,
    else ``~/.cache/seedgrpo``."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get("SEEDGRPO_CACHE_DIR"):
        return Path(os.environ["SEEDGRPO_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "seedgrpo"


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # blocks while another process builds
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Return ``target``, calling ``build(tmp_dir)`` first if it does not exist yet.

    ``target`` counts as built when it holds a ``.complete`` marker, written last.
    """
    marker = target / ".complete"
    if marker.exists():
        return target
    with _locked(target.with_name(target.name + ".lock")):
        if marker.exists():  # built by another process while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            build(tmp)
            (tmp / ".complete").write_text("ok\n")
            if target.exists():
                shutil.rmtree(target)  # a leftover from an interrupted build
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target

"""``model.revision`` pins what a hub id downloads.

Offline, against a real huggingface_hub cache laid out as the hub writes it: two snapshots of
one repo, ``main`` pointing at the first. The revision must choose the snapshot; unset, the
default branch is used. A subprocess, because ``HF_HUB_OFFLINE`` is read at import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from seedgrpo.config.sections import ModelConfig

MAIN = "a" * 40
PINNED = "b" * 40


def _hub_cache(cache_dir: Path) -> None:
    repo = cache_dir / "hub" / "models--org--tiny"
    for commit in (MAIN, PINNED):
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(MAIN)
    (repo / "refs" / "v1").write_text(PINNED)


def _resolve(cache_dir: Path, revision: str | None) -> str:
    code = ("import sys; from seedgrpo.config.sections import ModelConfig; "
            "from seedgrpo.models.resolve import resolve_model_dir; "
            "print(resolve_model_dir(ModelConfig(source='hf', name='org/tiny', "
            f"revision={revision!r}, cache_dir={str(cache_dir)!r})).name)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_the_revision_chooses_the_snapshot(tmp_path: Path) -> None:
    _hub_cache(tmp_path)
    assert _resolve(tmp_path, None) == MAIN
    assert _resolve(tmp_path, PINNED) == PINNED
    assert _resolve(tmp_path, "v1") == PINNED


@pytest.mark.parametrize("revision", ["main", "v1.0", "refs/pr/3", PINNED])
def test_plausible_revisions_are_accepted(revision: str) -> None:
    assert ModelConfig(source="hf", name="org/m", revision=revision).revision == revision


@pytest.mark.parametrize("revision", ["", "-rf", "main..dev", "a b", "x" * 200, "main/",
                                      "../../etc", "/abs"])
def test_implausible_revisions_are_refused(revision: str) -> None:
    with pytest.raises(ValidationError, match="is not a git revision"):
        ModelConfig(source="hf", name="org/m", revision=revision)

"""Checkpoint bookkeeping: the 'latest' pointer and pruning (no DeepSpeed needed)."""

from __future__ import annotations

from pathlib import Path

from seedgrpo.runtime.checkpoint import (
    TrainerState,
    checkpoint_tag,
    prune_checkpoints,
    read_latest,
    write_trainer_state,
)


def _save(root: Path, step: int) -> None:
    (root / checkpoint_tag(step)).mkdir(parents=True)
    (root / checkpoint_tag(step) / "model.pt").write_text("w")
    write_trainer_state(root, TrainerState(step, {"cursor": step}))


def test_latest_points_at_the_newest_complete_checkpoint(tmp_path: Path) -> None:
    assert read_latest(tmp_path) is None
    _save(tmp_path, 2)
    _save(tmp_path, 4)
    tag, state = read_latest(tmp_path)
    assert tag == "step_000004" and state == TrainerState(4, {"cursor": 4})
    # a DeepSpeed save that died before the trainer state leaves 'latest' where it was
    (tmp_path / checkpoint_tag(6)).mkdir()
    assert read_latest(tmp_path)[0] == "step_000004"


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    for step in (2, 4, 6, 8):
        _save(tmp_path, step)
    assert prune_checkpoints(tmp_path, keep=2) == [2, 4]
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_000006", "step_000008"]
    assert read_latest(tmp_path)[0] == "step_000008"
    assert prune_checkpoints(tmp_path, keep=2) == []

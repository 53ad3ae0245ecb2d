"""Checkpoint bookkeeping on real files (no DeepSpeed needed): the 'latest' pointer, the fall-back
to the newest complete checkpoint, pruning, durability and the owner check."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import pytest

from seedgrpo.models.checkpoint_files import (
    TrainerState,
    UntrustedCheckpoint,
    check_checkpoint_owner,
    checkpoint_tag,
    complete_steps,
    foreign_paths,
    read_latest,
)
from seedgrpo.runtime.batches import pending_path
from seedgrpo.runtime.checkpoint import (
    checkpoint_space_warning,
    next_checkpoint_space_warning,
    prune_checkpoints,
    write_trainer_state,
)

# what DeepSpeed writes per tag for two ranks at ZeRO-2
RANK_FILES = ("mp_rank_00_model_states.pt", "zero_pp_rank_0_mp_rank_00_optim_states.pt",
              "zero_pp_rank_1_mp_rank_00_optim_states.pt")
NOBODY = 65534


def _save(root: Path, step: int) -> None:
    tag_dir = root / checkpoint_tag(step)
    tag_dir.mkdir(parents=True)
    for name in RANK_FILES:
        (tag_dir / name).write_bytes(b"w" * (100 + step))
    write_trainer_state(root, TrainerState(step, {"cursor": step}))


def _state(root: Path, step: int) -> Path:
    return root / f"trainer_state_{step:06d}.json"


@pytest.fixture()
def two(tmp_path: Path) -> Path:
    """Complete checkpoints at steps 2 and 4; 'latest' names step 4."""
    _save(tmp_path, 2)
    _save(tmp_path, 4)
    return tmp_path


def test_latest_points_at_the_newest_complete_checkpoint(tmp_path: Path, caplog) -> None:
    assert read_latest(tmp_path) is None
    _save(tmp_path, 2)
    _save(tmp_path, 4)
    tag, state = read_latest(tmp_path)
    assert tag == "step_000004" and state.step == 4 and state.sampler == {"cursor": 4}
    assert state.files == {name: 104 for name in RANK_FILES}  # what makes it complete
    # a DeepSpeed save that died before the trainer state leaves 'latest' where it was
    (tmp_path / checkpoint_tag(6)).mkdir()
    (tmp_path / checkpoint_tag(6) / RANK_FILES[0]).write_bytes(b"half")
    with caplog.at_level(logging.WARNING):
        assert read_latest(tmp_path)[0] == "step_000004"
    assert not caplog.records  # nothing wrong: 'latest' is what it should be


def _torn_state(root: Path) -> None:
    text = _state(root, 4).read_text()
    _state(root, 4).write_text(text[: len(text) // 2])


def _missing_state(root: Path) -> None:
    _state(root, 4).unlink()


def _empty_latest(root: Path) -> None:
    (root / "latest").write_text("")


def _latest_names_a_missing_step(root: Path) -> None:
    (root / "latest").write_text("step_000006")


def _torn_latest(root: Path) -> None:
    (root / "latest").write_bytes(b"\xff\xfe\x00st")


def _truncated_rank_file(root: Path) -> None:
    with open(root / "step_000004" / RANK_FILES[2], "r+b") as f:
        f.truncate(10)


def _missing_latest(root: Path) -> None:
    (root / "latest").unlink()


@pytest.mark.parametrize(("fault", "resumed", "says"), [
    (_torn_state, 2, "trainer_state_000004.json is torn"),
    (_missing_state, 2, "trainer_state_000004.json is missing"),
    (_empty_latest, 4, "latest is empty"),
    (_latest_names_a_missing_step, 4, "names step_000006, but trainer_state_000006.json is "
                                      "missing"),
    (_torn_latest, 4, "latest is torn"),
    (_truncated_rank_file, 2, "zero_pp_rank_1_mp_rank_00_optim_states.pt is missing or not "
                              "the size"),
    (_missing_latest, 4, "latest is missing"),
], ids=lambda v: getattr(v, "__name__", None))
def test_a_damaged_checkpoint_falls_back_to_the_newest_complete(two: Path, caplog, fault,
                                                                resumed: int, says: str) -> None:
    """Each fault used to raise (or resume from nothing); now the trial resumes from the newest
    complete checkpoint and one warning line says what was wrong and which one it took."""
    fault(two)
    with caplog.at_level(logging.WARNING, logger="seedgrpo.models.checkpoint_files"):
        tag, state = read_latest(two)
    assert tag == checkpoint_tag(resumed) and state.step == resumed
    assert state.sampler == {"cursor": resumed}
    (record,) = caplog.records
    message = record.getMessage()
    assert says in message and f"resuming from {checkpoint_tag(resumed)}" in message
    assert "\n" not in message


def test_no_complete_checkpoint_starts_over_with_a_warning(tmp_path: Path, caplog) -> None:
    _save(tmp_path, 2)
    _state(tmp_path, 2).write_text("{")  # the only one, torn
    with caplog.at_level(logging.WARNING, logger="seedgrpo.models.checkpoint_files"):
        assert read_latest(tmp_path) is None
    assert "no checkpoint" in caplog.text and "starting from step 0" in caplog.text


def test_a_trainer_state_from_before_file_lists_still_counts(tmp_path: Path) -> None:
    """Checkpoints written before the trainer state listed the rank files: complete when the
    tag directory holds DeepSpeed's model states."""
    _save(tmp_path, 2)
    _state(tmp_path, 2).write_text(json.dumps({"step": 2, "sampler": {"cursor": 2}}))
    assert read_latest(tmp_path)[1].sampler == {"cursor": 2}
    (tmp_path / "step_000002" / RANK_FILES[0]).unlink()
    assert complete_steps(tmp_path) == []


# -- pruning -----------------------------------------------------------------------------------
def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    for step in (2, 4, 6, 8):
        _save(tmp_path, step)
        pending_path(tmp_path, step).write_text("{}")
    assert prune_checkpoints(tmp_path, keep=2) == [2, 4]
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_000006", "step_000008"]
    assert sorted(p.name for p in tmp_path.glob("pending_batch_*")) == [
        "pending_batch_000006.json", "pending_batch_000008.json"]  # they go with their step
    assert read_latest(tmp_path)[0] == "step_000008"
    assert prune_checkpoints(tmp_path, keep=2) == []


def test_prune_removes_interrupted_saves_but_not_one_under_way(tmp_path: Path) -> None:
    """A save that died before its trainer state (a tag directory alone, or a torn trainer
    state) is removed once a newer checkpoint is complete; one newer than the newest complete
    may still be being written and stays, as do the newest complete and what 'latest' names."""
    _save(tmp_path, 2)
    (tmp_path / "step_000003").mkdir()  # died mid-save
    (tmp_path / "step_000003" / RANK_FILES[0]).write_bytes(b"half")
    _save(tmp_path, 4)
    _state(tmp_path, 4).write_text('{"step": 4, "sampl')  # torn: step 4 is incomplete now
    _save(tmp_path, 5)
    (tmp_path / "step_000006").mkdir()  # being written
    assert prune_checkpoints(tmp_path, keep=2) == [3, 4]
    assert sorted(p.name for p in tmp_path.glob("step_*")) == [
        "step_000002", "step_000005", "step_000006"]
    assert not _state(tmp_path, 4).exists()
    (tmp_path / "latest").write_text("step_000002")  # 'latest' names the older one: kept
    _save(tmp_path, 7)
    (tmp_path / "latest").write_text("step_000002")
    assert prune_checkpoints(tmp_path, keep=1) == [5, 6]
    assert complete_steps(tmp_path) == [2, 7]


# -- durability --------------------------------------------------------------------------------
def test_every_file_is_fsynced_before_latest_moves(tmp_path: Path, monkeypatch) -> None:
    """The rank files, then the trainer state, then 'latest', each fsynced with its directory
    before the next: a power cut at any point leaves a complete checkpoint. (os.fsync is wrapped
    only to record which file each call synced; the real fsync runs.)"""
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to name the file behind a descriptor")
    monkeypatch.setattr(os, "fsync", recording_fsync)
    _save(tmp_path, 2)
    tag_dir = str(tmp_path / "step_000002")
    names = [Path(p).name for p in synced]
    last_rank_file = max(names.index(n) for n in RANK_FILES)
    state_tmp = next(i for i, n in enumerate(names) if "trainer_state_000002.json" in n)
    latest_tmp = next(i for i, n in enumerate(names) if n.startswith(".latest"))
    assert last_rank_file < state_tmp < latest_tmp
    assert tag_dir in synced and str(tmp_path) in synced
    assert synced[-1] == str(tmp_path)  # the rename of 'latest' itself
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


# -- the owner check ---------------------------------------------------------------------------
def test_foreign_paths_is_exact() -> None:
    owned = [(Path("root"), 1000), (Path("root/step_000002"), 1000),
             (Path("root/step_000002/mp_rank_00_model_states.pt"), 1001)]
    assert foreign_paths(owned, 1000) == [Path("root/step_000002/mp_rank_00_model_states.pt")]
    assert foreign_paths(owned, 1001) == [Path("root"), Path("root/step_000002")]
    assert foreign_paths([], 0) == []


def test_a_checkpoint_of_another_user_is_refused(two: Path) -> None:
    """The real files, checked against a uid that does not own them (as any other user would
    see them), and against the uid that does."""
    me = os.getuid()
    check_checkpoint_owner(two, "step_000004", opt_in="trust it")  # mine: no error
    with pytest.raises(UntrustedCheckpoint) as err:
        check_checkpoint_owner(two, "step_000004", opt_in="pass --trust-checkpoint",
                               uid=me + 1)
    message = str(err.value)
    assert f"{two} is owned by uid {me}, not by you (uid {me + 1})" in message
    assert "unpickles" in message and "pass --trust-checkpoint" in message
    assert "\n" not in message


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0,
                    reason="only root can give a file to another user (chown)")
def test_a_rank_file_given_to_another_user_is_refused(two: Path) -> None:
    planted = two / "step_000004" / RANK_FILES[1]
    os.chown(planted, NOBODY, NOBODY)
    check_checkpoint_owner(two, "step_000002", opt_in="x")  # another tag: not loaded, fine
    with pytest.raises(UntrustedCheckpoint, match=f"{planted} is owned by uid {NOBODY}"):
        check_checkpoint_owner(two, "step_000004", opt_in="x")


@pytest.mark.parametrize("state_text", [
    '{"step": 2, "sampler": {}, "files": ["model_states.pt"]}',  # files not a mapping
    '{"step": "2", "sampler": {}}',  # step not a number
    '[1, 2]',  # not an object
])
def test_a_trainer_state_of_the_wrong_shape_counts_as_torn(tmp_path: Path, state_text: str
                                                           ) -> None:
    """Valid JSON of the wrong shape is a torn state, not a traceback: the run falls back."""
    _save(tmp_path, 1)
    _save(tmp_path, 2)
    (tmp_path / "trainer_state_000002.json").write_text(state_text)
    assert read_latest(tmp_path)[0] == "step_000001"


def test_latest_that_is_a_directory_falls_back(tmp_path: Path) -> None:
    _save(tmp_path, 1)
    (tmp_path / "latest").unlink(missing_ok=True)
    (tmp_path / "latest").mkdir()
    assert read_latest(tmp_path)[0] == "step_000001"


@pytest.fixture()
def small_disk(tmp_path: Path):
    """A real 1 MiB filesystem (tmpfs), so 'the disk is full' is the kernel's answer, not a
    mock's. Mounting needs root, as CI has; elsewhere the test is skipped and says why."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 1 MiB tmpfs here (needs root): {done.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def _save_sized(root: Path, step: int, size: int) -> TrainerState:
    tag_dir = root / checkpoint_tag(step)
    tag_dir.mkdir(parents=True)
    (tag_dir / RANK_FILES[0]).write_bytes(b"w" * size)
    return write_trainer_state(root, TrainerState(step, {"cursor": step}))


def test_a_checkpoint_that_leaves_too_little_room_for_the_next_is_named(small_disk: Path
                                                                        ) -> None:
    root = small_disk / "checkpoints"
    saved = _save_sized(root, 2, 300 * 1024)  # 300 KiB of 1 MiB: the next one fits
    assert next_checkpoint_space_warning(root, saved, keep=2) is None
    saved = _save_sized(root, 4, 400 * 1024)  # 700 KiB used: 400 more will not fit
    warning = next_checkpoint_space_warning(root, saved, keep=2)
    assert warning is not None
    assert warning.startswith("the next checkpoint will not fit: this one takes 0.0 GB")
    assert str(root) in warning and "train.keep_checkpoints, now 2" in warning
    with pytest.raises(OSError, match="No space left"):  # and the kernel agrees
        _save_sized(root, 6, 400 * 1024)


def test_the_space_warning_measures_the_ranks_files_only(tmp_path: Path) -> None:
    """The checkpoint's size is the ranks' files its trainer state lists; a checkpoint written
    on another node's disk (no files listed here) measures 0 and never warns."""
    saved = _save_sized(tmp_path, 2, 1000)
    assert saved.files == {RANK_FILES[0]: 1000}
    assert checkpoint_space_warning(1000, 999, tmp_path, 1) is not None
    assert next_checkpoint_space_warning(tmp_path, saved, keep=1) is None  # this disk has room
    elsewhere = write_trainer_state(tmp_path, TrainerState(8, {"cursor": 8}))
    assert next_checkpoint_space_warning(tmp_path, elsewhere, keep=1) is None

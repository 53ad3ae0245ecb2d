"""seedgrpo-train and seedgrpo-eval refuse a checkpoint another user owns (loading one unpickles
it), with one line and status 2, before Ray or DeepSpeed start. Real processes, real files
given to another user with chown, which only root can do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seedgrpo.models.checkpoint_files import TrainerState, checkpoint_tag
from seedgrpo.runtime.checkpoint import write_trainer_state

BIN = Path(sys.executable).parent
NOBODY = 65534

pytestmark = pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0,
                                reason="only root can give a directory to another user (chown)")

EXPERIMENT = """
model: {{source: tiny-random, name: tiny-llama, cache_dir: {cache}}}
train: {{steps: 2, prompts_per_step: 2, micro_batch_size: 2}}
rollout: {{engine: hf, max_new_tokens: 8}}
learner: {{num_ranks: 1, zero_stage: 2}}
tracking: {{mlflow_uri: null, output_dir: {out}}}
"""


def _checkpoint(root: Path, step: int = 2) -> Path:
    """A complete checkpoint as seedgrpo-train leaves it (the rank files' bytes do not matter:
    nothing may load them), then given to nobody."""
    tag_dir = root / checkpoint_tag(step)
    tag_dir.mkdir(parents=True)
    (tag_dir / "mp_rank_00_model_states.pt").write_bytes(b"not loaded")
    (root / "experiment.json").write_text(json.dumps({}))
    write_trainer_state(root, TrainerState(step, {}))
    for path in (root, *root.rglob("*")):
        os.chown(path, NOBODY, NOBODY)
    return root


def _run(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = shutil.which(tool, path=str(BIN))
    assert script, f"{tool} is not installed in this environment (pip install -e .)"
    return subprocess.run([script, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def _refused(out: subprocess.CompletedProcess[str], opt_in: str) -> None:
    assert out.returncode == 2, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"is owned by uid {NOBODY}, not by you (uid 0)" in errors[0]
    assert "unpickles" in errors[0] and opt_in in errors[0]
    assert "Traceback" not in out.stderr


def test_eval_refuses_a_checkpoint_of_another_user(tmp_path: Path) -> None:
    root = _checkpoint(tmp_path / "trial" / "checkpoints")
    out = _run("seedgrpo-eval", "--model", str(root.parent), "--benchmarks", "amc23",
               "--engine", "hf", cwd=tmp_path)
    _refused(out, "pass --trust-checkpoint")
    assert not (root / "step_000002" / "hf").exists()  # nothing was exported


def test_train_refuses_to_resume_a_checkpoint_of_another_user(tmp_path: Path) -> None:
    experiment = tmp_path / "tiny.yaml"
    experiment.write_text(EXPERIMENT.format(cache=tmp_path / "cache", out=tmp_path / "runs"))
    output = tmp_path / "trial"
    _checkpoint(output / "checkpoints")
    out = _run("seedgrpo-train", str(experiment), "--output-dir", str(output), cwd=tmp_path)
    _refused(out, "--set train.trust_checkpoint_owner=true")
    assert "continuing from checkpoint" not in out.stdout

"""seedgrpo-train run as a user would (tiny model, real Ray, real DeepSpeed, real MLflow)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = shutil.which("seedgrpo-train", path=str(Path(sys.executable).parent))

TINY = """
model: {{source: tiny-random, name: tiny-llama, cache_dir: {cache}}}
data: {{heldout_size: 4, fewshot: 1, synthetic: {{num_problems: 64}}}}
algorithm: {{group_size: 4, alpha: 0.5, clustering: exact}}
train: {{steps: 2, prompts_per_step: 2, lr: 1.0e-3, micro_batch_size: 2, checkpoint_every: 1}}
rollout: {{engine: hf, max_new_tokens: 8}}
learner: {{num_ranks: 2, zero_stage: 2}}
resources: {{call_timeout_s: 300}}
eval: {{every_steps: 1, max_new_tokens: 8}}
tracking: {{mlflow_uri: "sqlite:///{db}", output_dir: {out}}}
search_space:
  algorithm.alpha: {{grid: [0.1, 0.9]}}
"""


@pytest.fixture()
def experiment(tmp_path: Path, model_cache: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(cache=model_cache, db=tmp_path / "mlflow.db",
                                out=tmp_path / "runs"))
    return path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert SCRIPT, "seedgrpo-train is not installed in this environment (pip install -e .)"
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.slow  # about 90 s: two runs, a resume and an export (the fast tier keeps its parts)
def test_train_runs_a_trial_and_logs_to_mlflow(experiment: Path, tmp_path: Path,
                                               shared_data: Path) -> None:
    out = run(str(experiment), "--trial", "1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert any(line.startswith("step 0/2  eval") for line in lines)
    assert any(line.startswith("step 2/2  reward") for line in lines)
    assert (tmp_path / "runs" / "tiny" / "a0.9" / "checkpoints" / "latest").is_file()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run_info,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert run_info.info.status == "FINISHED" and run_info.info.run_name == "a0.9"
    assert run_info.data.params["algorithm.alpha"] == "0.9"
    history = client.get_metric_history(run_info.info.run_id, "train/se_mean")
    assert [m.step for m in history] == [1, 2]

    again = run(str(experiment), "--trial", "1", "--set", "train.steps=3", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "continuing from checkpoint step_000002" in again.stdout
    assert any(line.startswith("step 3/3  reward") for line in again.stdout.splitlines())
    (resumed,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert resumed.info.run_id == run_info.info.run_id  # the resume continued the same run
    artifacts = {a.path for a in client.list_artifacts(run_info.info.run_id, "eval")}
    assert "eval/samples_step_000000.jsonl" in artifacts  # evaluation samples, every eval

    # seedgrpo-eval reads what seedgrpo-train wrote
    trial_dir = tmp_path / "runs" / "tiny" / "a0.9"
    evaluated = subprocess.run(
        [SCRIPT.replace("seedgrpo-train", "seedgrpo-eval"), "--model", str(trial_dir),
         "--benchmarks", "amc23", "--limit", "2", "--engine", "hf", "--max-new-tokens", "8",
         "--data-dir", str(shared_data), "--output-dir", str(tmp_path / "ev")],
        capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["step"] == 3 and summary["template"] == "qwen_math"
    exported = trial_dir / "checkpoints" / "step_000003" / "hf"
    assert summary["model_dir"] == str(exported)
    _assert_export_matches_deepspeed(exported, trial_dir / "checkpoints", "step_000003")


@pytest.mark.slow  # 1-2.5 min: a 2-step run, then its resume to step 3
def test_a_resumed_train_continues_its_mlflow_run_and_logs_ignored_settings_as_na(
        experiment: Path, tmp_path: Path) -> None:
    args = [str(experiment), "--set", "algorithm.modulation=none", "--set", "eval.benchmarks=[]"]
    first = run(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    again = run(*args, "--set", "train.steps=3", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "continuing from checkpoint step_000002" in again.stdout

    from mlflow.tracking import MlflowClient

    from seedgrpo.config.applicability import NOT_APPLICABLE

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (only,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert only.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(only.info.run_id, "train/reward_mean")]
    assert sorted(steps) == [1, 2, 3]  # each step once: the resume logged only step 3
    # the setting a `none` run ignores is n/a, as in a sweep, not the default it ignores
    assert only.data.params["algorithm.alpha"] == NOT_APPLICABLE
    assert only.data.params["algorithm.estimator"] == "rao"
    result = json.loads((tmp_path / "runs" / "tiny" / "base" / "result.json").read_text())
    assert result["step"] == 3 and "train/reward_mean" in result["metrics"]


def _assert_export_matches_deepspeed(exported: Path, root: Path, tag: str) -> None:
    """The exported HF weights are exactly rank 0's consolidated fp32 weights, and differ from
    the base model's (training moved them)."""
    import torch
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from safetensors.torch import load_file

    saved = load_file(str(exported / "model.safetensors"))
    consolidated = get_fp32_state_dict_from_zero_checkpoint(str(root), tag=tag)
    for name, tensor in consolidated.items():
        if name not in saved:  # a tied head is saved once, as the embedding
            assert name == "lm_head.weight"
            name = "model.embed_tokens.weight"
        assert torch.equal(saved[name], tensor), name


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--trial", "5"], 2, "--trial 5: "),
        (["--set", "algorithm.uncertainty=gcpo", "--set", "algorithm.gcpo.embedding=answer"], 2,
         "needs algorithm.gcpo.encoder"),
        (["--set", "algorithm.uncertainty=gcpo", "--set", "algorithm.gcpo.embedding=answer",
          "--set", "algorithm.gcpo.encoder=/no/such/encoder"], 1, "is not a directory"),
        (["--set", "model.source=hf", "--set", "model.name=/no/such/model"], 1,
         "could not be loaded"),
        (["--set", "algorithm.alpha=-1"], 2, "algorithm.alpha = -1 must be >= 0"),
    ],
)
def test_train_failures_are_messages(experiment: Path, tmp_path: Path, args, status,
                                     message) -> None:
    out = run(str(experiment), *args, cwd=tmp_path)
    assert out.returncode == status, out.stderr[-3000:]
    assert message in out.stderr and "Traceback" not in out.stderr

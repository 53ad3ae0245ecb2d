"""seedgrpo-train run as a user would (tiny model, real Ray, real DeepSpeed, real MLflow)."""

from __future__ import annotations

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
learner: {{num_ranks: 2, zero_stage: 2, timeout_s: 300}}
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


def test_train_runs_a_trial_and_logs_to_mlflow(experiment: Path, tmp_path: Path) -> None:
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


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--trial", "5"], 2, "--trial 5: "),
        (["--set", "algorithm.uncertainty=gcpo"], 1, "needs response embeddings"),
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

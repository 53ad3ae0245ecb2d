"""A tiny sweep run once through the real CLI; the tests then read what it left.

Real Ray (started and stopped by the CLI), real DeepSpeed ranks, real SQLite MLflow, the tiny
random model. A trial takes about 20 s, so the four-trial grid takes about 2 minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

TINY_SWEEP = """
model: {{source: tiny-random, name: tiny-llama, cache_dir: {cache}}}
data: {{heldout_size: 4, fewshot: 1, synthetic: {{num_problems: 64}}}}
algorithm: {{group_size: 4, alpha: 0.5, clustering: exact}}
train: {{steps: {steps}, prompts_per_step: 2, lr: 1.0e-3, micro_batch_size: 4, checkpoint_every: 1}}
rollout: {{engine: hf, max_new_tokens: 8}}
learner: {{num_ranks: 1, zero_stage: 2}}
resources: {{call_timeout_s: 300}}
eval: {{every_steps: 1, max_new_tokens: 8, before_training: false}}
tracking: {{mlflow_uri: "sqlite:///mlflow.db", output_dir: runs}}
"""


def script(name: str) -> str:
    found = shutil.which(name, path=str(BIN))
    assert found, f"{name} is not installed in this environment (pip install -e .)"
    return found


def write_experiment(directory: Path, name: str, cache: Path, rest: str, *, steps: int = 2
                     ) -> Path:
    path = directory / f"{name}.yaml"
    base = TINY_SWEEP.format(cache=cache, steps=steps)
    if re.search(r"^resources:", rest, re.MULTILINE):  # the test's own section (and timeout)
        base = base.replace("resources: {call_timeout_s: 300}\n", "")
    path.write_text(base + rest)
    return path


def run_cli(name: str, *args: str, cwd: Path, timeout: int = 600
            ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([script(name), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=env)


def sweep_runs(uri: str, experiment: str):
    """The MLflow client, the experiment, its sweep (parent) runs and its trial (child) runs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("seedgrpo.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("seedgrpo.role") == "trial"]
    return client, exp, parents, children


@dataclass(frozen=True)
class FinishedSweep:
    workdir: Path
    experiment: Path
    stdout: str
    uri: str
    sweep_dir: Path


GRID = """
tune: {metric: eval/heldout/pass_at_1, max_concurrent_trials: 1}
search_space:
  algorithm.modulation: {grid: [none, linear]}
  algorithm.alpha: {grid: [0.25, 0.5, 1.0]}
"""


@pytest.fixture(scope="session")
def grid_sweep(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> FinishedSweep:
    """``seedgrpo-sweep`` on a 4-trial grid: the `none` baseline once, linear at 3 alphas."""
    workdir = tmp_path_factory.mktemp("grid")
    experiment = write_experiment(workdir, "tiny_grid", model_cache, GRID)
    out = run_cli("seedgrpo-sweep", str(experiment), cwd=workdir)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    sweep_dir = (workdir / "runs" / "tiny_grid" /
                 (workdir / "runs" / "tiny_grid" / "latest").read_text().strip())
    return FinishedSweep(workdir, experiment, out.stdout, f"sqlite:///{workdir / 'mlflow.db'}",
                         sweep_dir)

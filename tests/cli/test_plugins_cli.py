"""Plug-in modules through the real CLIs: a module written here registers an uncertainty source
and a modulation; the experiment names them; the sweep accepts them, a training run uses them
(in its Ray workers too) and an unknown name still fails in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
SWEEP = shutil.which("seedgrpo-sweep", path=str(BIN))
TRAIN = shutil.which("seedgrpo-train", path=str(BIN))
EVAL = shutil.which("seedgrpo-eval", path=str(BIN))

PLUGIN = '''
from seedgrpo.algorithms import Uncertainty, register_modulation, register_uncertainty


@register_uncertainty("test_constant")
def constant(ctx):
    return Uncertainty(0.3, ctx.algo.alpha * 0.3)


@register_modulation("test_halve")
def halve(x, gamma):
    return 1.0 - x / 2
'''

EXPERIMENT = """
plugins: [cli_test_plugin]
model: {{source: tiny-random, name: tiny-llama, cache_dir: {cache}}}
data: {{heldout_size: 4, synthetic: {{num_problems: 64}}}}
algorithm: {{uncertainty: test_constant, modulation: test_halve, alpha: 1.0, group_size: 4,
            clustering: exact, estimator: discrete}}
train: {{steps: 1, prompts_per_step: 2, micro_batch_size: 4, checkpoint_every: 0}}
rollout: {{engine: hf, max_new_tokens: 4, max_staleness: 0}}
learner: {{num_ranks: 1, zero_stage: 2}}
resources: {{call_timeout_s: 300}}
eval: {{benchmarks: [heldout], before_training: false, limit: 2, max_new_tokens: 4}}
tracking: {{mlflow_uri: null, output_dir: {out}}}
search_space:
  algorithm.uncertainty: {{grid: [test_constant, semantic_entropy]}}
"""


@pytest.fixture()
def experiment(tmp_path: Path, model_cache: Path) -> Path:
    """The plug-in sits next to the experiment, in a directory that is not the working
    directory (Ray adds that one to its workers' path by itself)."""
    directory = tmp_path / "exp"
    directory.mkdir()
    (directory / "cli_test_plugin.py").write_text(PLUGIN)
    path = directory / "plug.yaml"
    path.write_text(EXPERIMENT.format(cache=model_cache, out=tmp_path / "runs"))
    return path


def run(tool: str | None, *args: str, cwd: Path, timeout: int = 120
        ) -> subprocess.CompletedProcess[str]:
    assert tool, "the seedgrpo console scripts are not installed (pip install -e .)"
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def test_sweep_dry_run_accepts_the_plugin_names(experiment: Path, tmp_path: Path) -> None:
    out = run(SWEEP, str(experiment), "--dry-run", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    trials = json.loads(out.stdout)
    assert [t["config"]["algorithm"]["uncertainty"] for t in trials] == [
        "test_constant", "semantic_entropy"]
    assert all(t["config"]["algorithm"]["modulation"] == "test_halve" for t in trials)


def test_an_unknown_name_still_fails_in_one_line(experiment: Path, tmp_path: Path) -> None:
    out = run(SWEEP, str(experiment), "--dry-run", "--set", "algorithm.modulation=test_halv",
              cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "error: --set algorithm.modulation=test_halv: algorithm.modulation = 'test_halv' is "
        "not one of 'none', 'linear', 'exp', 'focal', 'inverse' or 'test_halve' (did you mean "
        "'test_halve'?); a plug-in module listed in plugins: can register more")
    # without the plug-in, its names are unknown
    out = run(SWEEP, str(experiment), "--dry-run", "--set", "plugins=[]", cwd=tmp_path)
    assert out.returncode == 2 and "algorithm.uncertainty = 'test_constant' is not one of " \
        "'semantic_entropy' or 'gcpo'" in out.stderr


def test_a_plugin_that_fails_to_import_exits_2(experiment: Path, tmp_path: Path) -> None:
    (experiment.parent / "cli_test_plugin.py").write_text("import torch.nonexistent_thing\n")
    out = run(SWEEP, str(experiment), "--dry-run", cwd=tmp_path)
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line == (f"error: {experiment}: plugins: module 'cli_test_plugin' failed to import: "
                    "ModuleNotFoundError: No module named 'torch.nonexistent_thing'")


@pytest.mark.slow  # about 40 s: one real training step on Ray with the tiny model
def test_train_uses_the_plugin_in_its_workers(experiment: Path, tmp_path: Path) -> None:
    out = run(TRAIN, str(experiment), "--trial", "0", cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (groups,) = (tmp_path / "runs").rglob("groups.jsonl")
    rows = [json.loads(line) for line in groups.read_text().splitlines()]
    assert len(rows) == 2 and [r["step"] for r in rows] == [1, 1]
    for r in rows:  # the scorer actor imported the plug-in: x = 0.3, f = 1 - 0.3 / 2
        assert r["uncertainty"] == 0.3 and r["factor"] == pytest.approx(0.85)
        assert isinstance(r["prompt_id"], str) and sum(r["cluster_sizes"]) == 4
        assert 0.0 <= r["se"] <= 1.3863

    # the checkpoint's experiment.json lists the plug-in: evaluating it where the plug-in is not
    # importable is one line that names the module and the remedy, not a traceback
    data = tmp_path / "data"
    data.mkdir()
    (data / "aime24.jsonl").write_text(json.dumps({"id": "a-1", "problem": "1 + 1?",
                                                   "answer": "2"}) + "\n")
    (checkpoints,) = (tmp_path / "runs").rglob("checkpoints")
    out = run(EVAL, "--model", str(checkpoints), "--benchmarks", "aime24", "--data-dir",
              str(data), "--engine", "hf", cwd=tmp_path, timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    (line,) = out.stderr.strip().splitlines()
    assert "plugins: module 'cli_test_plugin' not found" in line and "PYTHONPATH" in line

"""seedgrpo-sweep run as a user would: a subprocess, its exit status, its output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import REPO_ROOT

SWEEP = shutil.which("seedgrpo-sweep", path=str(Path(sys.executable).parent))


def run(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    assert SWEEP, "seedgrpo-sweep is not installed in this environment (pip install -e .)"
    return subprocess.run([SWEEP, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_dry_run_lists_the_default_trials() -> None:
    out = run("experiments/alpha_grid.yaml", "--dry-run")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "4 trials"
    assert lines[1].split() == ["#", "name", "algorithm.modulation", "algorithm.alpha",
                                "resources"]
    rows = [line.split()[:4] for line in lines[2:-1]]
    assert rows == [["0", "none", "none", "-"], ["1", "linear-a0.1", "linear", "0.1"],
                    ["2", "linear-a0.5", "linear", "0.5"], ["3", "linear-a1", "linear", "1"]]
    assert "CPU 2, GPU 0" in lines[2]


def test_dry_run_json_gives_the_trial_configs() -> None:
    out = run("experiments/alpha_grid.yaml", "--dry-run", "--json",
              "--set", "algorithm.group_size=8")
    assert out.returncode == 0, out.stderr
    trials = json.loads(out.stdout)
    assert [t["name"] for t in trials] == ["none", "linear-a0.1", "linear-a0.5", "linear-a1"]
    assert trials[2]["config"]["algorithm"]["alpha"] == 0.5
    assert all(t["config"]["algorithm"]["group_size"] == 8 for t in trials)
    assert trials[0]["resources"]["total"] == {"CPU": 2.0}
    assert [b["role"] for b in trials[0]["resources"]["bundles"]][:2] == ["driver", "scorer"]


def test_dry_run_starts_no_ray(tmp_path: Path) -> None:
    code = ("import sys; from seedgrpo.cli.sweep import main; "
            f"rc = main([{str(REPO_ROOT / 'experiments/alpha_grid.yaml')!r}, '--dry-run']); "
            "assert 'ray' not in sys.modules, 'ray imported'; sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr


BAD = {
    "missing file": (None, "no such file"),
    "yaml syntax": ("algorithm: {alpha: [1\n", "YAML syntax error"),
    "unknown key": ("algorithm:\n  alhpa: 1\n",
                    "algorithm.alhpa: unknown key (did you mean 'alpha'?)"),
    "wrong type": ("train:\n  steps: ten\n", "train.steps = 'ten' has the wrong type"),
    "negative alpha": ("algorithm:\n  alpha: -0.5\n", "algorithm.alpha = -0.5 must be >= 0"),
    "G below 2": ("algorithm:\n  group_size: 1\n", "algorithm.group_size = 1 must be >= 2"),
    "unknown modulation": ("algorithm:\n  modulation: cubic\n",
                           "algorithm.modulation = 'cubic' is not one of 'none', 'linear'"),
    "empty search space": ("search_space: {}\n", "search_space: is empty"),
    "grid with optuna": ("tune: {search_alg: optuna}\nsearch_space:\n"
                         "  algorithm.alpha: {grid: [0.1, 1.0]}\n",
                         "search_space.algorithm.alpha: is a grid, but tune.search_alg 'optuna'"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_exits_2_with_one_clear_message(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    path = tmp_path / "exp.yaml"
    if text is not None:
        path.write_text(text)
    out = run(str(path), "--dry-run", cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stdout == ""
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith(f"error: {path}"), out.stderr
    assert expected in out.stderr, out.stderr


def test_bad_override_exits_2() -> None:
    out = run("experiments/alpha_grid.yaml", "--dry-run", "--set", "algorithm.alpha=-1")
    assert out.returncode == 2
    assert "error: --set algorithm.alpha=-1: algorithm.alpha = -1 must be >= 0" in out.stderr


def test_json_without_dry_run_is_refused() -> None:
    out = run("experiments/alpha_grid.yaml", "--json")
    assert out.returncode == 2 and "--json lists trials and needs --dry-run" in out.stderr


TINY = """
model: {{source: tiny-random, name: tiny-llama, cache_dir: {cache}}}
data: {{heldout_size: 4, fewshot: 1, synthetic: {{num_problems: 64}}}}
train: {{steps: 1, prompts_per_step: 2, micro_batch_size: 4}}
rollout: {{engine: hf, max_new_tokens: 8}}
learner: {{num_ranks: 1}}
eval: {{every_steps: 1, max_new_tokens: 8}}
tracking: {{mlflow_uri: "sqlite:///mlflow.db", output_dir: runs}}
search_space:
  algorithm.alpha: {{grid: [0.5, 1.0]}}
"""


@pytest.fixture()
def tiny(tmp_path: Path, model_cache: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(cache=model_cache))
    return path


@pytest.mark.parametrize("args, message", [
    (["--num-cpus", "0"], "--num-cpus must be at least 1"),
    (["--address", "auto", "--num-cpus", "2"], "--num-cpus sizes the local Ray"),
    # the two --resume cases import MLflow: about 10 s each
    pytest.param(["--resume"], "no sweep of this experiment", marks=pytest.mark.slow),
    pytest.param(["--resume", "/nonexistent/sweep"], "is not a sweep directory",
                 marks=pytest.mark.slow),
    (["--set", "eval.benchmarks=[heldout, aime24]", "--set", "eval.data_dir=/nonexistent"],
     "benchmark 'aime24'"),
])
def test_sweep_refuses_bad_input_before_ray(tiny: Path, tmp_path: Path, args: list[str],
                                            message: str) -> None:
    out = run(str(tiny), *args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing was started or tracked


@pytest.mark.slow
def test_sweep_that_can_never_fit_exits_instead_of_waiting(tiny: Path, tmp_path: Path) -> None:
    out = run(str(tiny), "--set", "resources.learner_rank.gpus=1", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "a trial needs GPU 1 but this Ray has GPU 0 in all" in out.stderr
    assert "Traceback" not in out.stderr


def test_resume_of_a_changed_experiment_is_refused(tiny: Path, tmp_path: Path) -> None:
    from seedgrpo.config import load_experiment
    from seedgrpo.sweep.runner import SweepError, SweepOptions, prepare_sweep_dir

    loaded = load_experiment(tiny)
    sweep, record, resumed = prepare_sweep_dir(loaded, [], SweepOptions())
    assert not resumed and sweep.read().fingerprint == record.fingerprint
    same, _, resumed = prepare_sweep_dir(loaded, [], SweepOptions(resume=True))
    assert resumed and same == sweep
    changed = load_experiment(tiny, ["train.lr=0.5"])
    with pytest.raises(SweepError, match="this config differs"):
        prepare_sweep_dir(changed, ["train.lr=0.5"], SweepOptions(resume=True))

"""A sweep over model names that hold '/' runs end to end.

Trial names used to be pasted from the raw values: a grid over ``model.name`` with hub ids or
paths passed ``--dry-run`` and then failed inside Ray Tune ("Trial dirname must not contain
'/'"), after every model had been fetched. Two local copies of the tiny model, under parents
of different names but with the same last path component, stand in for two hub ids offline:
their trial names must be distinct slugs, and their directories inside the sweep directory.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from .conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SLUG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")

EXPERIMENT = """
model: {{source: hf, name: {first}}}
data: {{heldout_size: 4, fewshot: 1, synthetic: {{num_problems: 64}}}}
algorithm: {{group_size: 4, alpha: 0.5, clustering: exact}}
train: {{steps: 1, prompts_per_step: 2, lr: 1.0e-3, micro_batch_size: 4, checkpoint_every: 1}}
rollout: {{engine: hf, max_new_tokens: 8}}
learner: {{num_ranks: 1, zero_stage: 2}}
resources: {{call_timeout_s: 300}}
eval: {{every_steps: 1, max_new_tokens: 8, before_training: false}}
tracking: {{mlflow_uri: "sqlite:///mlflow.db", output_dir: runs}}
tune: {{metric: eval/heldout/pass_at_1, max_concurrent_trials: 1}}
search_space:
  model.name: {{grid: [{first}, {second}]}}
"""


def test_a_grid_over_model_paths_runs_with_safe_trial_names(tmp_path: Path,
                                                            model_cache: Path) -> None:
    from seedgrpo.models.tiny import tiny_model_dir

    tiny = tiny_model_dir("tiny-llama", str(model_cache))
    models = [tmp_path / "models" / org / "tiny-llama" for org in ("org-a", "org-b")]
    for target in models:
        shutil.copytree(tiny, target)
    experiment = tmp_path / "by_model.yaml"
    experiment.write_text(EXPERIMENT.format(first=models[0], second=models[1]))

    listed = run_cli("seedgrpo-sweep", str(experiment), "--dry-run", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr[-3000:]
    names = [t["name"] for t in json.loads(listed.stdout)]
    assert len(names) == 2 and len(set(names)) == 2, names
    assert all(SLUG.match(n) and n.startswith("tiny-llama-") for n in names), names

    out = run_cli("seedgrpo-sweep", str(experiment), "--no-report", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    root = tmp_path / "runs" / "by_model"
    sweep_dir = (root / (root / "latest").read_text().strip()).resolve()
    assert json.loads((sweep_dir / "sweep.json").read_text())["status"] == "FINISHED"
    trials = sweep_dir / "trials"
    finished = sorted(t.name for t in trials.iterdir() if (t / "result.json").is_file())
    assert finished == sorted(names), (finished, names)
    for name in names:
        assert (trials / name).resolve().parent == trials.resolve()
    for tune_trial in (sweep_dir / "tune").rglob("*"):  # Tune's own directories, too
        assert tune_trial.resolve().is_relative_to(sweep_dir)

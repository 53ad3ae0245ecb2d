"""Resume: a run restarted from its checkpoint continues exactly as the uninterrupted run.

On the bundled SmolLM2-135M (the tiny random model never earns a reward, so its weights would
never move and the comparison would prove nothing): the same prompts, the same rewards and
bit-identical weights after 1 + 1 steps as after 2 (the learner's optimizer state, the
sampler cursor and the seeds all cross the restart).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seedgrpo.config import ExperimentConfig
from seedgrpo.runtime.trial import TrialRunner

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # three short runs of a 135M model


def _config(cache: Path, steps: int) -> ExperimentConfig:
    return ExperimentConfig.model_validate({
        "model": {"source": "bundled", "name": "smollm2-135m-instruct", "cache_dir": str(cache)},
        "data": {"fewshot": 2, "heldout_size": 8, "synthetic": {"num_problems": 100}},
        "algorithm": {"group_size": 4, "alpha": 0.5, "clustering": "exact"},
        "train": {"steps": steps, "prompts_per_step": 2, "lr": 1e-5, "micro_batch_size": 4,
                  "checkpoint_every": 1, "seed": 3},
        # 32 tokens: the two-shot answer format ("4 - 18 = -14. The answer is \\boxed{-14}.") is
        # about 20 tokens; a shorter budget cuts every box off and no reward is ever earned
        "rollout": {"engine": "hf", "max_new_tokens": 32},
        "learner": {"num_ranks": 2, "zero_stage": 2},
        "eval": {"every_steps": 0, "before_training": False, "max_new_tokens": 8, "limit": 2},
        "tracking": {"mlflow_uri": None},
    })


def _base_weights(cache: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from seedgrpo.config.sections import ModelConfig
    from seedgrpo.models import resolve_model_dir

    model_dir = resolve_model_dir(ModelConfig(source="bundled", cache_dir=str(cache)))
    return load_file(model_dir / "model.safetensors")


def _weights(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "checkpoints" / f"step_{step:06d}" /
                       "mp_rank_00_model_states.pt", map_location="cpu", weights_only=False)
    return state["module"]


def test_resume_gives_the_same_batches_and_weights(ray_local, model_cache: Path,
                                                   tmp_path: Path) -> None:
    full_reports: dict[int, dict] = {}
    TrialRunner(_config(model_cache, 2), tmp_path / "full",
                report=lambda s, m: full_reports.__setitem__(s, m)).run()

    split_reports: dict[int, dict] = {}
    TrialRunner(_config(model_cache, 1), tmp_path / "split",
                report=lambda s, m: split_reports.__setitem__(s, m)).run()
    TrialRunner(_config(model_cache, 2), tmp_path / "split",
                report=lambda s, m: split_reports.__setitem__(s, m)).run()

    assert sorted(split_reports) == [1, 2]
    for step in (1, 2):  # same prompts and samples: same rewards and lengths
        for key in ("train/reward_mean", "train/response_len_mean", "train/se_mean"):
            assert split_reports[step][key] == full_reports[step][key], (step, key)
    # the comparison proves something only if some group earned a non-zero advantage
    assert min(full_reports[s]["train/zero_adv_frac"] for s in (1, 2)) < 1.0
    full, split = _weights(tmp_path / "full", 2), _weights(tmp_path / "split", 2)
    base = _base_weights(model_cache)
    assert any(not torch.equal(full[k], base[k]) for k in base)  # training moved the weights
    for name in full:
        assert torch.equal(full[name], split[name]), name

"""The GPU recipes train on Oat's schedule, and the released-code arm is what it says it is.

SEED-GRPO builds on Oat (sail-sg/oat, sail-sg/understand-r1-zero): rollouts of 128 prompts x 8
updated in optimizer batches of 128 responses (8 clipped AdamW steps per rollout), AdamW betas
(0.9, 0.95). A recipe that drifts from these numbers trains something other than the published
method, and nothing else would notice. Every trial of every recipe is checked, not only the base
config, since a search space can change what a trial trains. docs/ALGORITHMS.md section 7 gives
each number's source.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seedgrpo.config import expand_trials, load_experiment, total_resources
from seedgrpo.config.schema import ExperimentConfig
from tests.conftest import REPO_ROOT

PAPER = REPO_ROOT / "experiments" / "paper"
PAPER_RECIPES = sorted(PAPER.glob("*.yaml"))
RELEASED_GPU = PAPER / "released_code_3p_qwen_math_7b.yaml"
READINGS_CPU = REPO_ROOT / "experiments" / "paper_vs_released_3p.yaml"
SWEEP = shutil.which("seedgrpo-sweep", path=str(Path(sys.executable).parent))

# Oat's numbers: (config path, value, the upstream flag or default its comment must name)
OAT = [
    ("train.prompts_per_step", 128, "--rollout_batch_size 128"),
    ("train.mini_batch_size", 128, "--train_batch_size 128"),
    ("train.ppo_epochs", 1, "--num_ppo_epochs 1"),
    ("train.lr", 1e-6, "--learning_rate 0.000001"),
    ("train.lr_schedule", "constant", "--lr_scheduler constant"),
    ("train.warmup_steps", 0, "lr_warmup_ratio"),
    ("train.adam_betas", [0.9, 0.95], "adam_beta_2 0.95"),
    ("train.adam_eps", 1e-8, "FusedAdam eps 1e-8"),
    ("train.weight_decay", 0.0, "l2 0.0"),
    ("train.grad_clip", 1.0, "max_norm 1.0"),
    ("algorithm.clip_eps", 0.2, "cliprange 0.2"),
    ("algorithm.clip_eps_high", None, None),
    ("algorithm.kl_coef", 0.0, "--beta 0"),
    ("algorithm.baseline", "dr_grpo", "--critic_type drgrpo"),
    ("algorithm.loss_aggregation", "dr_grpo", "--critic_type drgrpo"),
    ("rollout.temperature", 1.0, "--temperature 1"),
    ("rollout.top_p", 1.0, "--top_p 1"),
    ("rollout.max_new_tokens", 3000, "--generate_max_length 3000"),
    ("rollout.max_staleness", 0, "sync_params_every 1"),
    ("data.template", "qwen_math", "--prompt_template qwen_math"),
    ("learner.zero_stage", 2, "--zero-stage 2"),
    ("eval.every_steps", 16, "--eval_steps 16"),
    ("eval.max_new_tokens", 3000, "--eval_generate_max_length 3000"),
    ("eval.temperature", 0.0, "--eval_temperature 0"),
    ("eval.samples", 1, None),
]


def value_at(cfg: ExperimentConfig, dotted: str) -> object:
    obj: object = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def recipe_line(text: str, dotted: str) -> str:
    """The line of a block-style YAML file that sets the last key of ``dotted``, in its section
    (the first ``<key>:`` after the section's header)."""
    section, key = dotted.split(".")
    start = re.search(rf"^{section}:\s*$", text, re.M)
    assert start, f"section {section} is not written in block style"
    match = re.search(rf"^\s+{key}:.*$", text[start.end():], re.M)
    assert match, f"{dotted} is not written in the recipe"
    return match.group(0)


def test_the_paper_recipes_are_the_ones_expected() -> None:
    names = [p.name for p in PAPER_RECIPES]
    assert names == ["alpha_grid_7b.yaml", "released_code_3p_qwen_math_7b.yaml",
                     "seed_grpo_qwen_math_1_5b.yaml", "seed_grpo_qwen_math_7b.yaml"], names


@pytest.mark.parametrize("path", PAPER_RECIPES, ids=lambda p: p.stem)
def test_every_trial_of_a_paper_recipe_trains_on_oats_schedule(path: Path) -> None:
    trials = expand_trials(load_experiment(path).config)
    assert trials
    for trial in trials:
        cfg = trial.config
        for dotted, expected, _ in OAT:
            assert value_at(cfg, dotted) == expected, (path.name, trial.name, dotted)
        responses = cfg.train.prompts_per_step * cfg.algorithm.group_size
        steps_per_rollout = responses // cfg.train.mini_batch_size
        assert responses % cfg.train.mini_batch_size == 0
        # 8 optimizer steps per rollout at G 8, as Oat; G 16 keeps Oat's optimizer batch
        assert steps_per_rollout == cfg.algorithm.group_size, (trial.name, steps_per_rollout)
        assert cfg.model.max_seq_len >= 1024 + cfg.rollout.max_new_tokens  # Oat's prompt room
        assert cfg.model.dtype == "bfloat16"
        assert "gpu" in {k.lower() for k in total_resources(cfg)}


@pytest.mark.parametrize("path", PAPER_RECIPES, ids=lambda p: p.stem)
def test_every_oat_number_names_its_source_beside_it(path: Path) -> None:
    text = path.read_text()
    for anchor in ("sail-sg/understand-r1-zero", "sail-sg/oat", "arXiv 2505.12346"):
        assert anchor in text, (path.name, anchor)
    for dotted, _, flag in OAT:
        if flag is None:
            continue
        line = recipe_line(text, dotted)
        assert "#" in line and flag in line.split("#", 1)[1], (path.name, line)


@pytest.mark.parametrize("path", [p for p in PAPER_RECIPES if p != RELEASED_GPU],
                         ids=lambda p: p.stem)
def test_the_paper_recipes_read_the_paper(path: Path) -> None:
    cfg = load_experiment(path).config
    assert cfg.algorithm.clustering == "math_verify"
    assert cfg.algorithm.uncertainty == "semantic_entropy"
    modulated = [t.config.algorithm for t in expand_trials(cfg)
                 if t.config.algorithm.modulation != "none"]
    assert {a.modulation for a in modulated} == {"linear"}
    assert {a.alpha for a in modulated} == {0.01, 0.02, 0.03}  # the paper's Table 4


def test_the_released_code_arm_is_the_third_party_reading_on_gpu() -> None:
    text = RELEASED_GPU.read_text()
    assert "3p" in RELEASED_GPU.stem
    assert "liv-daliberti/maxent-grpo" in text and "THIRD PARTY" in text
    trials = expand_trials(load_experiment(RELEASED_GPU).config)
    assert [t.name for t in trials] == ["none", "inverse"]
    arm = trials[1].config.algorithm
    assert (arm.clustering, arm.modulation, arm.alpha) == ("exact", "inverse", 0.0417)
    for dotted in ("algorithm.clustering", "algorithm.modulation", "algorithm.alpha"):
        assert "[3p]" in recipe_line(text, dotted), dotted


def test_the_cpu_comparison_holds_both_readings_and_their_baselines() -> None:
    text = READINGS_CPU.read_text()
    assert "liv-daliberti/maxent-grpo" in text and "THIRD PARTY" in text
    cfg = load_experiment(READINGS_CPU).config
    trials = {t.name: t.config.algorithm for t in expand_trials(cfg)}
    paper = trials["linear-a0.02-math_verify"]
    released = trials["inverse-a0.0417-exact"]
    assert (paper.modulation, paper.alpha, paper.clustering) == ("linear", 0.02, "math_verify")
    assert (released.modulation, released.alpha, released.clustering) == (
        "inverse", 0.0417, "exact")
    # each reading has a `none` baseline with its own clustering, for the report's pairing
    assert {(a.modulation, a.clustering) for a in trials.values() if a.modulation == "none"} == {
        ("none", "math_verify"), ("none", "exact")}
    assert len(trials) == 10
    # CPU-sized: the bundled model, no GPU, Oat's update shape in miniature
    assert cfg.model.source == "bundled"
    assert not {k for k, v in total_resources(cfg).items() if k.lower() == "gpu" and v}
    assert cfg.train.prompts_per_step * cfg.algorithm.group_size // cfg.train.mini_batch_size > 1
    assert cfg.train.adam_betas == [0.9, 0.95]


@pytest.mark.parametrize("path", [*PAPER_RECIPES, READINGS_CPU], ids=lambda p: p.stem)
def test_the_recipes_pass_the_real_dry_run(path: Path) -> None:
    assert SWEEP, "seedgrpo-sweep is not installed in this environment (pip install -e .)"
    out = subprocess.run([SWEEP, str(path.relative_to(REPO_ROOT)), "--dry-run"],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    count = len(expand_trials(load_experiment(path).config))
    assert out.stdout.strip().splitlines()[-1] == f"{count} trials"

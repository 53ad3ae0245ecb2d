"""The bundled SmolLM2-135M on the synthetic arithmetic task: one training run, three checks.

The tiny random model never earns a reward, so its weights never move; these checks need a
model whose update is real. One run (``trained``, 4 steps, 2 DeepSpeed ranks at ZeRO-2, the
next batch generated while the current one is learned) and its repeat serve all three:

1. **It learns.** The held-out set is fixed (64 problems, chosen by the seed, never trained
   on); each evaluation draws 4 samples per problem at the training temperature, so its score
   is the expected reward of the policy. Per problem, d = (correct samples after) - (correct
   samples before), from -4 to 4. Under the null hypothesis that training does not change the
   policy, the two evaluations of a problem are exchangeable, so each d is as likely to be -d:
   the sign-flip (paired permutation) test, exact by dynamic programming. Problems are the
   units (the 4 samples of one problem are not independent). The test requires p < 0.05 and a
   rise of the mean reward of at least 0.05. The two evaluations use the same sampling seed, so
   an unchanged policy would give identical samples: d = 0, never a false rise.
2. **Warm actors equal cold ones.** The same trial again, on the first run's actors (reset to
   the base weights, optimizer, scheduler and RNGs, as a sweep's next trial is), gives
   bit-identical metrics and weights to the first run, which started cold.
3. **A resumed run continues the same sequence.** That second trial is interrupted after its
   checkpoint at step 2 and started again (cold): it learns from the same batches (the batch
   generated ahead is kept with the checkpoint) and ends with bit-identical weights.

A checkpoint of this model is about 2 GB (fp32 weights plus AdamW's master copy and two
moments), so the runs keep digests of the weights they compare (SHA-256 per tensor: equal
digests are equal bits) and each run directory is deleted as soon as nothing reads it: the
module needs about 4 GB of disk at its peak, not the 8 GB its four checkpoints would hold.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch

from seedgrpo.config import ExperimentConfig
from seedgrpo.runtime.trial import TrainingLoop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

STEPS = 4
HELDOUT = 64  # fewer changes the training pool too: 48 gave p = 0.19 in one run
# what only the run itself decides (timings, memory); everything else must repeat exactly
UNTIMED = ("time/", "throughput/")


def _config(cache: Path, *, evaluate: bool, alpha: float = 0.5, **train: Any
            ) -> ExperimentConfig:
    return ExperimentConfig.model_validate({
        "model": {"source": "bundled", "name": "smollm2-135m-instruct",
                  "cache_dir": str(cache)},
        "data": {"fewshot": 1, "heldout_size": HELDOUT, "synthetic": {"num_problems": 500}},
        "algorithm": {"modulation": "linear", "alpha": alpha, "group_size": 4,
                      "clustering": "exact"},
        "train": {"steps": STEPS, "prompts_per_step": 8, "lr": 3e-5, "micro_batch_size": 8,
                  "checkpoint_every": 2, "seed": 0, **train},
        "rollout": {"engine": "hf", "max_new_tokens": 40, "temperature": 1.0,
                    "max_staleness": 1},
        "learner": {"num_ranks": 2, "zero_stage": 2},
        "eval": ({"benchmarks": ["heldout"], "every_steps": 0, "samples": 4,
                  "temperature": 1.0, "max_new_tokens": 40} if evaluate else
                 {"benchmarks": [], "every_steps": 0, "before_training": False}),
        "tracking": {"mlflow_uri": None},
    })


def _digests(weights: dict[str, torch.Tensor]) -> dict[str, str]:
    """Each tensor's dtype, shape and SHA-256 of its bytes: equal digests are equal bits."""
    return {name: f"{t.dtype} {tuple(t.shape)} "
                  f"{hashlib.sha256(t.contiguous().view(torch.uint8).numpy()).hexdigest()}"
            for name, t in weights.items()}


def _weights(run_dir: Path, step: int) -> dict[str, str]:
    """The digests of the weights in ``run_dir``'s checkpoint at ``step``."""
    state = torch.load(run_dir / "checkpoints" / f"step_{step:06d}" /
                       "mp_rank_00_model_states.pt", map_location="cpu", weights_only=False)
    return _digests(state["module"])


def _base_weights(cache: Path) -> dict[str, str]:
    from safetensors.torch import load_file

    from seedgrpo.config.sections import ModelConfig
    from seedgrpo.models import resolve_model_dir

    model_dir = resolve_model_dir(ModelConfig(source="bundled", cache_dir=str(cache)))
    return _digests(load_file(model_dir / "model.safetensors"))


def _untimed(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if not k.startswith(UNTIMED)}


@pytest.fixture(scope="module")
def trained(ray_local, model_cache: Path, tmp_path_factory) -> dict[str, Any]:
    """The training run every check reads; its actors stay up for the warm-trial check. Its
    checkpoints (about 4 GB) go once the weights at steps 2 and 4 are digested."""
    out = tmp_path_factory.mktemp("trained")
    reports: dict[int, dict] = {}
    runner = TrainingLoop(_config(model_cache, evaluate=True), out,
                         report=lambda s, m: reports.__setitem__(s, m))
    t0 = time.monotonic()
    runner.run(keep_actors=True)
    minutes = (time.monotonic() - t0) / 60
    weights = {step: _weights(out, step) for step in (2, STEPS)}
    shutil.rmtree(out / "checkpoints")
    yield {"dir": out, "reports": reports, "runner": runner, "minutes": minutes,
           "weights": weights}
    runner.shutdown()
    shutil.rmtree(out, ignore_errors=True)


def sign_flip_p(diffs: list[int]) -> float:
    """Exact one-sided p of the sign-flip test: P(sum of +-|d_i| >= sum of d_i) over the 2^n
    equally likely sign assignments (zeros dropped).

    >>> sign_flip_p([1, 1, 1, 1, 1])  # 1 assignment of 32 reaches 5
    0.03125
    >>> sign_flip_p([2, -1]), sign_flip_p([])  # sums 3, 1, -1, -3: two of four reach 1
    (0.5, 1.0)
    """
    nonzero = [abs(d) for d in diffs if d]
    observed = sum(d for d in diffs if d)
    counts = {0: 1}  # sum -> number of sign assignments reaching it
    for d in nonzero:
        nxt: dict[int, int] = defaultdict(int)
        for total, ways in counts.items():
            nxt[total + d] += ways
            nxt[total - d] += ways
        counts = nxt
    return sum(w for t, w in counts.items() if t >= observed) / 2 ** len(nonzero)


def _correct_per_problem(path: Path) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for line in path.read_text().splitlines():
        row = json.loads(line)
        counts[row["id"]] += bool(row["correct"])
    return counts


def test_training_raises_heldout_reward_beyond_chance(trained: dict[str, Any]) -> None:
    out, reports = trained["dir"], trained["reports"]
    before = _correct_per_problem(out / "eval" / "samples_step_000000.jsonl")
    after = _correct_per_problem(out / "eval" / f"samples_step_{STEPS:06d}.jsonl")
    assert before.keys() == after.keys() and len(before) == HELDOUT
    diffs = [after[i] - before[i] for i in before]
    up, down = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    p = sign_flip_p(diffs)
    mean_before = reports[0]["eval/heldout/pass_at_1"]
    mean_after = reports[STEPS]["eval/heldout/pass_at_1"]
    summary = (f"held-out reward {mean_before:.3f} -> {mean_after:.3f}; {up} problems up, "
               f"{down} down, sign-flip test p = {p:.2g}; {trained['minutes']:.1f} min")
    print(summary)
    assert mean_after >= mean_before + 0.05, summary
    assert p < 0.05, summary
    # every batch after the first came from weights one update old, and was learned from
    assert [reports[s]["train/staleness"] for s in range(1, STEPS + 1)] == [0, 1, 1, 1]
    assert min(reports[s]["train/zero_adv_frac"] for s in range(1, STEPS + 1)) < 1.0


@pytest.fixture(scope="module")
def interrupted(trained: dict[str, Any], model_cache: Path, tmp_path_factory) -> dict[str, Any]:
    """The same trial again on the first run's actors, reset as a sweep's next trial's are,
    then interrupted (Ctrl-C) after its checkpoint at step 2, which ends those actors. It
    keeps one checkpoint (the resume check needs only the newest)."""
    out = tmp_path_factory.mktemp("interrupted")
    reports: dict[int, dict] = {}

    def interrupt(step: int, metrics: dict) -> None:
        reports[step] = metrics
        if step == 2:
            raise KeyboardInterrupt

    runner = TrainingLoop(_config(model_cache, evaluate=False, keep_checkpoints=1), out,
                         actors=trained["runner"].actors, report=interrupt)
    trained["runner"].actors = None  # the new trial owns them now (and the interrupt ends them)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    yield {"dir": out, "reports": reports, "reused": runner.reused_actors,
           "weights": {2: _weights(out, 2)}}
    shutil.rmtree(out, ignore_errors=True)


def test_a_trial_on_reused_actors_equals_the_same_trial_started_cold(
        trained: dict[str, Any], interrupted: dict[str, Any], model_cache: Path) -> None:
    assert interrupted["reused"]
    assert sorted(interrupted["reports"]) == [1, 2]
    for step in (1, 2):  # evaluation never touches the training path, so only it may differ
        cold = {k: v for k, v in _untimed(trained["reports"][step]).items()
                if not k.startswith("eval/")}
        assert _untimed(interrupted["reports"][step]) == cold, step
    # the first run moved the weights, so a reset that kept any of them would show
    base, moved = _base_weights(model_cache), trained["weights"][STEPS]
    layout = {k: base[k].rsplit(" ", 1)[0] for k in base}  # dtype and shape, not the bits
    assert {k: moved[k].rsplit(" ", 1)[0] for k in base} == layout
    assert any(moved[k] != base[k] for k in base)
    assert interrupted["weights"][2] == trained["weights"][2]


def test_resume_gives_the_same_batches_and_weights(trained: dict[str, Any],
                                                   interrupted: dict[str, Any],
                                                   model_cache: Path) -> None:
    resumed: dict[int, dict] = {}
    cfg = _config(model_cache, evaluate=False, keep_checkpoints=1)
    TrainingLoop(cfg, interrupted["dir"], report=lambda s, m: resumed.__setitem__(s, m)).run()
    assert sorted(resumed) == [3, 4]
    full = trained["reports"]
    for step in (3, 4):  # the same prompts, samples, scores and update statistics
        for key in ("train/reward_mean", "train/response_len_mean", "train/se_mean",
                    "train/staleness", "train/loss", "train/grad_norm"):
            assert resumed[step][key] == full[step][key], (step, key)
    assert _weights(interrupted["dir"], STEPS) == trained["weights"][STEPS]

"""The gradient-variance diagnostic and GCPO's sentence encoder on real actors (tiny model,
real Ray, real DeepSpeed ZeRO-2 ranks, real scorer)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import ray

from seedgrpo.config import ExperimentConfig
from seedgrpo.models import load_tokenizer, resolve_model_dir
from seedgrpo.rollout.types import Completion
from seedgrpo.runtime.actor_set import acquire
from seedgrpo.runtime.batches import StepBatch, TrainPrompt
from seedgrpo.runtime.gradient_variance import submit_probe
from seedgrpo.runtime.trial import TrainingFailed, TrainingLoop
from seedgrpo.tracking.groups_file import read_group_rows

from .conftest import tiny_config as _tiny_config

DIAG = ("diag/gradvar_spearman_se", "diag/gradvar_spearman_u", "diag/gradvar_groups",
        "diag/gradvar_excluded", "time/gradvar_probe_s")


def tiny_config(cache: str, *, diagnostics: dict | None = None, **sections) -> dict:
    """``conftest.tiny_config`` with a ``diagnostics`` section."""
    return {**_tiny_config(cache, **sections), "diagnostics": diagnostics or {}}


def _crafted_batch(tokenizer, rewards: list[list[float]]) -> tuple[StepBatch, list]:
    """Hand-made groups (one per reward row) with their rewards: group g's response i is
    " answer {g}{i % 2}", so responses 0 and 2 (and 1 and 3) of a group are identical."""
    prompt = tokenizer("Compute 2 + 3.", add_special_tokens=False)["input_ids"]
    groups = []
    for g, row in enumerate(rewards):
        group = []
        for i in range(len(row)):
            ids = tokenizer(f" answer {g}{i % 2}", add_special_tokens=False)["input_ids"]
            group.append(Completion(ids, "", [-1.0] * len(ids), truncated=False))
        groups.append(group)
    mean = [sum(r) / len(r) for r in rewards]
    scored = SimpleNamespace(
        scores=[SimpleNamespace(rewards=r, se=0.0, uncertainty=0.0) for r in rewards],
        advantages=[[x - m for x in r] for r, m in zip(rewards, mean, strict=True)])
    batch = StepBatch(1, [TrainPrompt(str(g), prompt, "5") for g in range(len(rewards))],
                      [ray.put(groups)], [], scored=ray.put(scored))
    return batch, groups


@pytest.mark.slow  # about a minute: two DeepSpeed builds of the tiny model
def test_probe_measures_pi_old_and_leaves_deepspeed_untouched(ray_local, model_cache: Path
                                                              ) -> None:
    """3 groups of 4 over 2 ranks: group 1 is split across the ranks. The probe (submitted
    before the update, as the trial does) gives identical responses identical projections
    even on different ranks (one basis), 0 for a response whose advantage is 0, None for a
    group whose advantages are all zero; and the update after it is bit for bit the update
    without it (no gradient, optimizer state or weight touched)."""
    cfg = ExperimentConfig.model_validate(tiny_config(
        str(model_cache), train={"prompts_per_step": 3, "micro_batch_size": 2},
        diagnostics={"gradient_variance_every": 1, "gradient_variance_directions": 8}))
    model_dir = resolve_model_dir(cfg.model)
    actors, _ = acquire(None, cfg, model_dir, "hf")
    try:
        batch, _ = _crafted_batch(load_tokenizer(model_dir),
                                  [[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 0.0],
                                   [0.75, 0.5, 0.75, 0.0]])
        before = ray.get(actors.learners.export_state())
        probes = actors.learners.gradient_probe(batch, seed=11, directions=8)
        train = actors.learners.call("train", batch.prompt_ids, batch.shards, batch.scored,
                                     False)
        results = actors.learners.wait(probes, "probe")
        actors.learners.wait(train, "learning")
        with_probe = ray.get(actors.learners.export_state())
        rows = [row for r in results for row in r["projections"]]
        assert [len(r["projections"]) for r in results] == [6, 6]
        assert all(r is None for r in rows[:4])  # group 0: all rewards equal
        # group 1 is split: responses 4, 5 on rank 0, the identical 6, 7 on rank 1
        np.testing.assert_allclose(rows[4], rows[6], rtol=1e-5)
        np.testing.assert_allclose(rows[5], rows[7], rtol=1e-5)
        np.testing.assert_allclose(rows[8], rows[10], rtol=1e-5)
        assert rows[9] == [0.0] * 8  # A = 0.5 - mean 0.5
        assert all(abs(v) > 0.0 for v in rows[4] + rows[11])
        # the same probe again, on the updated weights: different (pi_old was measured above)
        again = actors.learners.wait(actors.learners.gradient_probe(batch, seed=11,
                                                                    directions=8), "probe")
        assert again[0]["projections"][4] != rows[4]

        actors.reset(cfg)  # the same trial without the probe
        assert all(ray.get(actors.learners.export_state())[k].equal(v)
                   for k, v in before.items())
        actors.learners.wait(actors.learners.call("train", batch.prompt_ids, batch.shards,
                                                  batch.scored, False), "learning")
        without = ray.get(actors.learners.export_state())
        assert with_probe.keys() == without.keys()
        assert all(with_probe[k].equal(without[k]) for k in without)
        assert any(not with_probe[k].equal(before[k]) for k in before)  # it did learn
    finally:
        actors.shutdown()


@pytest.mark.slow  # about a minute: two steps of a tiny trial
def test_trial_logs_the_diagnostic_every_step(ray_local, model_cache: Path, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """SEED-GRPO with the diagnostic every step: U from the policy's own embeddings (asked of
    the learners on diagnostic steps only), rows with grad_variance, and a NaN correlation
    that says why (the tiny random model earns no reward: every group is left out)."""
    cfg = ExperimentConfig.model_validate(tiny_config(
        str(model_cache), train={"steps": 2, "checkpoint_every": 0},
        eval={"every_steps": 0, "before_training": False, "max_new_tokens": 4},
        diagnostics={"gradient_variance_every": 1, "gradient_variance_directions": 4}))
    reports: list[tuple[int, dict]] = []
    with caplog.at_level(logging.INFO, logger="seedgrpo.runtime.gradient_variance"):
        TrainingLoop(cfg, tmp_path, report=lambda s, m: reports.append((s, m))).run()
    assert [s for s, _ in reports] == [1, 2]
    rows = read_group_rows(tmp_path / "train" / "groups.jsonl")
    assert [r["step"] for r in rows] == [1, 1, 2, 2]
    for step, metrics in reports:
        assert set(DIAG) <= set(metrics)
        step_rows = [r for r in rows if r["step"] == step]
        measured = [r["grad_variance"] for r in step_rows if r["grad_variance"] is not None]
        assert metrics["diag/gradvar_groups"] == len(measured)
        assert metrics["diag/gradvar_excluded"] == len(step_rows) - len(measured)
        assert all(v >= 0.0 and math.isfinite(v) for v in measured)
        assert metrics["time/gradvar_probe_s"] > 0.0
        if metrics["diag/gradvar_groups"] < 3:  # 2 prompts a step: never enough groups
            assert math.isnan(metrics["diag/gradvar_spearman_se"])
            assert math.isnan(metrics["diag/gradvar_spearman_u"])
    assert "diag/gradvar_spearman_* is NaN" in caplog.text and "(< 3)" in caplog.text


@pytest.mark.slow  # about a minute
def test_probe_results_become_finite_correlations(ray_local, model_cache: Path) -> None:
    """The driver's half on real actors, with rewards that carry signal: 4 measured groups of
    5 give finite correlations with SE and with U (from the learners' embeddings), and each
    row gets its group's measure."""
    cfg = ExperimentConfig.model_validate(tiny_config(
        str(model_cache), train={"prompts_per_step": 5, "micro_batch_size": 2},
        algorithm={"group_size": 4, "alpha": 0.5, "clustering": "exact"},
        diagnostics={"gradient_variance_every": 1, "gradient_variance_directions": 8}))
    model_dir = resolve_model_dir(cfg.model)
    actors, _ = acquire(None, cfg, model_dir, "hf")
    try:
        batch, _ = _crafted_batch(load_tokenizer(model_dir), [
            [1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0],
            [1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
        pending = submit_probe(cfg, actors, batch)
        scored = SimpleNamespace(scores=[SimpleNamespace(se=se, uncertainty=0.0) for se in (
            0.2, 0.9, 0.0, 0.4, 0.6)], rows=[{"se": 0.0} for _ in range(5)])
        metrics = pending.collect(scored)
    finally:
        actors.shutdown()
    assert metrics["diag/gradvar_groups"] == 4 and metrics["diag/gradvar_excluded"] == 1
    assert -1.0 <= metrics["diag/gradvar_spearman_se"] <= 1.0
    assert -1.0 <= metrics["diag/gradvar_spearman_u"] <= 1.0
    assert scored.rows[2]["grad_variance"] is None
    assert all(scored.rows[i]["grad_variance"] > 0.0 for i in (0, 1, 3, 4))


@pytest.mark.slow  # about a minute: loads MiniLM in the scorer
def test_gcpo_trial_on_the_sentence_encoder(ray_local, model_cache: Path, tmp_path: Path,
                                            minilm_dir: str) -> None:
    """GCPO with embedding: encoder: the scorer embeds the texts itself (no learner pass),
    U lands in the uncertainty slot, and the diagnostic compares the measure with it."""
    cfg = ExperimentConfig.model_validate(tiny_config(
        str(model_cache), algorithm={"uncertainty": "gcpo", "alpha": 1.0, "group_size": 4,
                                     "clustering": "exact",
                                     "gcpo": {"embedding": "encoder", "encoder": minilm_dir}},
        train={"steps": 2, "checkpoint_every": 0},
        rollout={"engine": "hf", "max_new_tokens": 12, "max_staleness": 1},
        eval={"every_steps": 0, "before_training": False, "max_new_tokens": 4},
        diagnostics={"gradient_variance_every": 2}))
    reports: list[tuple[int, dict]] = []
    TrainingLoop(cfg, tmp_path, report=lambda s, m: reports.append((s, m))).run()
    assert [s for s, _ in reports] == [1, 2]
    rows = read_group_rows(tmp_path / "train" / "groups.jsonl")
    assert all(0.0 <= r["uncertainty"] <= 1.0 for r in rows)
    assert any(r["uncertainty"] > 0.0 for r in rows)  # random bytes: spread texts
    assert "diag/gradvar_groups" not in reports[0][1] and "diag/gradvar_groups" in reports[1][1]
    assert all("grad_variance" in r for r in rows if r["step"] == 2)
    assert not any("grad_variance" in r for r in rows if r["step"] == 1)


def test_unrunnable_diagnostic_and_encoder_settings_fail_before_any_actor(tmp_path: Path
                                                                          ) -> None:
    zero3 = ExperimentConfig.model_validate(tiny_config(
        "x", learner={"num_ranks": 2, "zero_stage": 3},
        diagnostics={"gradient_variance_every": 5}))
    with pytest.raises(TrainingFailed, match="needs learner.zero_stage 0, 1 or 2.*ZeRO-3"):
        TrainingLoop(zero3, tmp_path)
    absent = str(tmp_path / "no-encoder")
    for section in ({"algorithm": {"uncertainty": "gcpo", "gcpo": {
            "embedding": "answer", "encoder": absent}}},
            {"algorithm": {"gcpo": {"embedding": "encoder", "encoder": absent}},
             "diagnostics": {"gradient_variance_every": 1}}):
        cfg = ExperimentConfig.model_validate(tiny_config("x", **section))
        with pytest.raises(TrainingFailed, match="no-encoder' is not a directory"):
            TrainingLoop(cfg, tmp_path)

"""One trial on real Ray with real DeepSpeed ranks and real engines (tiny model)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import ray

from seedgrpo.config import ExperimentConfig
from seedgrpo.evaluation import BenchmarkNotFound
from seedgrpo.models import resolve_model_dir
from seedgrpo.rollout.types import Completion
from seedgrpo.runtime.actor_set import ActorSet, acquire
from seedgrpo.runtime.metrics import TRAIN_METRICS
from seedgrpo.runtime.trial import TrainingFailed, TrainingLoop
from seedgrpo.tracking.groups_file import read_group_rows

from .conftest import run_tiny_trial, tiny_config

REQUIRED = (*TRAIN_METRICS, "time/generate_s", "time/score_s", "time/learn_s", "time/sync_s",
            "time/step_s", "throughput/tokens_per_s", "reward/verify_errors_total",
            "reward/verify_timeouts_total", "reward/verify_refused_total")


@dataclass(frozen=True)
class ThreeStepRun:
    """What one 3-step HF / ZeRO-2 trial with evaluations reported, logged and left on disk."""

    output: Path
    reports: list[tuple[int, dict]]
    logged: list[tuple[Path, str]]
    final: dict


@pytest.fixture(scope="module")
def three_step_run(ray_local, model_cache: Path, shared_data: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> ThreeStepRun:
    """One trial, run once for the tests below, each of which pins one behaviour of it."""
    output = tmp_path_factory.mktemp("three_steps_hf_zero2")
    cfg = ExperimentConfig.model_validate(tiny_config(str(model_cache), eval={
        "every_steps": 2, "max_new_tokens": 8, "benchmarks": ["heldout", "amc23"], "limit": 2,
        "samples": 2, "temperature": 1.0, "data_dir": str(shared_data),
        # one optional benchmark is found (1 problem, by eval.limits), one is not: skipped
        "optional_benchmarks": ["aime24", "mine"], "limits": {"aime24": 1},
        "custom_benchmarks": {"mine": {"path": str(output / "absent.jsonl")}}}))
    reports: list[tuple[int, dict]] = []
    logged: list[tuple[Path, str]] = []
    runner = TrainingLoop(cfg, output, report=lambda s, m: reports.append((s, m)),
                          log_artifact=lambda path, where: logged.append((path, where)))
    final = runner.run()
    return ThreeStepRun(output, reports, logged, final)


@pytest.mark.slow
def test_evaluation_runs_before_training_then_every_two_steps_and_at_the_end(
        three_step_run: ThreeStepRun) -> None:
    reports = three_step_run.reports
    assert [s for s, _ in reports] == [0, 1, 2, 3]  # step 0: the evaluation before training
    assert "eval/heldout/pass_at_1" in reports[2][1]
    assert "eval/avg/pass_at_1" in three_step_run.final


@pytest.mark.slow
def test_evaluation_reports_every_metric_of_every_found_benchmark_and_skips_a_missing_optional(
        three_step_run: ThreeStepRun) -> None:
    first = three_step_run.reports[0][1]
    per_benchmark = {f"eval/{b}/{m}" for b in ("heldout", "amc23", "aime24") for m in (
        "pass_at_1", "avg_at_2", "pass_at_2", "maj_at_2", "response_len_mean",
        "truncated_frac")}
    averages = {f"eval/avg/{m}" for m in ("pass_at_1", "avg_at_2", "pass_at_2", "maj_at_2")}
    assert set(first) == per_benchmark | averages  # "mine" is absent: skipped, not an error


@pytest.mark.slow
def test_the_evaluation_average_leaves_out_the_heldout_training_split(
        three_step_run: ThreeStepRun) -> None:
    first = three_step_run.reports[0][1]
    assert first["eval/avg/pass_at_1"] == pytest.approx(
        (first["eval/amc23/pass_at_1"] + first["eval/aime24/pass_at_1"]) / 2)


@pytest.mark.slow
def test_every_training_step_reports_the_required_metrics(three_step_run: ThreeStepRun) -> None:
    for _, metrics in three_step_run.reports[1:]:
        assert set(REQUIRED) <= set(metrics)
    assert 0.0 <= three_step_run.reports[1][1]["train/se_mean"] <= 1.3863  # ln 4


@pytest.mark.slow
def test_every_evaluation_logs_its_samples_as_an_artifact(three_step_run: ThreeStepRun) -> None:
    artifacts = [path for path, where in three_step_run.logged if where == "eval"]
    assert [a.name for a in artifacts] == [f"samples_step_{s:06d}.jsonl" for s in (0, 2, 3)]
    rows = [json.loads(line) for line in artifacts[0].read_text().splitlines()]
    # (2 + 2 + 1 problems) x 2 samples
    assert len(rows) == 10 and {r["benchmark"] for r in rows} == {"heldout", "amc23", "aime24"}
    assert set(rows[0]) >= {"problem", "completion", "answer", "gold", "correct", "step"}


@pytest.mark.slow
def test_each_step_writes_one_group_row_per_prompt(three_step_run: ThreeStepRun) -> None:
    """The rows behind the entropy and factor plots, logged with the checkpoints."""
    output = three_step_run.output
    assert (output / "train" / "groups.jsonl", "train") in three_step_run.logged
    groups = read_group_rows(output / "train" / "groups.jsonl")
    assert [r["step"] for r in groups] == [1, 1, 2, 2, 3, 3]
    assert all(0.0 <= r["se"] <= 1.3863 and 0.0 <= r["factor"] <= 1.0 for r in groups)
    assert all(r["uncertainty"] == r["se"] and sum(r["cluster_sizes"]) == len(r["rewards"])
               and isinstance(r["prompt_id"], str) for r in groups)


@pytest.mark.slow
def test_the_last_checkpoint_records_the_step_and_the_sampler_position(
        three_step_run: ThreeStepRun) -> None:
    checkpoints = three_step_run.output / "checkpoints"
    assert (checkpoints / "latest").read_text() == "step_000003"
    state = json.loads((checkpoints / "trainer_state_000003.json").read_text())
    assert state["step"] == 3 and state["sampler"]["cursor"] == 6  # 3 steps x 2 prompts


@pytest.mark.slow
def test_three_steps_vllm_zero3_collective(ray_local, model_cache: Path, tmp_path: Path) -> None:
    """A trial on vLLM with ZeRO-3 ranks and the collective broadcast; then, on the same actors
    (starting vLLM costs most of this test), the weight-sync check of ``SYNC_CASES``."""
    from seedgrpo.models import load_tokenizer

    cfg = ExperimentConfig.model_validate(tiny_config(
        str(model_cache), rollout={"engine": "vllm", "max_new_tokens": 12,
                                   "weight_sync": "collective"},
        learner={"num_ranks": 2, "zero_stage": 3}, train={"lr": 1e-2}))
    reports: list[tuple[int, dict]] = []
    runner = TrainingLoop(cfg, tmp_path, report=lambda s, m: reports.append((s, m)))
    assert runner.engine_kind == "vllm"
    try:
        runner.run(keep_actors=True)
        assert [s for s, _ in reports] == [0, 1, 2, 3]
        for _, metrics in reports[1:]:
            assert set(REQUIRED) <= set(metrics)
            assert metrics["train/rollout_logprob_diff"] < 1e-3  # vLLM and the learner agree
        assert (tmp_path / "checkpoints" / "latest").read_text() == "step_000003"
        before, stale, after = _engine_matches_learner(
            runner.actors, load_tokenizer(resolve_model_dir(cfg.model)))
    finally:
        runner.shutdown()
    assert before < 1e-4  # same weights after the trial's last sync
    assert stale > 1e-3  # the update moved the learner away from the engines
    assert after < 1e-4  # and the broadcast brought the engines along


def _crafted_update(actors: ActorSet, tokenizer) -> None:
    """One update on hand-made responses with non-zero advantages, through the learners' own
    entry point (shards and scores by object reference), so the weights move."""
    prompt = tokenizer("Compute 2 + 3.", add_special_tokens=False)["input_ids"]
    groups = []
    for g in range(2):
        group = []
        for i in range(4):
            response = tokenizer(f" answer {g}{i}", add_special_tokens=False)["input_ids"]
            group.append(Completion(response, "", [-1.0] * len(response), truncated=False))
        groups.append(group)
    scored = SimpleNamespace(advantages=[[1.0, -1.0, 1.0, -1.0]] * 2)
    actors.learners.wait(actors.learners.call("train", [prompt, prompt], [ray.put(groups)],
                                              ray.put(scored), False), "learning")


def _engine_matches_learner(actors: ActorSet, tokenizer) -> tuple[float, float, float]:
    """Max |engine - learner| log-prob gap on a fixed sequence, before and after one update."""
    prompt = tokenizer("Hello", add_special_tokens=False)["input_ids"]
    probe = tokenizer(" world, 42", add_special_tokens=False)["input_ids"]

    def gap() -> float:
        learner = actors.learners.sequence_logprobs(prompt, probe)
        engines = actors.rollouts.sequence_logprobs(prompt, probe)
        return max(abs(a - b) for e in engines for a, b in zip(e, learner, strict=True))

    before_update = gap()
    _crafted_update(actors, tokenizer)
    stale = gap()  # engines still hold the old weights
    actors.rollouts.wait(actors.weights.push(1), "weight sync")
    return before_update, stale, gap()


SYNC_CASES = [
    pytest.param("hf", "object_store", 2, id="hf-object_store-zero2", marks=pytest.mark.slow),
    pytest.param("hf", "collective", 3, id="hf-collective-zero3", marks=pytest.mark.slow),
    pytest.param("vllm", "object_store", 2, id="vllm-object_store-zero2",
                 marks=pytest.mark.slow),
]
# vLLM with the collective broadcast at ZeRO-3: test_three_steps_vllm_zero3_collective


@pytest.mark.parametrize(("engine", "method", "zero"), SYNC_CASES)
def test_weight_sync_engine_matches_learner(ray_local, model_cache: Path, tmp_path: Path,
                                            engine: str, method: str, zero: int) -> None:
    from seedgrpo.models import load_tokenizer

    cfg = ExperimentConfig.model_validate(tiny_config(
        str(model_cache), rollout={"engine": engine, "max_new_tokens": 12, "weight_sync": method},
        learner={"num_ranks": 2, "zero_stage": zero},
        train={"micro_batch_size": 4, "lr": 1e-2}))
    model_dir = resolve_model_dir(cfg.model)
    actors, _ = acquire(None, cfg, model_dir, engine)
    try:
        before, stale, after = _engine_matches_learner(actors, load_tokenizer(model_dir))
    finally:
        actors.shutdown()
    assert before < 1e-4  # same initial weights
    assert stale > 1e-3  # the update moved the learner away from the engines
    assert after < 1e-4  # and the sync brought the engines along


@pytest.mark.slow
def test_a_dead_learner_stops_the_run_and_keeps_the_checkpoint(ray_local, model_cache: Path,
                                                               tmp_path: Path) -> None:
    cfg = ExperimentConfig.model_validate(tiny_config(
        str(model_cache), train={"steps": 4, "checkpoint_every": 2}))
    runner = TrainingLoop(cfg, tmp_path)

    def kill_after_checkpoint(step: int, metrics: dict) -> None:
        if step == 2:
            ray.kill(runner.actors.learners.actors[1])

    runner.report = kill_after_checkpoint
    with pytest.raises(TrainingFailed, match="an actor died while learning at step 3"):
        runner.run()
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step_000002"


def test_unsupported_settings_fail_before_any_actor(model_cache: Path, tmp_path: Path) -> None:
    cfg = ExperimentConfig.model_validate(tiny_config(
        str(model_cache), eval={"benchmarks": ["aime24"], "data_dir": str(tmp_path)}))
    with pytest.raises(BenchmarkNotFound, match="benchmark 'aime24'.*aime24.jsonl does not"):
        TrainingLoop(cfg, tmp_path).run()  # no Ray: it fails while preparing the data
    cfg = ExperimentConfig.model_validate(tiny_config("x", algorithm={
        "uncertainty": "gcpo", "gcpo": {"embedding": "encoder",
                                        "encoder": str(tmp_path / "absent")}}))
    with pytest.raises(TrainingFailed, match="gcpo.encoder .*absent' is not a directory"):
        TrainingLoop(cfg, tmp_path)


@pytest.mark.slow
def test_gcpo_trial_zero3(ray_local, model_cache: Path, tmp_path: Path) -> None:
    """GCPO [recon] end to end: the learner ranks embed the responses (under ZeRO-3, where the
    forward pass gathers partitions collectively), the scorer turns them into U and factors."""
    cfg = ExperimentConfig.model_validate(tiny_config(
        str(model_cache), algorithm={"uncertainty": "gcpo", "alpha": 1.0, "group_size": 4,
                                     "clustering": "exact", "gcpo": {"measure": "bot"}},
        train={"steps": 2, "checkpoint_every": 0},
        learner={"num_ranks": 2, "zero_stage": 3},
        eval={"every_steps": 0, "before_training": False, "max_new_tokens": 4}))
    reports: list[tuple[int, dict]] = []
    TrainingLoop(cfg, tmp_path, report=lambda s, m: reports.append((s, m))).run()
    assert [s for s, _ in reports] == [1, 2]
    for _, m in reports:
        assert set(REQUIRED) <= set(m)
        assert 0.0 <= m["train/uncertainty_mean"] <= 1.0  # GCPO's U
        assert 0.0 <= m["train/se_mean"] <= 1.3863  # SE is logged for GCPO runs too (ln 4)
        assert 0.0 <= m["train/factor_mean"] <= 1.0


def _trial(cache: Path, out: Path, *, actors=None, report=None, **rollout) -> TrainingLoop:
    """A 4-step tiny trial (checkpoints at 2 and 4) on ``actors`` when given; the runner
    keeps its actors for the next trial."""
    return run_tiny_trial(cache, out, actors=actors, report=report, rollout=rollout)


def _staleness(runner: TrainingLoop) -> list[float]:
    return [runner.reports[s]["train/staleness"] for s in sorted(runner.reports)]


@pytest.mark.slow  # about 40 s: five tiny trials on shared actors
def test_staleness_is_measured_and_a_resumed_trial_keeps_it(ray_local, model_cache: Path,
                                                            tmp_path: Path) -> None:
    """train/staleness = updates the learner has made - the version the engines stamped on the
    batch. Generating ahead makes every batch after the first exactly one update old; taking
    turns makes none old, unless the weights are synced only every other step. A trial
    interrupted after its checkpoint at step 2 keeps the batch generated for step 3 there; the
    resumed trial learns from it (still one update old) and goes on as the uninterrupted one.
    (The trials share warm actors, as a sweep's do.)"""
    ahead = _trial(model_cache, tmp_path / "ahead", max_staleness=1)
    assert _staleness(ahead) == [0, 1, 1, 1]
    turns = _trial(model_cache, tmp_path / "turns", actors=ahead.actors, max_staleness=0)
    assert turns.reused_actors and _staleness(turns) == [0, 0, 0, 0]
    sync2 = _trial(model_cache, tmp_path / "sync2", actors=turns.actors, max_staleness=0,
                   sync_every_steps=2)
    assert _staleness(sync2) == [0, 1, 0, 1]

    def interrupt(step: int, metrics: dict) -> None:
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _trial(model_cache, tmp_path / "split", actors=sync2.actors, report=interrupt,
               max_staleness=1)
    assert (tmp_path / "split" / "checkpoints" / "pending_batch_000002.json").is_file()
    resumed = _trial(model_cache, tmp_path / "split", max_staleness=1)
    resumed.shutdown()
    assert sorted(resumed.reports) == [3, 4] and _staleness(resumed) == [1, 1]
    rows = {name: read_group_rows(tmp_path / name / "train" / "groups.jsonl")
            for name in ("ahead", "split")}
    assert rows["split"] == rows["ahead"]  # the same groups, step by step

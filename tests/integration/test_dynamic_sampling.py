"""Dynamic sampling (DAPO) on real Ray: the rounds assembled in the object store, and trials
on the tiny model, whose rewards are all 0 (it never writes a \\boxed{} answer), so every
step reaches the cap and is filled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray

from seedgrpo.config.sections import AlgorithmConfig
from seedgrpo.data import PromptSampler
from seedgrpo.rollout.types import Completion
from seedgrpo.runtime.batches import StepBatch, TrainPrompt, join_shards, train_samples
from seedgrpo.runtime.dynamic_sampling import SAMPLING_METRICS, assemble, select_groups
from seedgrpo.runtime.rollout_group import RolloutGroup
from seedgrpo.runtime.scoring import score_batch
from seedgrpo.runtime.trial import TrainingLoop
from seedgrpo.tracking.groups_file import read_group_rows

from .conftest import run_tiny_trial


def _group(prompt: int, *answers: str) -> list[Completion]:
    return [Completion([prompt, k], f"\\boxed{{{a}}}", [-0.5, -0.5], False)
            for k, a in enumerate(answers)]


def test_rounds_are_assembled_in_the_object_store(ray_local, strict_verifier) -> None:
    """Two scored rounds of two prompts (gold 2); the groups with signal are round 0's second
    and round 1's first. The batch the learners read has those prompts, their completions
    and their scores, aligned, and one generation record for the two rounds."""
    algo = AlgorithmConfig(alpha=0.5, clustering="exact")  # G 2: SE ln 2 leaves f > 0
    prompts = [[TrainPrompt("a", [10], "2"), TrainPrompt("b", [11], "2")],
               [TrainPrompt("c", [12], "2"), TrainPrompt("d", [13], "2")]]
    groups = [[_group(0, "1", "1"), _group(1, "2", "3")],
              [_group(2, "2", "4"), _group(3, "2", "2")]]
    scored = [score_batch(g, ["2", "2"], algo, verifier=strict_verifier) for g in groups]
    metas = [[{"version": 3, "seconds": 1.0, "tokens": 8}],
             [{"version": 3, "seconds": 2.0, "tokens": 6}]]
    rounds = [StepBatch(7, p, [ray.put(g[:1]), ray.put(g[1:])], [ray.put(m[0])],
                        scored=ray.put(s))
              for p, g, s, m in zip(prompts, groups, scored, metas, strict=True)]
    selection = select_groups([[s.rewards for s in b.scores] for b in scored], target=2)
    batch = RolloutGroup.select(rounds, selection, metas)

    assert batch.step == 7 and [p.id for p in batch.prompts] == ["b", "c"]
    learned = join_shards(ray.get(batch.shards))  # as a learner rank reads them
    assert learned == [groups[0][1], groups[1][0]]
    got = ray.get(batch.scored)
    want = assemble(selection, groups, scored)[1]
    assert got.scores == want.scores and got.rows == want.rows
    assert got.metrics == pytest.approx(want.metrics, nan_ok=True)
    assert ray.get(batch.meta) == [{"version": 3, "seconds": 3.0, "tokens": 14}]
    samples = train_samples(batch.prompt_ids, learned, got.advantages)
    assert [(s.prompt_ids, s.response_ids[0]) for s in samples] == [
        ([11], 1), ([11], 1), ([12], 2), ([12], 2)]  # each prompt with its own group
    assert [s.advantage for s in samples] == [a for advs in got.advantages for a in advs]
    assert all(a != 0 for a in got.advantages[0] + got.advantages[1])


def _trial(cache: Path, out: Path, *, actors=None, report=None) -> TrainingLoop:
    """4 steps of P 2 x G 4 with dynamic sampling (at most 3 rounds), generated ahead
    (max_staleness 1), checkpoints at 2 and 4; the runner keeps its actors."""
    return run_tiny_trial(cache, out, actors=actors, report=report,
                          rollout={"max_staleness": 1},
                          train={"dynamic_sampling": True, "dynamic_sampling_max_rounds": 3})


def _cursor(out: Path, step: int) -> int:
    state = json.loads((out / "checkpoints" / f"trainer_state_{step:06d}.json").read_text())
    return state["sampler"]["cursor"]


@pytest.mark.slow  # 1-2 min: three tiny trials (two on shared actors), 3 rounds a step
def test_no_signal_reaches_the_cap_fills_the_step_and_resumes_alike(
        ray_local, model_cache: Path, tmp_path: Path) -> None:
    """Every step draws 3 rounds of 2 prompts, finds no group with signal and learns from 2
    all-equal groups (2 short); the learners still take their update on P x G responses. The
    sampler advances by every prompt drawn, so a trial interrupted after its checkpoint at
    step 2 (which keeps step 3's first round, generated ahead) draws what the uninterrupted
    one drew."""
    whole = _trial(model_cache, tmp_path / "whole")
    assert sorted(whole.reports) == [1, 2, 3, 4]
    for m in whole.reports.values():
        assert set(SAMPLING_METRICS) <= set(m)
        assert m["train/prompts_drawn"] == 6.0 and m["train/signal_groups_short"] == 2.0
        assert m["train/reward_mean"] == 0.0 and m["train/zero_adv_frac"] == 1.0
        assert m["train/reward_mean_drawn"] == 0.0 and m["train/signal_frac_drawn"] == 0.0
        assert m["throughput/tokens_per_s"] > 0 and m["time/generate_s"] > 0
    assert [whole.reports[s]["train/staleness"] for s in (1, 2, 3, 4)] == [0, 1, 1, 1]
    assert whole.actors.learners.version() == 4  # one update per step, on the filled batch
    rows = read_group_rows(tmp_path / "whole" / "train" / "groups.jsonl")
    assert [r["step"] for r in rows] == [1, 1, 2, 2, 3, 3, 4, 4]  # P rows per step
    # the fill is each step's first round: draws 6(s-1) and 6(s-1)+1 of the sampler's order
    drawn = PromptSampler(len(whole.train), seed=0).next_indices(24)
    assert [r["prompt_id"] for r in rows] == [whole.train[drawn[6 * k + j]].id
                                              for k in range(4) for j in range(2)]
    # 2 steps x 3 rounds x 2 prompts, and step 3's first round, generated ahead
    assert _cursor(tmp_path / "whole", 2) == 14 and _cursor(tmp_path / "whole", 4) == 24
    pending = json.loads((tmp_path / "whole" / "checkpoints" / "pending_batch_000002.json"
                          ).read_text())
    assert pending["step"] == 3 and len(pending["prompts"]) == 2

    def interrupt(step: int, metrics: dict) -> None:
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _trial(model_cache, tmp_path / "split", actors=whole.actors, report=interrupt)
    resumed = _trial(model_cache, tmp_path / "split")
    resumed.shutdown()
    assert sorted(resumed.reports) == [3, 4]
    assert _cursor(tmp_path / "split", 4) == 24
    for step in (3, 4):
        for name in ("train/prompts_drawn", "train/signal_groups_short", "train/staleness",
                     "train/response_len_mean", "train/truncated_frac"):
            assert resumed.reports[step][name] == whole.reports[step][name], (step, name)
    assert (read_group_rows(tmp_path / "split" / "train" / "groups.jsonl")
            == read_group_rows(tmp_path / "whole" / "train" / "groups.jsonl"))

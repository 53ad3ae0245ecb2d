"""The learner's update on real DeepSpeed ranks (ZeRO-2, gloo, CPU) and hand-made batches:
mini-batches, pi_old, the gradient scale across rank counts, the overlong filter, the token
entropy and AdamW's settings.

The weights after an update are compared with a reference written here from scratch: plain
PyTorch, whole-sequence logits, the PPO-clip formula and ``torch.optim.AdamW`` (no DeepSpeed,
no ``seedgrpo.learner``). AdamW's epsilon is set large (1.0) on purpose: with the default 1e-8,
Adam's first step is lr x sign(gradient), which no gradient scale error would change; with
eps 1.0 the step is about lr x g / (|g| + 1), so a gradient twice too large shows.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import ray
import torch

from seedgrpo.config import ExperimentConfig
from seedgrpo.models import load_causal_lm, resolve_model_dir
from seedgrpo.rollout.types import Completion
from seedgrpo.runtime.actors import LearnerActor
from seedgrpo.runtime.learner_group import LearnerGroup
from seedgrpo.runtime.metrics import learner_metrics

from .conftest import tiny_config

pytestmark = pytest.mark.slow  # each test starts DeepSpeed ranks: 10-40 s

PROMPTS = [[3, 17, 29, 41, 5], [7, 11, 13]]
RESPONSES = [  # 2 prompts x G 4, of different lengths
    [[50, 51, 52], [60, 61], [70, 71, 72, 73], [80]],
    [[90, 91], [100, 101, 102], [110], [120, 121, 122, 123, 124]],
]
ADVANTAGES = [[1.0, -0.5, 0.75, -1.25], [-1.0, 0.5, 1.5, -0.25]]
MAX_NEW_TOKENS = 6


def _config(cache: Path, ranks: int = 2, **train) -> dict:
    return ExperimentConfig.model_validate(tiny_config(
        str(cache),
        train={"steps": 2, "lr": 1.0, "micro_batch_size": 2, "grad_clip": None,
               "adam_eps": 1.0, "adam_betas": [0.9, 0.95], **train},
        algorithm={"group_size": 4, "alpha": 0.5, "clustering": "exact", "clip_eps": 0.2},
        rollout={"engine": "hf", "max_new_tokens": MAX_NEW_TOKENS},
        learner={"num_ranks": ranks, "zero_stage": 2},
    )).model_dump(mode="json")


def _groups(truncated: tuple[int, int] | None = None,
            response: list[int] | None = None) -> list[list[Completion]]:
    """The hand-made groups; ``truncated`` (prompt, sample) marks one response cut off at the
    length limit, ``response`` replaces its tokens."""
    groups = []
    for g, group in enumerate(RESPONSES):
        row = []
        for i, ids in enumerate(group):
            cut = truncated == (g, i)
            ids = response if cut and response is not None else ids
            row.append(Completion(list(ids), "", [-1.0] * len(ids), truncated=cut))
        groups.append(row)
    return groups


class Learners:
    """One group of real learner ranks, reset between the updates a test compares."""

    def __init__(self, config: dict, model_dir: Path, ranks: int) -> None:
        actors = [LearnerActor.options(num_cpus=1).remote(config, str(model_dir), r, ranks)
                  for r in range(ranks)]
        self.group = LearnerGroup(actors, timeout_s=300, zero_stage=2)
        self.group.setup()

    def update(self, config: dict, groups: list[list[Completion]],
               advantages: list[list[float]] = ADVANTAGES
               ) -> tuple[dict[str, torch.Tensor], dict[str, float], list[dict[str, float]]]:
        """From the base model: one step on ``groups``; the weights, metrics and rank stats."""
        self.group.reset(config)
        scored = SimpleNamespace(advantages=advantages)
        stats = self.group.wait(self.group.call("train", PROMPTS, [ray.put(groups)],
                                                ray.put(scored), False), "learning")
        weights = ray.get(self.group.rank0.full_state_dict.remote())
        return weights, learner_metrics(stats), stats

    def optimizer_settings(self) -> list[tuple[list[float], float]]:
        def read(actor) -> list[tuple[list[float], float]]:
            return [(list(g["betas"]), g["eps"])
                    for g in actor.learner.engine.optimizer.param_groups]

        return ray.get(self.group.rank0.__ray_call__.remote(read))

    def shutdown(self) -> None:
        for actor in self.group.actors:
            ray.kill(actor)


@pytest.fixture(scope="module")
def model_dir(model_cache: Path) -> Path:
    return resolve_model_dir(ExperimentConfig.model_validate(
        _config(model_cache)).model)


@pytest.fixture(scope="module")
def two_ranks(ray_local, model_cache: Path, model_dir: Path):
    learners = Learners(_config(model_cache), model_dir, 2)
    yield learners
    learners.shutdown()


# -- the reference: plain PyTorch, written from the formulas --------------------------------
def _sequence_logprobs(model, prompt: list[int], response: list[int]) -> torch.Tensor:
    ids = torch.tensor([prompt + response])
    logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1].float()
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(response)[:, None])[:, 0]


def _entropies(model, prompt: list[int], response: list[int]) -> torch.Tensor:
    ids = torch.tensor([prompt + response])
    logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1].float()
    p = torch.softmax(logits, -1)
    return -(p * torch.log_softmax(logits, -1)).sum(-1)


def _reference(model_dir: Path, cfg: dict, *, drop: tuple[int, int] | None = None
               ) -> dict[str, torch.Tensor]:
    """The weights after one rollout step of the hand-made batch: mini-batches of
    ``train.mini_batch_size`` in prompt order, pi_old the base model, each optimizer step the
    dr_grpo or token_mean PPO-clip loss of its mini-batch (``drop``: leave that response out of
    its mini-batch's loss and normaliser)."""
    train, algo = cfg["train"], cfg["algorithm"]
    model = load_causal_lm(model_dir)
    rows = [(PROMPTS[g], ids, ADVANTAGES[g][i]) for g, group in enumerate(RESPONSES)
            for i, ids in enumerate(group)]
    dropped = None if drop is None else drop[0] * len(RESPONSES[0]) + drop[1]
    with torch.no_grad():
        old = [_sequence_logprobs(model, p, r) for p, r, _ in rows]
    size = train["mini_batch_size"] or len(rows)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train["lr"],
                                  betas=tuple(train["adam_betas"]), eps=train["adam_eps"],
                                  weight_decay=train["weight_decay"])
    eps = algo["clip_eps"]
    for start in range(0, len(rows), size):
        part = [k for k in range(start, start + size) if k != dropped]
        terms = []
        for k in part:
            prompt, response, advantage = rows[k]
            ratio = torch.exp(_sequence_logprobs(model, prompt, response) - old[k])
            terms.append(-torch.minimum(ratio * advantage,
                                        ratio.clamp(1 - eps, 1 + eps) * advantage))
        if algo["loss_aggregation"] == "token_mean":
            loss = torch.cat(terms).sum() / sum(len(t) for t in terms)
        else:  # dr_grpo
            loss = sum(t.sum() for t in terms) / (MAX_NEW_TOKENS * len(terms))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {k: v.detach() for k, v in model.state_dict().items()}


def _max_gap(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> float:
    return max(float((got[k] - want[k]).abs().max()) for k in got)


def _moved(got: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> float:
    return max(float((got[k] - base[k]).abs().max()) for k in got)


# -- the tests -------------------------------------------------------------------------------
def test_two_mini_batches_clip_against_the_batch_policy(two_ranks: Learners,
                                                        model_cache: Path) -> None:
    """One optimizer step per rollout: pi_old is the policy being trained, the ratio is 1 and
    the clip never acts. Two mini-batches: the second is clipped against the policy that
    generated the batch, which the first step moved."""
    big = {"lr": 0.05, "adam_eps": 1e-8}
    one = _config(model_cache, **big)
    _, single, _ = two_ranks.update(one, _groups())
    assert single["train/optimizer_steps"] == 1.0 and single["train/clip_frac"] == 0.0
    two = _config(model_cache, mini_batch_size=4, **big)
    two["algorithm"]["clip_eps"] = 0.01
    _, split, stats = two_ranks.update(two, _groups())
    assert split["train/optimizer_steps"] == 2.0
    # the clip acted on the second mini-batch only (11 of the 21 tokens): the first one's
    # ratio is exactly 1
    assert 0.0 < split["train/clip_frac"] <= 11 / 21
    assert sum(s["token_updates"] for s in stats) == sum(map(len, sum(RESPONSES, [])))
    # ppo_epochs 2 x 2 mini-batches: 4 steps, and the learning-rate schedule counts them
    four = _config(model_cache, mini_batch_size=4, ppo_epochs=2, lr_schedule="linear", **big)
    _, epochs, _ = two_ranks.update(four, _groups())
    assert epochs["train/optimizer_steps"] == 4.0
    # total = 2 steps x 2 epochs x 2 mini-batches = 8 optimizer steps; 4 taken -> lr x 4/8
    assert epochs["train/lr"] == pytest.approx(0.05 * (1 - 4 / 8))


def test_one_mini_batch_of_every_response_is_todays_update(two_ranks: Learners,
                                                           model_cache: Path,
                                                           model_dir: Path) -> None:
    """mini_batch_size = P x G is the unset default bit for bit, and both match the reference
    written from the formulas (within fp32 summation-order noise; DeepSpeed flattens and
    reduces the gradients in another order). Two mini-batches match their reference too."""
    unset, _, _ = two_ranks.update(_config(model_cache), _groups())
    whole, _, _ = two_ranks.update(_config(model_cache, mini_batch_size=8), _groups())
    assert all(torch.equal(unset[k], whole[k]) for k in unset)
    base = {k: v for k, v in load_causal_lm(model_dir).state_dict().items()}
    assert _moved(unset, base) > 1e-3
    assert _max_gap(unset, _reference(model_dir, _config(model_cache))) < 1e-5
    split, _, _ = two_ranks.update(_config(model_cache, mini_batch_size=4), _groups())
    want = _reference(model_dir, _config(model_cache, mini_batch_size=4))
    assert _max_gap(split, want) < 1e-5
    assert _max_gap(split, unset) > 1e-3  # two steps are not one


def test_gradient_scale_is_the_global_loss_on_one_rank_or_two(two_ranks: Learners,
                                                              model_cache: Path,
                                                              model_dir: Path) -> None:
    """With 2 mini-batches of 4: 1 rank learns each from 2 micro-batches, 2 ranks from one
    each, yet the gradient norms and the weights agree (and a wrong scale, e.g. a missing
    world-size factor, would halve the 2-rank gradient)."""
    one_rank = Learners(_config(model_cache, ranks=1), model_dir, 1)
    try:
        single, single_m, _ = one_rank.update(_config(model_cache, ranks=1, mini_batch_size=4),
                                              _groups())
    finally:
        one_rank.shutdown()
    double, double_m, _ = two_ranks.update(_config(model_cache, mini_batch_size=4), _groups())
    assert double_m["train/grad_norm"] == pytest.approx(single_m["train/grad_norm"], rel=1e-5)
    assert _max_gap(single, double) < 1e-5
    assert double_m["train/loss"] == pytest.approx(single_m["train/loss"], rel=1e-5, abs=1e-7)


def test_overlong_filter_drops_a_truncated_response(two_ranks: Learners, model_cache: Path,
                                                    model_dir: Path) -> None:
    """A truncated response leaves the loss and its normalisation: the update equals the
    reference on the batch without it (token_mean: 1 token fewer in the denominator), and
    whatever its tokens or advantage, the weights do not change."""
    cfg = _config(model_cache, mini_batch_size=4, overlong_filter=True)
    cfg["algorithm"]["loss_aggregation"] = "token_mean"
    filtered, _, _ = two_ranks.update(cfg, _groups(truncated=(0, 3)))
    assert _max_gap(filtered, _reference(model_dir, cfg, drop=(0, 3))) < 1e-5
    other = [[*a] for a in ADVANTAGES]
    other[0][3] = 7.0
    again, _, _ = two_ranks.update(cfg, _groups(truncated=(0, 3), response=[99]), other)
    assert all(torch.equal(filtered[k], again[k]) for k in filtered)
    cfg["train"]["overlong_filter"] = False  # off: the truncated response is learned from
    kept, _, _ = two_ranks.update(cfg, _groups(truncated=(0, 3)))
    assert _max_gap(kept, _reference(model_dir, cfg)) < 1e-5
    assert _max_gap(kept, filtered) > 1e-4


def test_token_entropy_and_adam_settings(two_ranks: Learners, model_cache: Path,
                                         model_dir: Path) -> None:
    """train/token_entropy_mean is the base policy's mean entropy over every response token
    (mini-batch 0 from its first forward pass, mini-batch 1 from its pi_old pass), and AdamW
    runs with the configured betas and eps."""
    _, metrics, _ = two_ranks.update(_config(model_cache, mini_batch_size=4), _groups())
    model = load_causal_lm(model_dir)
    with torch.no_grad():
        values = torch.cat([_entropies(model, PROMPTS[g], ids)
                            for g, group in enumerate(RESPONSES) for ids in group])
    assert metrics["train/token_entropy_mean"] == pytest.approx(float(values.mean()), rel=1e-5)
    assert 0.0 < metrics["train/token_entropy_mean"] <= math.log(model.config.vocab_size)
    assert two_ranks.optimizer_settings() == [([0.9, 0.95], 1.0)]

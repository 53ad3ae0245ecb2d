"""How a step's responses become optimizer steps (pure helpers), the overlong filter's
normalisers, the learner's metrics and the DeepSpeed optimizer settings."""

from __future__ import annotations

import pytest

from seedgrpo.config import ExperimentConfig
from seedgrpo.learner.batch import TrainSample, loss_counts
from seedgrpo.learner.rank import deepspeed_config
from seedgrpo.rollout.types import Completion
from seedgrpo.runtime.batches import rank_mini_batches, rank_share, train_samples
from seedgrpo.runtime.metrics import learner_metrics


def test_rank_mini_batches_take_each_ranks_share_of_each_mini_batch() -> None:
    items = list(range(12))
    # 3 mini-batches of 4, 2 ranks: rank 1 takes the second half of each
    assert rank_mini_batches(items, 1, 2, 4) == [[2, 3], [6, 7], [10, 11]]
    # every response is learned once, and mini-batch m is the same set on any rank count
    for ranks in (1, 2, 4):
        shares = [rank_mini_batches(items, r, ranks, 4) for r in range(ranks)]
        for m in range(3):
            assert sorted(x for s in shares for x in s[m]) == items[4 * m:4 * m + 4]
    # unset = one mini-batch = today's contiguous share
    for r in range(3):
        assert rank_mini_batches(items, r, 3, None) == [rank_share(items, r, 3)]
    with pytest.raises(ValueError, match="do not split into mini-batches of 5"):
        rank_mini_batches(items, 0, 2, 5)
    with pytest.raises(ValueError, match="do not split evenly over 4"):
        rank_mini_batches(items, 0, 4, 6)


def test_train_samples_carry_truncation_and_loss_counts_drop_it() -> None:
    groups = [[Completion([1, 2], "", [0.0, 0.0], truncated=False),
               Completion([3, 4, 5], "", [0.0] * 3, truncated=True)]]
    samples = train_samples([[9]], groups, [[1.0, -1.0]])
    assert [s.truncated for s in samples] == [False, True]
    assert loss_counts(samples, overlong_filter=False) == (5, 2)
    assert loss_counts(samples, overlong_filter=True) == (2, 1)
    only_cut = [TrainSample([9], [3], 1.0, [0.0], truncated=True)]
    assert loss_counts(only_cut, overlong_filter=True) == (1, 1)  # a 0 loss, never 0 / 0


def _stats(**over: float) -> dict[str, float]:
    base = {"loss": 0.5, "clip_frac": 3.0, "kl": 0.0,
            "rollout_logprob_diff": 2.0, "entropy": 8.0, "token_updates": 20.0, "tokens": 10.0,
            "optimizer_steps": 4.0, "grad_norm": 1.5, "lr": 1e-6}
    return {**base, **over}


def test_learner_metrics_weigh_each_rank_by_its_tokens() -> None:
    metrics = learner_metrics([_stats(), _stats(entropy=22.0, tokens=20.0, clip_frac=1.0,
                                             token_updates=40.0)])
    assert metrics["train/optimizer_steps"] == 4.0
    assert metrics["train/token_entropy_mean"] == pytest.approx(30.0 / 30.0)
    assert metrics["train/clip_frac"] == pytest.approx(4.0 / 60.0)
    assert metrics["train/rollout_logprob_diff"] == pytest.approx(4.0 / 30.0)
    assert metrics["train/loss"] == pytest.approx(1.0)  # the global loss: the ranks' sum


def test_deepspeed_config_carries_the_optimizer_settings() -> None:
    default = deepspeed_config(ExperimentConfig())
    assert default["optimizer"]["params"]["betas"] == [0.9, 0.999]
    assert default["optimizer"]["params"]["eps"] == 1e-8
    assert default["gradient_clipping"] == 1.0
    oat = deepspeed_config(ExperimentConfig(train={"adam_betas": [0.9, 0.95], "adam_eps": 1e-6,
                                                   "grad_clip": None}))
    assert oat["optimizer"]["params"]["betas"] == [0.9, 0.95]
    assert oat["optimizer"]["params"]["eps"] == 1e-6
    # unset means no clipping: DeepSpeed's own default would clip at 1.0
    assert oat["gradient_clipping"] == 0.0

"""policy_loss and aggregate_loss: hand cases, split invariance, and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from seedgrpo.algorithms import aggregate_loss, k3_kl, policy_loss


def _one_token(ratio: float, advantage: float, **kwargs):
    logprobs = torch.tensor([[math.log(ratio)]])
    return policy_loss(logprobs, torch.zeros(1, 1), torch.tensor([advantage]), torch.ones(1, 1),
                       aggregation="token_mean", **kwargs)


@pytest.mark.parametrize(
    ("ratio", "advantage", "kwargs", "loss", "clipped"),
    [
        # rho 1.5, A +1: min(1.5, clip 1.2) = 1.2 -> loss -1.2, clipped
        (1.5, 1.0, {}, -1.2, 1.0),
        # rho 0.5, A +1: min(0.5, 0.8) = 0.5 -> loss -0.5, not clipped
        (0.5, 1.0, {}, -0.5, 0.0),
        # rho 0.5, A -1: min(-0.5, -0.8) = -0.8 -> loss 0.8, clipped
        (0.5, -1.0, {}, 0.8, 1.0),
        # rho 1.5, A -1: min(-1.5, -1.2) = -1.5 -> loss 1.5, not clipped (pessimistic side)
        (1.5, -1.0, {}, 1.5, 0.0),
        # DAPO clip-higher 0.28: rho 1.5, A +1 -> 1.28
        (1.5, 1.0, {"clip_eps_high": 0.28}, -1.28, 1.0),
    ],
)
def test_ppo_clip_single_token(ratio, advantage, kwargs, loss, clipped) -> None:
    value, stats = _one_token(ratio, advantage, **kwargs)
    assert float(value) == pytest.approx(loss, abs=1e-6)
    assert stats["clip_frac"] == clipped


def test_k3_kl_value() -> None:
    # logp 0, ref ln 0.5: d = -0.693147 -> e^d - d - 1 = 0.5 + 0.693147 - 1 = 0.193147
    kl = k3_kl(torch.tensor([0.0]), torch.tensor([math.log(0.5)]))
    assert float(kl) == pytest.approx(0.193147, abs=1e-6)
    assert float(k3_kl(torch.tensor([0.3]), torch.tensor([0.3]))) == 0.0


def test_kl_term_is_added() -> None:
    lp = torch.zeros(1, 2)
    ref = torch.full((1, 2), math.log(0.5))
    loss, stats = policy_loss(lp, lp, torch.tensor([0.0]), torch.ones(1, 2),
                              aggregation="token_mean", ref_logprobs=ref, kl_coef=0.1)
    # A = 0 so the policy term is 0; loss = 0.1 * mean k3 = 0.1 * 0.193147
    assert float(loss) == pytest.approx(0.0193147, abs=1e-6)
    assert stats["kl"] == pytest.approx(0.193147, abs=1e-6)


def test_mask_excludes_padding() -> None:
    per_token = torch.tensor([[1.0, 100.0], [3.0, 5.0]])
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # token_mean: (1 + 3 + 5) / 3 = 3; seq_mean_token_mean: (1 + 4) / 2 = 2.5
    # dr_grpo with max length 4: (1 + 3 + 5) / (4 * 2) = 1.125
    assert float(aggregate_loss(per_token, mask, "token_mean")) == pytest.approx(3.0)
    assert float(aggregate_loss(per_token, mask, "seq_mean_token_mean")) == pytest.approx(2.5)
    assert float(aggregate_loss(per_token, mask, "dr_grpo", max_response_len=4)) == 1.125


@pytest.mark.parametrize("aggregation", ["dr_grpo", "token_mean", "seq_mean_token_mean"])
def test_split_invariance(aggregation: str) -> None:
    """Two 'ranks' with global normalisers add up to the full batch's loss."""
    g = torch.Generator().manual_seed(0)
    per_token = torch.randn(6, 5, generator=g)
    mask = (torch.rand(6, 5, generator=g) > 0.3).float()
    mask[:, 0] = 1.0
    norms = {"num_tokens": float(mask.sum()), "num_responses": 6.0, "max_response_len": 5}
    full = aggregate_loss(per_token, mask, aggregation, **norms)
    halves = sum(aggregate_loss(per_token[s], mask[s], aggregation, **norms)
                 for s in (slice(0, 2), slice(2, 6)))  # uneven split on purpose
    assert float(halves) == pytest.approx(float(full), abs=1e-6)


def test_gradient_flows_to_logprobs() -> None:
    logprobs = torch.zeros(2, 3, requires_grad=True)
    loss, _ = policy_loss(logprobs, torch.zeros(2, 3), torch.tensor([1.0, -1.0]),
                          torch.ones(2, 3), aggregation="dr_grpo", max_response_len=3)
    loss.backward()
    # d(-rho A)/d logp = -A rho / (B * L) at rho = 1: -1/6 for A = 1, +1/6 for A = -1
    assert logprobs.grad is not None
    assert torch.allclose(logprobs.grad[0], torch.full((3,), -1 / 6))
    assert torch.allclose(logprobs.grad[1], torch.full((3,), 1 / 6))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"aggregation": "dr_grpo"}, "needs max_response_len"),
        ({"aggregation": "sum"}, "unknown loss aggregation 'sum'"),
        ({"clip_eps_low": 1.5}, "clip_eps_low is 1.5"),
        ({"kl_coef": 0.1}, "kl_coef > 0 needs ref_logprobs"),
        ({"kl_coef": -0.1}, "kl_coef is -0.1"),
        ({"advantages": torch.zeros(3)}, "advantages has 3 entries for 2 responses"),
        ({"old_logprobs": torch.zeros(2, 2)}, r"old_logprobs has shape \(2, 2\)"),
        ({"logprobs": torch.tensor([[0.0, float("nan"), 0.0]] * 2)}, "logprobs contains NaN"),
    ],
)
def test_policy_loss_rejects_bad_input(kwargs: dict, message: str) -> None:
    args = {"logprobs": torch.zeros(2, 3), "old_logprobs": torch.zeros(2, 3),
            "advantages": torch.zeros(2), "response_mask": torch.ones(2, 3),
            "aggregation": "token_mean", **kwargs}
    with pytest.raises(ValueError, match=message):
        policy_loss(args.pop("logprobs"), args.pop("old_logprobs"), args.pop("advantages"),
                    args.pop("response_mask"), **args)


# -- padding can never poison the loss --------------------------------------------------------
@pytest.mark.parametrize("aggregation", ["token_mean", "seq_mean_token_mean", "dr_grpo"])
def test_all_padding_micro_batch_gives_zero(aggregation: str) -> None:
    lp = torch.zeros(2, 3, requires_grad=True)
    loss, _ = policy_loss(lp, torch.zeros(2, 3), torch.tensor([1.0, -1.0]), torch.zeros(2, 3),
                          aggregation=aggregation, max_response_len=3)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(lp.grad).all()


def test_garbage_on_padding_stays_out() -> None:
    # padding holds a log-ratio of 200 (exp overflows float32) and NaN/inf log-probs
    lp = torch.tensor([[0.0, 200.0], [0.0, float("inf")]], requires_grad=True)
    old = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    ref = torch.tensor([[0.0, float("nan")], [0.0, float("-inf")]])
    mask = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    loss, stats = policy_loss(lp, old, torch.tensor([1.0, -1.0]), mask, aggregation="token_mean",
                              ref_logprobs=ref, kl_coef=0.1)
    loss.backward()
    # only the two valid tokens count: rho 1, A = +1 and -1 -> mean 0; KL 0
    assert loss.item() == 0.0 and stats["kl"] == 0.0
    assert torch.isfinite(lp.grad).all()


def test_non_binary_mask_is_refused() -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        policy_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1), torch.full((1, 2), 2.0),
                    aggregation="token_mean")


def test_nan_on_a_response_token_is_refused() -> None:
    ref = torch.tensor([[float("nan"), 0.0]])
    with pytest.raises(ValueError, match="ref_logprobs contains NaN"):
        policy_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1), torch.ones(1, 2),
                    aggregation="token_mean", ref_logprobs=ref)


@pytest.mark.parametrize("aggregation", ["dr_grpo", "token_mean", "seq_mean_token_mean"])
def test_a_masked_response_with_its_normaliser_removed_is_no_response(aggregation) -> None:
    """train.overlong_filter: a truncated response's tokens leave the mask and the counts; the
    loss and its gradient are those of the batch without it."""
    torch.manual_seed(0)
    logp = torch.randn(3, 4, requires_grad=True)
    old, adv = torch.randn(3, 4), torch.tensor([1.0, -2.0, 0.5])
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    kwargs = dict(aggregation=aggregation, max_response_len=4)
    filtered = mask.clone()
    filtered[1] = 0.0  # response 1 was truncated
    loss, _ = policy_loss(logp, old, adv, filtered, num_tokens=5.0, num_responses=2.0,
                          **kwargs)
    (grad,) = torch.autograd.grad(loss, logp)
    keep = [0, 2]
    want, _ = policy_loss(logp[keep], old[keep], adv[keep], mask[keep], **kwargs)
    (want_grad,) = torch.autograd.grad(want, logp)
    assert float(loss.detach()) == pytest.approx(float(want.detach()), abs=1e-7)
    assert torch.allclose(grad, want_grad) and (grad[1] == 0).all()

"""PPO-clip policy loss with the three aggregations the papers disagree on.

docs/ALGORITHMS.md section 2, step 6.

Shapes: B responses (= P prompts x G samples), T response tokens (padded). ``response_mask`` is
a float {0, 1} tensor (B, T), 1 on real response tokens and 0 on padding and after EOS; it is
applied to every per-token value before any reduction.

Split invariance: every aggregation is a *sum* of per-token or per-response terms divided by a
normaliser. Pass the normaliser of the whole global batch (``num_tokens`` / ``num_responses``)
and the losses of any split of the batch across learner ranks or micro-batches add up to the
loss of the whole batch, so the update does not depend on how the batch was cut. Data-parallel
engines *average* gradients over ranks (DeepSpeed also divides by its accumulation steps), so a
trainer multiplies each local loss by world size x accumulation steps to get the sum back.

Padding is inert: log-ratios and KL are zeroed where the mask is 0 *before* ``exp``, so garbage
log-probs on padding (even +-inf) cannot turn the loss or its gradient into NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

import torch
from torch import Tensor

from seedgrpo.algorithms.registry import Registry

__all__ = ["LOSS_AGGREGATIONS", "PolicyLossStats", "aggregate_loss", "policy_loss", "k3_kl"]

AggregationFn = Callable[[Tensor, Tensor, "float | None", "float | None", "int | None"], Tensor]
LOSS_AGGREGATIONS: Registry[AggregationFn] = Registry("loss aggregation")


@LOSS_AGGREGATIONS.register("dr_grpo")
def _agg_dr_grpo(
    per_token: Tensor,
    mask: Tensor,
    num_tokens: float | None,
    num_responses: float | None,
    max_response_len: int | None,
) -> Tensor:
    """Token sum divided by a constant (max generation length), mean over responses. [paper]

    The constant removes GRPO's length bias (Dr. GRPO, Liu et al. 2025).
    """
    if max_response_len is None or max_response_len <= 0:
        raise ValueError(
            "aggregation 'dr_grpo' needs max_response_len > 0 (the constant generation budget, "
            "rollout.max_new_tokens); got " + repr(max_response_len)
        )
    responses = per_token.shape[0] if num_responses is None else num_responses
    return (per_token * mask).sum() / (max_response_len * responses)


@LOSS_AGGREGATIONS.register("token_mean")
def _agg_token_mean(
    per_token: Tensor,
    mask: Tensor,
    num_tokens: float | None,
    num_responses: float | None,
    max_response_len: int | None,
) -> Tensor:
    """Sum over all valid tokens / number of valid tokens (DAPO)."""
    tokens = mask.sum().clamp(min=1.0) if num_tokens is None else num_tokens
    return (per_token * mask).sum() / tokens  # an all-padding micro-batch contributes 0


@LOSS_AGGREGATIONS.register("seq_mean_token_mean")
def _agg_seq_mean_token_mean(
    per_token: Tensor,
    mask: Tensor,
    num_tokens: float | None,
    num_responses: float | None,
    max_response_len: int | None,
) -> Tensor:
    """Mean over each response's tokens, then over responses (original GRPO).

    A response with no valid token contributes 0 and still counts in the response total.
    """
    lengths = mask.sum(dim=1).clamp(min=1.0)  # (B,)
    per_response = (per_token * mask).sum(dim=1) / lengths  # (B,)
    responses = per_token.shape[0] if num_responses is None else num_responses
    return per_response.sum() / responses


def aggregate_loss(
    per_token: Tensor,
    response_mask: Tensor,
    aggregation: str,
    *,
    num_tokens: float | None = None,
    num_responses: float | None = None,
    max_response_len: int | None = None,
) -> Tensor:
    """Reduce a (B, T) per-token loss to a scalar with one of ``LOSS_AGGREGATIONS``.

    >>> per_token = torch.tensor([[1.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    >>> mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    >>> float(aggregate_loss(per_token, mask, "token_mean"))  # (1 + 1 + 2) / 3 tokens
    1.3333333730697632
    >>> float(aggregate_loss(per_token, mask, "seq_mean_token_mean"))  # (1 + 2) / 2
    1.5
    >>> float(aggregate_loss(per_token, mask, "dr_grpo", max_response_len=4))  # 4 / (4 * 2)
    0.5
    """
    if per_token.shape != response_mask.shape or per_token.dim() != 2:
        raise ValueError(
            f"per_token has shape {tuple(per_token.shape)} and response_mask "
            f"{tuple(response_mask.shape)}; both must be the same (B, T)"
        )
    fn = LOSS_AGGREGATIONS.get(aggregation)
    return fn(per_token, response_mask.to(per_token.dtype), num_tokens, num_responses,
              max_response_len)


def k3_kl(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(pi_theta || pi_ref): exp(d) - d - 1, d = ref - logp (>= 0).

    Schulman's unbiased, always non-negative estimator, as in GRPO, TRL and verl ("low_var_kl").
    """
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1.0


class PolicyLossStats(TypedDict):
    """Diagnostics of one loss call, plain floats (logged as ``train/clip_frac``, ``train/kl``)."""

    clip_frac: float  # fraction of valid tokens whose clipped term was the active one
    kl: float  # mean k3 KL to the reference over valid tokens; 0 without a reference


def policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    response_mask: Tensor,
    *,
    clip_eps_low: float = 0.2,
    clip_eps_high: float | None = None,
    aggregation: str = "dr_grpo",
    max_response_len: int | None = None,
    ref_logprobs: Tensor | None = None,
    kl_coef: float = 0.0,
    num_tokens: float | None = None,
    num_responses: float | None = None,
) -> tuple[Tensor, PolicyLossStats]:
    """PPO-clip loss  -min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A) [+ kl_coef * k3].

    Shapes: ``logprobs``, ``old_logprobs``, ``response_mask`` and ``ref_logprobs`` (B, T);
    ``advantages`` (B,) one value per response (broadcast over its tokens) or (B, T).
    ``clip_eps_high`` defaults to ``clip_eps_low`` (symmetric); DAPO's clip-higher is 0.2 / 0.28.
    ``num_tokens`` / ``num_responses``: global normalisers, see the module docstring.

    >>> lp = torch.zeros(2, 2)
    >>> loss, stats = policy_loss(lp, lp, torch.tensor([1.0, -1.0]), torch.ones(2, 2),
    ...                           aggregation="token_mean")
    >>> float(loss), stats["clip_frac"]  # rho = 1: loss = -mean(A) = 0, nothing clipped
    (0.0, 0.0)
    """
    eps_high = clip_eps_low if clip_eps_high is None else clip_eps_high
    if not (0.0 < clip_eps_low < 1.0) or eps_high <= 0.0:
        raise ValueError(
            f"clip_eps_low is {clip_eps_low} and clip_eps_high {eps_high}; need "
            "0 < clip_eps_low < 1 and clip_eps_high > 0"
        )
    if kl_coef < 0.0:
        raise ValueError(f"kl_coef is {kl_coef}; it must be >= 0")
    if kl_coef > 0.0 and ref_logprobs is None:
        raise ValueError("kl_coef > 0 needs ref_logprobs (the reference model's log-probs)")
    for name, t in (("old_logprobs", old_logprobs), ("response_mask", response_mask),
                    ("ref_logprobs", ref_logprobs)):
        if t is not None and t.shape != logprobs.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)}; logprobs has "
                             f"{tuple(logprobs.shape)}; they must match")
    if advantages.dim() == 1:
        if advantages.shape[0] != logprobs.shape[0]:
            raise ValueError(f"advantages has {advantages.shape[0]} entries for "
                             f"{logprobs.shape[0]} responses")
        advantages = advantages[:, None]  # (B, 1), broadcast over T
    elif advantages.shape != logprobs.shape:
        raise ValueError(f"advantages has shape {tuple(advantages.shape)}; expected (B,) or "
                         f"(B, T) = {tuple(logprobs.shape)}")
    if not torch.isfinite(advantages).all():
        raise ValueError("advantages contains NaN or infinite values")
    if not ((response_mask == 0) | (response_mask == 1)).all():
        raise ValueError("response_mask must hold only 0 and 1 (1 = a real response token)")
    valid_tokens = response_mask.bool()
    for name, t in (("logprobs", logprobs), ("old_logprobs", old_logprobs),
                    ("ref_logprobs", ref_logprobs)):
        if t is not None and not torch.isfinite(t[valid_tokens]).all():
            raise ValueError(f"{name} contains NaN or infinite values on response tokens")

    mask = response_mask.to(logprobs.dtype)
    zero = torch.zeros((), dtype=logprobs.dtype)
    log_ratio = torch.where(valid_tokens, logprobs - old_logprobs, zero)  # padding -> ratio 1
    ratio = torch.exp(log_ratio)  # (B, T)
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip_eps_low, 1.0 + eps_high) * advantages
    pg_per_token = -torch.minimum(unclipped, clipped)  # (B, T)
    per_token = pg_per_token
    kl_per_token = None
    if ref_logprobs is not None:
        kl_per_token = k3_kl(torch.where(valid_tokens, logprobs, zero),
                             torch.where(valid_tokens, ref_logprobs, zero))
        if kl_coef > 0.0:
            per_token = per_token + kl_coef * kl_per_token

    loss = aggregate_loss(per_token, mask, aggregation, num_tokens=num_tokens,
                          num_responses=num_responses, max_response_len=max_response_len)
    with torch.no_grad():
        valid = mask.sum().clamp(min=1.0)
        stats: PolicyLossStats = {
            "clip_frac": float(((clipped < unclipped).to(mask.dtype) * mask).sum() / valid),
            "kl": 0.0 if kl_per_token is None else float((kl_per_token * mask).sum() / valid),
        }
    return loss, stats

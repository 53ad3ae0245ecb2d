"""Plug-in: the reward-variance-only ablation of GCPO's uncertainty.

GCPO's U multiplies a geometric term (how far apart the answers point) by a calibration term
(1 - RD_n) ** kappa, where RD_n = population std(rewards) / 0.5 is the group's reward
dispersion [recon]. This source keeps the calibration term alone:

    u = (1 - RD_n) ** kappa,  x = alpha * u      (kappa = algorithm.gcpo.kappa)

With 0/1 rewards the std is sqrt(p (1 - p)) for a success rate p, so u, and with it the factor,
depends on the group's success rate alone: u = 0 at p = 1/2, rising to 1 as p nears 0 or 1. It
separates "uncertain" from "hard": if it matches SEED-GRPO or GCPO in a sweep, their gain
came from how hard a prompt is, not from what the answers say. It needs no log-probs, no
clusters and no embeddings.

Used by experiments/uncertainty_sources.yaml (``plugins: [plugins.reward_variance]``, found
next to the experiment file); any experiment can list it the same way.
"""

from __future__ import annotations

from seedgrpo.algorithms import GroupContext, Uncertainty, register_uncertainty, reward_dispersion


@register_uncertainty("reward_variance")
def reward_variance(ctx: GroupContext) -> Uncertainty:
    """u = (1 - RD_n) ** kappa: GCPO's calibration term without its geometry."""
    u = (1.0 - reward_dispersion(ctx.rewards)) ** ctx.algo.gcpo.kappa
    return Uncertainty(u, ctx.algo.alpha * u)

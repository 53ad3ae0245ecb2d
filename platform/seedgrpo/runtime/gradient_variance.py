"""The gradient-variance diagnostic of one step, driven from the trial (``diagnostics.*``).

``submit`` runs before the step's update is submitted: the learner ranks' probe (and, for a
run that is not GCPO, the embeddings behind U) then sees pi_old, since every actor runs its
calls in order. ``collect`` runs once the step's scores are in: it puts the ranks' projections
together in prompt order, turns them into one measure per group
(``seedgrpo.algorithms.diagnostics``), correlates it with SE and U, and writes each group's
measure into the step's group rows (``grad_variance``; null for a group left out).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from seedgrpo.algorithms.diagnostics import (
    MIN_GROUPS,
    gradient_variance_metrics,
    group_gradient_variances,
)
from seedgrpo.config.schema import ExperimentConfig
from seedgrpo.runtime.batches import StepBatch

__all__ = ["PendingProbe", "submit_probe", "is_diagnostic_step"]

logger = logging.getLogger(__name__)


def is_diagnostic_step(cfg: ExperimentConfig, step: int) -> bool:
    """Every ``diagnostics.gradient_variance_every`` steps (never when 0)."""
    every = cfg.diagnostics.gradient_variance_every
    return bool(every) and step % every == 0


@dataclass
class PendingProbe:
    """The references of a submitted probe; ``collect`` waits for them."""

    cfg: ExperimentConfig
    step: int
    probes: list[Any]  # one per learner rank
    uncertainties: Any  # the scorer's U per group (a run that is not GCPO), or None
    actors: Any

    def collect(self, scored: Any) -> dict[str, float]:
        """The step's ``diag/*`` metrics; adds ``grad_variance`` to ``scored.rows``."""
        learners, scorer = self.actors.learners, self.actors.scorer
        results = learners.wait(self.probes, "the gradient-variance probe", self.step)
        projections = [row for r in results for row in r["projections"]]
        variances = group_gradient_variances(projections, self.cfg.algorithm.group_size)
        se = [s.se for s in scored.scores]
        if self.uncertainties is None:
            u = [s.uncertainty for s in scored.scores]
        else:
            u = scorer.wait([self.uncertainties], "GCPO's U for the diagnostic", self.step)[0]
        metrics = gradient_variance_metrics(variances, se, u)
        metrics["time/gradvar_probe_s"] = max(r["seconds"] for r in results)
        for row, v in zip(scored.rows, variances, strict=True):
            row["grad_variance"] = v
        if math.isnan(metrics["diag/gradvar_spearman_se"]):
            measured = int(metrics["diag/gradvar_groups"])
            reason = (f"{measured} groups with non-zero advantages (< {MIN_GROUPS})"
                      if measured < MIN_GROUPS else "the measure or SE is constant over groups")
            logger.info("step %d: diag/gradvar_spearman_* is NaN: %s", self.step, reason)
        return metrics


def submit_probe(cfg: ExperimentConfig, actors: Any, batch: StepBatch) -> PendingProbe:
    """Submit the probe of ``batch`` (and, for a run that is not GCPO, the U to compare
    with); call before the step's update is submitted."""
    diag = cfg.diagnostics
    seed = cfg.train.seed * 1_000_003 + batch.step  # same directions on every rank
    probes = actors.learners.gradient_probe(batch, seed=seed,
                                            directions=diag.gradient_variance_directions)
    uncertainties = None
    if cfg.algorithm.uncertainty != "gcpo":  # U from the embeddings this run can make
        embeddings = (actors.learners.embed(batch) if cfg.algorithm.gcpo.embedding == "policy"
                      else None)
        uncertainties = actors.scorer.gcpo_uncertainties(batch, embeddings)
    return PendingProbe(cfg, batch.step, probes, uncertainties, actors)

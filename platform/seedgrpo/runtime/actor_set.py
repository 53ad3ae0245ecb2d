"""The actors of a trial: started cold in the trial's placement group, or reset for the next one.

Starting vLLM and DeepSpeed costs a minute or more per trial on a small machine (processes,
imports, the process group, the engine's first compilations), while what a new trial of the
same sweep needs is only fresh weights, optimizer and counters. ``ActorSet`` keeps the actors
of a finished trial; ``acquire`` gives the next trial either those, reset, or a cold set when
the two trials cannot share them (``sharing_key`` differs: another model, engine or shape).

Bundle 0 of the placement group is the trial driver (Tune's trainable, or the
``seedgrpo-train`` process), then the scorer, the rollout workers and the learner ranks
(``seedgrpo.config.resources.trial_bundles``). Under Tune the trial's group already exists and
is reused, never nested.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.util.placement_group import (
    PlacementGroup,
    get_current_placement_group,
    placement_group,
    remove_placement_group,
)
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from seedgrpo.config.resources import actor_threads, resolve_learner_backend, trial_bundles
from seedgrpo.config.schema import ExperimentConfig
from seedgrpo.models.weight_sync import WeightSync
from seedgrpo.runtime.actors import LearnerActor, RolloutActor, ScorerActor
from seedgrpo.runtime.learner_group import LearnerGroup
from seedgrpo.runtime.rollout_group import RolloutGroup
from seedgrpo.runtime.scorer import Scorer
from seedgrpo.runtime.waiting import TrainingFailed

__all__ = ["ActorSet", "acquire", "sharing_key", "learner_backend"]

logger = logging.getLogger(__name__)


def learner_backend(cfg: ExperimentConfig) -> str:
    """``learner.backend`` resolved as the ranks will resolve it, from the GPUs a rank gets."""
    return resolve_learner_backend(cfg.learner.backend,
                                   has_gpu=cfg.resources.learner_rank.gpus > 0)


def sharing_key(cfg: ExperimentConfig, engine: str, model_dir: Path) -> tuple[Any, ...]:
    """What the actors themselves are built from: two trials with equal keys can share them.

    The model and its files, the engine and its memory (vLLM: also the cores it pinned),
    the number and resources of the actors, the process-group backend and the weight-sync
    transport. Everything else (algorithm, optimizer, schedule, data, seeds, steps, the
    learners' and the HF engine's thread counts) is set again per trial.
    """
    model = cfg.model.model_dump(mode="json")
    pinned = actor_threads(cfg, "rollout_worker") if engine == "vllm" else None
    return (str(model_dir), model["dtype"], model["max_seq_len"],
            model["gradient_checkpointing"], engine, cfg.rollout.gpu_memory_utilization,
            pinned, cfg.rollout.num_workers, cfg.learner.num_ranks, cfg.learner.zero_stage,
            learner_backend(cfg), cfg.rollout.weight_sync,
            tuple(tuple(sorted(b.resources.items())) for b in trial_bundles(cfg)),
            cfg.resources.placement_strategy)


@dataclass
class ActorSet:
    """The groups of one trial's actors, the placement group that holds them, and the
    weight sync between them."""

    pg: PlacementGroup
    scorer: Scorer
    rollouts: RolloutGroup
    learners: LearnerGroup
    weights: WeightSync
    key: tuple[Any, ...]
    owns_pg: bool = True  # False under Tune: the trial's group is Tune's to remove

    def reset(self, cfg: ExperimentConfig) -> None:
        """Ready for a new trial of ``cfg`` (same ``key``): base weights in every engine, a
        fresh policy, optimizer, scheduler and RNG on every rank, zeroed scorer counters."""
        config = cfg.model_dump(mode="json")
        self.rollouts.reset(config)
        self.scorer.reset(config)
        self.learners.reset(config)

    def memory(self) -> dict[str, float]:
        """Peak resident memory per actor, in MiB (``scorer``, ``rollout_0``, ``learner_0``)."""
        out = {"scorer": self.scorer.peak_rss_mb()[0]}
        out.update({f"rollout_{i}": v for i, v in enumerate(self.rollouts.peak_rss_mb())})
        out.update({f"learner_{i}": v for i, v in enumerate(self.learners.peak_rss_mb())})
        return out

    def shutdown(self) -> None:
        for group in (self.scorer, self.rollouts, self.learners):
            group.kill()
        if self.owns_pg:
            remove_placement_group(self.pg)


def _start(cfg: ExperimentConfig, model_dir: Path, engine: str, key: tuple[Any, ...]
           ) -> ActorSet:
    timeout = cfg.resources.call_timeout_s
    bundles = trial_bundles(cfg)
    pg = get_current_placement_group()
    owned = pg is None or len(pg.bundle_specs) != len(bundles)
    if owned:  # seedgrpo-train; under Tune the trial's group exists (never nest one)
        pg = placement_group([b.resources for b in bundles],
                             strategy=cfg.resources.placement_strategy)
        if not pg.wait(timeout):
            remove_placement_group(pg)
            raise TrainingFailed(f"the cluster cannot provide this trial's resources "
                             f"({[b.resources for b in bundles]}) within {timeout:.0f} s")
    index = {role: [i for i, b in enumerate(bundles) if b.role == role]
             for role in ("scorer", "rollout_worker", "learner_rank")}

    def place(i: int) -> dict[str, Any]:
        res = bundles[i].resources
        custom = {k: v for k, v in res.items() if k not in ("CPU", "GPU")}
        return {"num_cpus": res["CPU"], "num_gpus": res.get("GPU", 0.0),
                "resources": custom, "scheduling_strategy":
                PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i)}

    config = cfg.model_dump(mode="json")
    scorer = Scorer([ScorerActor.options(**place(index["scorer"][0])).remote(config)],
                    timeout_s=timeout)
    rollouts = RolloutGroup([RolloutActor.options(**place(b)).remote(config, str(model_dir),
                                                                      engine, w)
                             for w, b in enumerate(index["rollout_worker"])], timeout_s=timeout)
    ranks = index["learner_rank"]
    learners = LearnerGroup([LearnerActor.options(**place(b)).remote(config, str(model_dir), r,
                                                                     len(ranks))
                             for r, b in enumerate(ranks)], timeout_s=timeout,
                            zero_stage=cfg.learner.zero_stage)
    weights = WeightSync(cfg.rollout.weight_sync, learners, rollouts,
                         backend=learner_backend(cfg))
    actors = ActorSet(pg, scorer, rollouts, learners, weights, key, owns_pg=owned)
    try:
        rollouts.wait(rollouts.call("ready"), "starting the rollout engines")
        learners.setup()
    except BaseException:
        actors.shutdown()  # under Tune, Ray outlives the trial: leave nothing behind
        raise
    return actors


def acquire(warm: ActorSet | None, cfg: ExperimentConfig, model_dir: Path, engine: str
            ) -> tuple[ActorSet, bool]:
    """Actors for a trial of ``cfg``: ``warm`` reset when it can serve (returns it, True), else
    a cold set (``warm`` is shut down first, freeing its resources)."""
    key = sharing_key(cfg, engine, model_dir)
    if warm is not None and warm.key == key:
        warm.reset(cfg)
        return warm, True
    if warm is not None:
        logger.info("the previous trial's actors cannot serve this one (another model, engine "
                    "or shape): starting new ones")
        warm.shutdown()
    return _start(cfg, model_dir, engine, key), False

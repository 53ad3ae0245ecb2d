"""What one trial reserves: its placement-group bundles, computed from the trial's own config.

Bundle 0 is the trial driver (Tune runs the function trainable there), then the scorer, the
rollout workers and the learner ranks, in that order; actors receive bundle indices and never
build placement groups of their own (docs/ARCHITECTURE.md, "Conventions"). A trial's
config decides its bundles, so a sweep over rollout.num_workers or learner.num_ranks reserves
what each trial really needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from seedgrpo.config.schema import ExperimentConfig, ResourceSpec

__all__ = ["Bundle", "trial_bundles", "total_resources", "describe_resources", "actor_threads",
           "resolve_learner_backend"]


@dataclass(frozen=True)
class Bundle:
    """One placement-group bundle and the actor it is for."""

    role: str  # driver | scorer | rollout_worker | learner_rank
    resources: dict[str, float]


def _as_ray(spec: ResourceSpec) -> dict[str, float]:
    out = {"CPU": spec.cpus}
    if spec.gpus:
        out["GPU"] = spec.gpus
    out.update(spec.custom)
    return out


def trial_bundles(cfg: ExperimentConfig) -> list[Bundle]:
    """Bundles in placement order: driver, scorer, rollout workers, learner ranks.

    >>> [b.role for b in trial_bundles(ExperimentConfig())]
    ['driver', 'scorer', 'rollout_worker', 'learner_rank', 'learner_rank']
    """
    r = cfg.resources
    bundles = [Bundle("driver", _as_ray(r.driver)), Bundle("scorer", _as_ray(r.scorer))]
    bundles += [Bundle("rollout_worker", _as_ray(r.rollout_worker))] * cfg.rollout.num_workers
    bundles += [Bundle("learner_rank", _as_ray(r.learner_rank))] * cfg.learner.num_ranks
    return bundles


def total_resources(cfg: ExperimentConfig) -> dict[str, float]:
    """Sum over the bundles: what the cluster must have free for the trial to start."""
    total: dict[str, float] = {}
    for bundle in trial_bundles(cfg):
        for name, amount in bundle.resources.items():
            total[name] = total.get(name, 0.0) + amount
    return total


def describe_resources(cfg: ExperimentConfig) -> str:
    """``CPU 2, GPU 0`` style summary (custom resources appended).

    >>> describe_resources(ExperimentConfig())
    'CPU 2, GPU 0'
    """
    total = total_resources(cfg)
    parts = [f"CPU {total.pop('CPU', 0.0):g}", f"GPU {total.pop('GPU', 0.0):g}"]
    parts += [f"{name} {amount:g}" for name, amount in sorted(total.items())]
    return ", ".join(parts)


def actor_threads(cfg: ExperimentConfig, role: str, *, alone: bool = False) -> int:
    """Compute threads for each ``rollout_worker`` or ``learner_rank`` of a trial.

    A trial owns the CPUs its bundles reserve. When generation and learning take turns
    (``rollout.max_staleness`` 0), the phase that runs may use all of them, shared by its
    actors; when they overlap, each actor keeps to its own bundle, so the engines and the
    learners never fight over a core. ``alone``: a phase that never overlaps another (an
    evaluation) takes the turn-taking share either way. Whole cores, and at least one thread.

    >>> cfg = ExperimentConfig()  # 2 CPUs in all: 0.5 per rank, 0.5 for the engine
    >>> actor_threads(cfg, "learner_rank"), actor_threads(cfg, "rollout_worker")
    (1, 1)
    >>> actor_threads(cfg, "rollout_worker", alone=True)
    2
    >>> turns = ExperimentConfig(rollout={"max_staleness": 0})
    >>> actor_threads(turns, "learner_rank"), actor_threads(turns, "rollout_worker")
    (1, 2)
    """
    if role not in ("rollout_worker", "learner_rank"):
        raise ValueError(f"no thread rule for role '{role}'")
    if alone or cfg.rollout.max_staleness == 0:
        peers = cfg.rollout.num_workers if role == "rollout_worker" else cfg.learner.num_ranks
        share = total_resources(cfg)["CPU"] / peers
    else:
        share = getattr(cfg.resources, role).cpus
    return max(1, math.floor(share + 1e-9))


def resolve_learner_backend(setting: str, *, has_gpu: bool) -> str:
    """The torch.distributed backend of the learner ranks for ``learner.backend``: ``auto`` is
    nccl when a rank has a GPU, else gloo; any other setting is taken as it is.

    One rule for the two places that need it: a learner rank (``has_gpu``: does it see CUDA)
    and the driver deciding whether two trials can share their actors (``has_gpu``: does the
    config give each rank a GPU).

    >>> [resolve_learner_backend("auto", has_gpu=gpu) for gpu in (False, True)]
    ['gloo', 'nccl']
    >>> resolve_learner_backend("gloo", has_gpu=True)
    'gloo'
    """
    if setting != "auto":
        return setting
    return "nccl" if has_gpu else "gloo"

"""The SEED-GRPO / GCPO algorithm library: pure functions, no Ray, no I/O.

Researchers import these into their own trainers, as they do with verl's ``core_algos``::

    from seedgrpo.algorithms import extract_answer, cluster_answers, seed_grpo_advantages

Plug-ins extend it through public decorators: ``register_uncertainty`` (what f reads),
``register_modulation`` (f itself) and, in ``seedgrpo.rewards``, ``register_reward``. The names
they register become valid config values (``algorithm.uncertainty``, ``algorithm.modulation``,
``algorithm.reward``) once an experiment lists the module in ``plugins:``.

Importing this package is cheap: ``policy_loss`` and the other torch pieces load on first use,
so scorers and config tools never pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seedgrpo.algorithms.advantages import (
    BASELINES,
    AdvantageSettings,
    GcpoSettings,
    ModulationInfo,
    gcpo_advantages,
    group_advantages,
    modulated_advantages,
    seed_grpo_advantages,
    uncertainty_advantages,
)
from seedgrpo.algorithms.answers import extract_answer
from seedgrpo.algorithms.clustering import CLUSTERINGS, cluster_answers
from seedgrpo.algorithms.entropy import SE_ESTIMATORS, semantic_entropy
from seedgrpo.algorithms.geometry import (
    GEOMETRY_MEASURES,
    barycentric_transport,
    cosine_dispersion,
    gcpo_uncertainty,
    reward_dispersion,
)
from seedgrpo.algorithms.modulation import MODULATIONS, modulate, register_modulation
from seedgrpo.algorithms.registry import Registry
from seedgrpo.algorithms.uncertainty import (
    UNCERTAINTY_SOURCES,
    GroupContext,
    Uncertainty,
    UncertaintySource,
    measure_uncertainty,
    register_uncertainty,
    uncertainty_needs_embeddings,
)

if TYPE_CHECKING:
    from seedgrpo.algorithms.losses import (
        LOSS_AGGREGATIONS,
        PolicyLossStats,
        aggregate_loss,
        k3_kl,
        policy_loss,
    )

_TORCH_NAMES = {"LOSS_AGGREGATIONS", "PolicyLossStats", "aggregate_loss", "k3_kl", "policy_loss"}

__all__ = [
    "BASELINES",
    "CLUSTERINGS",
    "GEOMETRY_MEASURES",
    "LOSS_AGGREGATIONS",
    "MODULATIONS",
    "SE_ESTIMATORS",
    "UNCERTAINTY_SOURCES",
    "GroupContext",
    "ModulationInfo",
    "PolicyLossStats",
    "Registry",
    "Uncertainty",
    "UncertaintySource",
    "aggregate_loss",
    "barycentric_transport",
    "cluster_answers",
    "cosine_dispersion",
    "extract_answer",
    "AdvantageSettings",
    "GcpoSettings",
    "gcpo_advantages",
    "gcpo_uncertainty",
    "group_advantages",
    "k3_kl",
    "measure_uncertainty",
    "modulate",
    "modulated_advantages",
    "policy_loss",
    "register_modulation",
    "register_uncertainty",
    "reward_dispersion",
    "seed_grpo_advantages",
    "uncertainty_advantages",
    "semantic_entropy",
    "uncertainty_needs_embeddings",
]


def __getattr__(name: str) -> Any:
    """Load the torch-based names lazily (PEP 562) to keep ``import seedgrpo.algorithms`` cheap."""
    if name in _TORCH_NAMES:
        from seedgrpo.algorithms import losses

        return getattr(losses, name)
    raise AttributeError(f"module 'seedgrpo.algorithms' has no attribute '{name}'")

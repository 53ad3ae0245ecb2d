"""What Tune searches over, and how a Tune trial's config becomes one of our trials.

Grid and random search: the trials are expanded by ``seedgrpo.config`` (the dry run prints the
same list), and Tune runs a grid over their indices, so the sweep runs exactly what the dry run
listed. Optuna: Tune samples the search-space domains and the trainable builds the config.
Either way a trial's placement group is computed from its own config.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from seedgrpo.config import ExperimentConfig, PlannedTrial
from seedgrpo.config.applicability import is_not_applicable, not_applicable
from seedgrpo.config.resources import trial_bundles
from seedgrpo.config.schema import Domain
from seedgrpo.config.search_space import set_dotted, trial_name
from seedgrpo.redact import redact_config

__all__ = ["SweepSpace", "tune_domain"]

TRIAL_KEY = "trial"  # the grid over expanded trials: {"trial": index}


def tune_domain(domain: Domain) -> Any:
    """A sampled search-space domain as a Tune domain (``randint``'s high end is excluded)."""
    from ray import tune

    lo_hi = domain.values
    if domain.kind == "choice":
        return tune.choice(list(domain.values))
    if domain.kind == "uniform":
        return tune.uniform(lo_hi[0], lo_hi[1])
    if domain.kind == "loguniform":
        return tune.loguniform(lo_hi[0], lo_hi[1])
    if domain.kind == "randint":
        return tune.randint(lo_hi[0], lo_hi[1])
    raise ValueError(f"{domain.kind} is not sampled; grids are expanded before Tune")


@dataclass(frozen=True)
class SweepSpace:
    """The base config and the expanded trials; picklable, so trials can resolve themselves."""

    base: dict[str, Any]  # the experiment's resolved config (JSON-able)
    trials: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...]  # (name, params, config)
    adaptive: bool  # optuna: values chosen at run time

    @classmethod
    def from_trials(cls, cfg: ExperimentConfig, trials: Sequence[PlannedTrial]) -> SweepSpace:
        """The space of ``trials``, their tracking URIs redacted: Tune pickles the space into
        its state files (``tune/tuner.pkl``), and the live URI reaches trials another way
        (``SweepContext.mlflow_uri``)."""
        adaptive = cfg.tune.search_alg == "optuna"
        expanded = () if adaptive else tuple(
            (t.name, dict(t.params), redact_config(t.config.model_dump(mode="json")))
            for t in trials)
        return cls(redact_config(cfg.model_dump(mode="json")), expanded, adaptive)

    def param_space(self) -> dict[str, Any]:
        from ray import tune

        if not self.adaptive:
            return {TRIAL_KEY: tune.grid_search(list(range(len(self.trials))))}
        space = ExperimentConfig.model_validate(self.base).search_space
        return {key: tune_domain(domain) for key, domain in space.items()}

    def resolve(self, config: dict[str, Any], trial_id: str = "") -> PlannedTrial:
        """The trial a Tune config stands for. Optuna trials are named from their values and
        the number of the Tune trial (``t3-linear-a0.12``), so two draws never share a name."""
        if not self.adaptive:
            index = int(config[TRIAL_KEY])
            name, params, data = self.trials[index]
            return PlannedTrial(index, name, params, ExperimentConfig.model_validate(data))
        data = copy.deepcopy(self.base)
        params = {k: v for k, v in config.items() if k in data.get("search_space", {})}
        for key, value in params.items():
            set_dotted(data, key, value)
        data["search_space"] = {}
        cfg = ExperimentConfig.model_validate(data)
        ignored = not_applicable(cfg)
        varied = {k: v for k, v in params.items() if not is_not_applicable(k, ignored)}
        number = trial_id.rsplit("_", 1)[-1].lstrip("0") or "0"
        return PlannedTrial(int(number) if number.isdigit() else 0,
                            f"t{number}-{trial_name(varied)}", varied, cfg)

    def resources(self, config: dict[str, Any]) -> Any:
        """The trial's placement group: driver, scorer, rollout workers, learner ranks."""
        from ray.tune import PlacementGroupFactory

        cfg = self.resolve(config).config
        return PlacementGroupFactory([b.resources for b in trial_bundles(cfg)],
                                     strategy=cfg.resources.placement_strategy)

    def all_configs(self) -> list[ExperimentConfig]:
        """Every config the sweep may run (for Optuna: the base, whose resources all share)."""
        if self.adaptive:
            return [ExperimentConfig.model_validate(self.base)]
        return [ExperimentConfig.model_validate(data) for _, _, data in self.trials]

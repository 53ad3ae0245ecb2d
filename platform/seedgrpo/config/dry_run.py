"""The dry run's output: a table of trials (text) or the expanded trial configs (JSON).

Pure formatting, so that what ``seedgrpo-sweep --dry-run`` shows can be tested exactly. What is
printed is often pasted into issues and logs: tracking URIs appear with their credentials
redacted (``seedgrpo.redact``). Output is linear in the number of trials: a trial's
config carries no search space.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seedgrpo.config.loading import LoadedExperiment
from seedgrpo.config.resources import describe_resources, total_resources, trial_bundles
from seedgrpo.config.search_space import PlannedTrial
from seedgrpo.redact import redact_config

__all__ = ["render_trial_table", "trials_as_json"]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header).rstrip()] + [fmt.format(*row).rstrip() for row in rows]


def render_trial_table(loaded: LoadedExperiment, trials: Sequence[PlannedTrial]) -> str:
    """A summary line, one row per trial, and the closing ``N trials`` line."""
    cfg = loaded.config
    tune = cfg.tune
    summary = (
        f"{loaded.label}: experiment '{cfg.tracking.experiment_name}', {tune.search_alg} search, "
        f"{tune.scheduler} scheduler, metric {tune.metric} ({tune.mode}), "
        f"{len(trial_bundles(cfg))} bundles per trial"
        + ("" if cfg.resources.placement_strategy == "PACK"
           else f" ({cfg.resources.placement_strategy})")
    )
    keys = list(cfg.search_space)
    if trials and "train.seed" in trials[0].params and "train.seed" not in keys:
        keys.append("train.seed")
    header = ["#", "name", *keys, "resources"]
    rows = []
    for t in trials:
        if t.adaptive:
            values = [f"{t.adaptive[k].describe()} (optuna)" for k in keys]
        else:
            values = [_cell(t.params[k]) if k in t.params else "-" for k in keys]  # "-": ignored
        rows.append([str(t.index), t.name, *values, describe_resources(t.config)])
    noun = "trial" if len(trials) == 1 else "trials"
    return "\n".join([summary, *_table(header, rows), f"{len(trials)} {noun}"]) + "\n"


def trials_as_json(trials: Sequence[PlannedTrial]) -> list[dict[str, Any]]:
    """The expanded trials: name, varied values, resources and the full resolved config."""
    return [
        {
            "index": t.index,
            "name": t.name,
            "params": dict(t.params),
            "adaptive": {k: d.model_dump() for k, d in t.adaptive.items()},
            "resources": {
                "bundles": [{"role": b.role, **b.resources} for b in trial_bundles(t.config)],
                "total": total_resources(t.config),
            },
            "config": redact_config(t.config.model_dump(mode="json")),
        }
        for t in trials
    ]

"""Which settings a trial ignores: the one rule behind the sweep's trial collapsing and the
``n/a`` params of its MLflow runs.

A setting is *not applicable* to a config when no value of it can change what that config's
run trains or measures: its policy updates, and the metrics every run of it logs. Two trials
that differ only in such settings are the same run, so the sweep runs it once
(``seedgrpo.config.search_space.expand_trials``); and the run's params say ``n/a`` for them
instead of the default they ignore, so that the `none` baseline does not sit at alpha 0.02 in
MLflow's comparison plots as if it had been modulated (``seedgrpo.tracking.mlflow_run``).

The rule, per setting (n/a when):

- ``algorithm.alpha``, ``algorithm.uncertainty``: ``modulation`` is ``none`` (f = 1 reads no
  uncertainty). Uncertainty sources still run and log ``train/uncertainty_mean``, but it is
  not what the update saw.
- ``algorithm.focal_gamma``: ``modulation`` is a built-in that does not read it (all but
  ``focal``); a plug-in modulation is called as ``f(x, gamma)`` and may read it.
- ``algorithm.gcpo.*``: GCPO's U is never computed into anything the run uses: the
  gradient-variance diagnostic is off (it measures U for every run) and f reads the built-in
  ``semantic_entropy`` or nothing (``none``). A plug-in uncertainty sees the whole
  ``algorithm`` section, so it keeps them. ``algorithm.gcpo.encoder`` also when the embedding
  is ``policy`` (no sentence encoder is loaded).
- ``algorithm.logprob_normalization``: the SE estimator is ``discrete`` (no log-probs), unless
  a plug-in uncertainty, which is handed the normalised log-probs, feeds f.
- ``algorithm.clustering_budget_s``: ``clustering`` is ``exact`` (no math-verify to budget).
- ``train.dynamic_sampling_max_rounds``: ``train.dynamic_sampling`` is off.
- ``diagnostics.gradient_variance_directions``: ``diagnostics.gradient_variance_every`` is 0.
- ``eval.temperature``, ``eval.top_p``: every benchmark is evaluated with one greedy sample.
- ``data.synthetic.*``: ``data.source`` is not ``synthetic``.

What stays applicable on purpose: the semantic-entropy settings (``estimator``, ``clustering``)
under ``none``, since every run logs its SE (``train/se_mean``, the report's uncertainty plot);
``train.warmup_steps`` under a constant schedule (the warm-up still ramps).

The rule reads a setting only where that setting is itself applicable (``uncertainty`` only
when ``modulation`` is not ``none``, ``gcpo.embedding`` only when GCPO applies), so resetting
the n/a values of a config to anything valid leaves its n/a set unchanged: the collapsed
trial, which keeps the base config's values there, has the same n/a set as the trials it
stands for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from seedgrpo.config.sections import GcpoConfig, SyntheticDataConfig

__all__ = ["NOT_APPLICABLE", "is_not_applicable", "mark_not_applicable", "not_applicable"]

NOT_APPLICABLE = "n/a"  # the param value MLflow shows for a setting the trial ignores

_GAMMA_FREE = frozenset({"none", "linear", "exp", "inverse"})  # built-ins ignoring focal_gamma
_BUILTIN_SOURCES = frozenset({"semantic_entropy", "gcpo"})  # their reads are known
_GCPO = "algorithm.gcpo"
_SYNTHETIC = "data.synthetic"


def _get(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


def _section(prefix: str, model: type[BaseModel]) -> set[str]:
    """The section's own path and each of its fields' (a sweep may name either)."""
    return {prefix, *(f"{prefix}.{name}" for name in model.model_fields)}


def not_applicable(config: Mapping[str, Any] | BaseModel) -> frozenset[str]:
    """The dotted paths ``config`` ignores (module docstring); a section is named with its
    fields when it is n/a as a whole.

    ``config``: an ``ExperimentConfig`` or its ``model_dump`` (python or JSON mode).

    >>> from seedgrpo.config.schema import ExperimentConfig
    >>> baseline = ExperimentConfig.model_validate({
    ...     "algorithm": {"modulation": "none"}, "diagnostics": {"gradient_variance_every": 2},
    ...     "train": {"dynamic_sampling": True}, "eval": {"samples": 4, "temperature": 0.6}})
    >>> # the diagnostic measures U: GCPO's settings apply
    >>> sorted(not_applicable(baseline))  # doctest: +NORMALIZE_WHITESPACE
    ['algorithm.alpha', 'algorithm.focal_gamma', 'algorithm.gcpo.encoder',
     'algorithm.uncertainty']
    """
    if isinstance(config, BaseModel):
        config = config.model_dump(mode="python")
    modulation = _get(config, "algorithm.modulation")
    modulated = modulation != "none"
    source = _get(config, "algorithm.uncertainty") if modulated else None
    diagnosed = bool(_get(config, "diagnostics.gradient_variance_every"))
    ignored: set[str] = set()
    if not modulated:
        ignored |= {"algorithm.alpha", "algorithm.uncertainty"}
    if modulation in _GAMMA_FREE:
        ignored.add("algorithm.focal_gamma")
    if not diagnosed and source in (None, "semantic_entropy"):
        ignored |= _section(_GCPO, GcpoConfig)
    elif _get(config, f"{_GCPO}.embedding") == "policy":
        ignored.add(f"{_GCPO}.encoder")
    plugin_source = source is not None and source not in _BUILTIN_SOURCES
    if _get(config, "algorithm.estimator") == "discrete" and not plugin_source:
        ignored.add("algorithm.logprob_normalization")
    if _get(config, "algorithm.clustering") == "exact":
        ignored.add("algorithm.clustering_budget_s")
    if not _get(config, "train.dynamic_sampling"):
        ignored.add("train.dynamic_sampling_max_rounds")
    if not _get(config, "diagnostics.gradient_variance_every"):
        ignored.add("diagnostics.gradient_variance_directions")
    samples = [_get(config, "eval.samples"), *_get(config, "eval.samples_per_benchmark").values()]
    if all(k == 1 for k in samples):
        ignored |= {"eval.temperature", "eval.top_p"}
    if _get(config, "data.source") != "synthetic":
        ignored |= _section(_SYNTHETIC, SyntheticDataConfig)
    return frozenset(ignored)


def is_not_applicable(key: str, ignored: frozenset[str] | set[str]) -> bool:
    """Whether dotted ``key`` (a param or a swept path) lies in or under an n/a path.

    >>> is_not_applicable("algorithm.gcpo.kappa", frozenset({"algorithm.gcpo"}))
    True
    >>> is_not_applicable("algorithm.gcpo", frozenset({"algorithm.gcpo.encoder"}))
    False
    """
    parts = key.split(".")
    return any(".".join(parts[:i]) in ignored for i in range(1, len(parts) + 1))


def mark_not_applicable(params: Mapping[str, str], ignored: frozenset[str] | set[str]
                        ) -> dict[str, str]:
    """Flattened params with every n/a one's value replaced by ``n/a`` (its key kept, so the
    MLflow column exists for every trial of a sweep).

    >>> mark_not_applicable({"algorithm.alpha": "0.5", "algorithm.modulation": "none"},
    ...                     frozenset({"algorithm.alpha"}))
    {'algorithm.alpha': 'n/a', 'algorithm.modulation': 'none'}
    """
    return {k: NOT_APPLICABLE if is_not_applicable(k, ignored) else v for k, v in params.items()}

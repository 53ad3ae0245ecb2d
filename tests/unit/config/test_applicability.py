"""Which settings a trial ignores (``seedgrpo.config.applicability``): the exact rule, its
closure (resetting an ignored value never changes what is ignored), and that the sweep's
trial collapsing and the trials' ``n/a`` params come from it."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from seedgrpo.config import ExperimentConfig, expand_trials
from seedgrpo.config.applicability import (
    NOT_APPLICABLE,
    is_not_applicable,
    mark_not_applicable,
    not_applicable,
)
from seedgrpo.config.search_space import set_dotted
from seedgrpo.sweep.space import SweepSpace
from seedgrpo.tracking.mlflow_run import flatten_config

GCPO = {"algorithm.gcpo", "algorithm.gcpo.measure", "algorithm.gcpo.embedding",
        "algorithm.gcpo.encoder", "algorithm.gcpo.kappa"}
SYNTHETIC = {"data.synthetic", "data.synthetic.num_problems", "data.synthetic.num_operands",
             "data.synthetic.max_operand", "data.synthetic.operations"}
# what the default config (linear SEED-GRPO, math_verify clustering, rao SE, greedy
# evaluation, synthetic data) ignores
DEFAULT = {"algorithm.focal_gamma", *GCPO, "train.dynamic_sampling_max_rounds",
           "diagnostics.gradient_variance_directions", "eval.temperature", "eval.top_p"}


def _config(**values: Any) -> dict[str, Any]:
    """The default config as JSON, with dotted ``values`` set (``a__b`` for ``a.b``); not
    validated, so a plug-in's name needs no registration."""
    data = ExperimentConfig().model_dump(mode="json")
    for key, value in values.items():
        set_dotted(data, key.replace("__", "."), value)
    return data


@pytest.mark.parametrize(("values", "expected"), [
    ({}, DEFAULT),
    # the `none` baseline: no alpha, no uncertainty source, no focal_gamma, no GCPO
    ({"algorithm__modulation": "none"}, DEFAULT | {"algorithm.alpha", "algorithm.uncertainty"}),
    ({"algorithm__modulation": "none", "algorithm__uncertainty": "gcpo"},
     DEFAULT | {"algorithm.alpha", "algorithm.uncertainty"}),
    # only focal, and a plug-in f(x, gamma), read focal_gamma
    ({"algorithm__modulation": "focal"}, DEFAULT - {"algorithm.focal_gamma"}),
    ({"algorithm__modulation": "my_plugin_f"}, DEFAULT - {"algorithm.focal_gamma"}),
    ({"algorithm__modulation": "exp"}, DEFAULT),
    ({"algorithm__modulation": "inverse"}, DEFAULT),
    # GCPO reads its settings; the encoder only for encoder / answer embeddings
    ({"algorithm__uncertainty": "gcpo"}, DEFAULT - GCPO | {"algorithm.gcpo.encoder"}),
    ({"algorithm__uncertainty": "gcpo", "algorithm__gcpo__embedding": "answer",
      "algorithm__gcpo__encoder": "/models/minilm"}, DEFAULT - GCPO),
    # a plug-in source sees the whole algorithm section and the normalised log-probs
    ({"algorithm__uncertainty": "my_plugin_u", "algorithm__estimator": "discrete"},
     DEFAULT - GCPO | {"algorithm.gcpo.encoder"}),
    ({"algorithm__estimator": "discrete"}, DEFAULT | {"algorithm.logprob_normalization"}),
    ({"algorithm__modulation": "none", "algorithm__uncertainty": "my_plugin_u",
      "algorithm__estimator": "discrete"},
     DEFAULT | {"algorithm.alpha", "algorithm.uncertainty", "algorithm.logprob_normalization"}),
    # the gradient-variance diagnostic measures GCPO's U for every run
    ({"diagnostics__gradient_variance_every": 2},
     DEFAULT - GCPO - {"diagnostics.gradient_variance_directions"}
     | {"algorithm.gcpo.encoder"}),
    ({"algorithm__clustering": "exact"}, DEFAULT | {"algorithm.clustering_budget_s"}),
    ({"train__dynamic_sampling": True}, DEFAULT - {"train.dynamic_sampling_max_rounds"}),
    ({"eval__samples_per_benchmark": {"aime24": 16}, "eval__temperature": 0.6},
     DEFAULT - {"eval.temperature", "eval.top_p"}),
    ({"data__source": "jsonl", "data__path": "/data/train.jsonl"}, DEFAULT | SYNTHETIC),
])
def test_the_rule_exactly(values: dict[str, Any], expected: set[str]) -> None:
    assert not_applicable(_config(**values)) == expected


def test_a_config_model_and_its_dump_agree() -> None:
    cfg = ExperimentConfig.model_validate({"algorithm": {"modulation": "none"}})
    assert not_applicable(cfg) == not_applicable(cfg.model_dump(mode="json")) == \
        not_applicable(cfg.model_dump(mode="python"))


# the settings the rule reads, each with values to try; the n/a set must not move when one of
# them that is itself n/a changes: a collapsed trial keeps the base's values there
_CONTROLS = {
    "algorithm.modulation": ["none", "linear", "focal", "my_plugin_f"],
    "algorithm.uncertainty": ["semantic_entropy", "gcpo", "my_plugin_u"],
    "algorithm.estimator": ["rao", "discrete"],
    "algorithm.gcpo.embedding": ["policy", "encoder"],
    "diagnostics.gradient_variance_every": [0, 3],
    "algorithm.clustering": ["exact", "math_verify"],
    "train.dynamic_sampling": [False, True],
}


def test_resetting_an_ignored_value_never_changes_what_is_ignored() -> None:
    base = _config(algorithm__gcpo__encoder="/models/minilm")
    checked = 0
    for combo in itertools.product(*_CONTROLS.values()):
        data = copy.deepcopy(base)
        for key, value in zip(_CONTROLS, combo, strict=True):
            set_dotted(data, key, value)
        ignored = not_applicable(data)
        for key, values in _CONTROLS.items():
            if not is_not_applicable(key, ignored):
                continue
            for value in values:
                other = copy.deepcopy(data)
                set_dotted(other, key, value)
                assert not_applicable(other) == ignored, (combo, key, value)
                checked += 1
    assert checked > 100  # the loop above really compared something


def test_params_say_na_and_keep_every_key() -> None:
    cfg = ExperimentConfig.model_validate({"algorithm": {"modulation": "none", "alpha": 0.5}})
    params = mark_not_applicable(flatten_config(cfg.model_dump(mode="json")),
                                 not_applicable(cfg))
    assert params.keys() == flatten_config(cfg.model_dump(mode="json")).keys()
    assert params["algorithm.alpha"] == params["algorithm.gcpo.kappa"] == NOT_APPLICABLE
    assert params["algorithm.modulation"] == "none"
    assert params["algorithm.estimator"] == "rao"  # SE is logged by every run: it applies


def _sweep(space: dict[str, Any], **base: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({**base, "search_space": space})


def test_the_sweep_runs_a_trial_once_per_distinct_run() -> None:
    # none ignores alpha, uncertainty and GCPO; SEED ignores GCPO's kappa: 1 + 2 x (1 + 2)
    cfg = _sweep({"algorithm.modulation": {"grid": ["none", "linear"]},
                  "algorithm.alpha": {"grid": [0.1, 1.0]},
                  "algorithm.uncertainty": {"grid": ["semantic_entropy", "gcpo"]},
                  "algorithm.gcpo.kappa": {"grid": [1.0, 2.0]}})
    trials = expand_trials(cfg)
    assert [t.name for t in trials] == [
        "none", "semantic_entropy-linear-a0.1", "gcpo-linear-a0.1-kappa1",
        "gcpo-linear-a0.1-kappa2", "semantic_entropy-linear-a1",
        "gcpo-linear-a1-kappa1", "gcpo-linear-a1-kappa2"]
    for t in trials:  # what a trial lists as varied is exactly what it does not ignore
        ignored = not_applicable(t.config)
        assert [k for k in cfg.search_space if k in t.params] == \
            [k for k in cfg.search_space if not is_not_applicable(k, ignored)]
    configs = [t.config.model_dump(mode="json") for t in trials]
    assert all(a != b for a, b in itertools.combinations(configs, 2))  # no run twice
    none = trials[0].config.algorithm
    assert (none.alpha, none.gcpo.kappa) == (0.02, 1.0)  # reset to the base's values


def test_dynamic_sampling_rounds_collapse_when_it_is_off() -> None:
    cfg = _sweep({"train.dynamic_sampling": {"grid": [False, True]},
                  "train.dynamic_sampling_max_rounds": {"grid": [2, 8]}})
    assert [dict(t.params) for t in expand_trials(cfg)] == [
        {"train.dynamic_sampling": False},
        {"train.dynamic_sampling": True, "train.dynamic_sampling_max_rounds": 2},
        {"train.dynamic_sampling": True, "train.dynamic_sampling_max_rounds": 8}]


def test_optuna_trials_leave_out_what_they_ignore() -> None:
    cfg = _sweep({"algorithm.uncertainty": {"choice": ["semantic_entropy", "gcpo"]},
                  "algorithm.gcpo.kappa": {"uniform": [0.5, 2.0]}},
                 tune={"search_alg": "optuna", "num_samples": 2})
    space = SweepSpace.from_trials(cfg, expand_trials(cfg))
    seed = space.resolve({"algorithm.uncertainty": "semantic_entropy",
                          "algorithm.gcpo.kappa": 1.5}, "ab_00001")
    gcpo = space.resolve({"algorithm.uncertainty": "gcpo", "algorithm.gcpo.kappa": 1.5},
                         "ab_00002")
    assert list(seed.params) == ["algorithm.uncertainty"]
    assert list(gcpo.params) == ["algorithm.uncertainty", "algorithm.gcpo.kappa"]

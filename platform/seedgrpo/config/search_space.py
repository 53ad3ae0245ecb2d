"""Search spaces: check every parameter against the schema, and expand them into trials.

Expansion is ours, not Tune's, for grid and random search: the dry run prints exactly the trials
that the sweep will run (same order, same seeded draws), and the sweep hands Tune this list.
Order, as Ray Tune's basic variant generator: for each of ``tune.num_samples`` draws, every grid
combination (last parameter fastest), each repeated ``tune.seeds`` times with train.seed, +1, ...
Optuna chooses values adaptively, so its trials are listed with their domains instead.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import random
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from seedgrpo.config.errors import ConfigError, ConfigIssue, issues_from_validation
from seedgrpo.config.overrides import field_annotation, strip_optional
from seedgrpo.config.schema import Domain, ExperimentConfig

__all__ = ["ParamOrigin", "Trial", "check_search_space", "expand_trials", "ignored_params",
           "set_dotted", "trial_name"]

_NOT_SWEEPABLE = ("tune", "tracking", "search_space")
MAX_TRIALS = 10_000  # far beyond any sweep a cluster finishes; stops a typo from hanging the CLI
_SHORT_NAMES = {"algorithm.alpha": "a", "algorithm.group_size": "G", "train.seed": "s",
                "algorithm.gamma": "g", "train.lr": "lr", "algorithm.kl_coef": "kl"}
_NAME_ORDER = ("algorithm.uncertainty", "algorithm.modulation", "algorithm.alpha",
               "algorithm.group_size")
_BARE_VALUES = ("algorithm.modulation", "algorithm.uncertainty", "algorithm.estimator",
                "algorithm.clustering", "algorithm.baseline")


@dataclass(frozen=True)
class ParamOrigin:
    """Where a search-space parameter was written: for error messages."""

    source: str
    line: int | None = None


@dataclass(frozen=True)
class Trial:
    """One configuration a sweep runs. ``params`` holds only the varied dotted paths."""

    index: int
    name: str
    params: dict[str, Any]
    config: ExperimentConfig
    adaptive: dict[str, Domain] = field(default_factory=dict)  # Optuna: chosen at run time


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data["a"]["b"] = value`` for ``key = "a.b"``, creating sections as needed."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _dotted_get(data: Mapping[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        node = node[part]
    return node


def _with_value(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    set_dotted(data, key, value)
    return data


def _field_kind_issue(key: str, domain: Domain, annotation: Any) -> str | None:
    inner, _ = strip_optional(annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return f"{key} is a section, not a value; sweep one of its keys"
    if domain.kind in ("uniform", "loguniform") and inner is not float:
        hint = "use randint for whole numbers" if inner is int else "use grid or choice"
        return f"{domain.kind} draws real numbers but {key} is not a float; {hint}"
    if domain.kind == "randint" and inner not in (int, float):
        return f"randint draws whole numbers but {key} is not numeric; use grid or choice"
    if typing.get_origin(inner) is dict:
        return f"{key} is a mapping; sweep one of its entries"
    return None


def _check_param(base: dict[str, Any], key: str, raw: Any, origin: ParamOrigin
                 ) -> tuple[Domain | None, list[ConfigIssue]]:
    path = f"search_space.{key}"
    where = (origin.source, origin.line)

    def issue(message: str) -> ConfigIssue:
        return ConfigIssue(where[0], path, message, where[1])

    if key.split(".")[0] in _NOT_SWEEPABLE:
        return None, [issue(f"cannot be swept: {', '.join(_NOT_SWEEPABLE)} configure the sweep")]
    annotation, problem = field_annotation(ExperimentConfig, key.split("."))
    if problem is not None:
        return None, [issue(problem)]
    try:
        domain = Domain.model_validate(raw)
    except ValidationError as err:
        return None, [issue(str(e.get("ctx", {}).get("error", e["msg"]))) for e in err.errors()]
    kind_problem = _field_kind_issue(key, domain, annotation)
    if kind_problem is not None:
        return None, [issue(kind_problem)]
    probes = list(domain.values)
    if domain.kind == "randint":
        probes = [domain.values[0], domain.values[1] - 1]
    issues = []
    for value in probes:
        try:
            ExperimentConfig.model_validate(_with_value(base, key, value))
        except ValidationError as err:
            for inner in issues_from_validation(err, model=ExperimentConfig, source=""):
                issues.append(issue(f"{domain.kind} value {value!r} is invalid: "
                                    f"{inner.path} {inner.message}".replace("  ", " ")))
    return (domain if not issues else None), issues


def check_search_space(
    base: ExperimentConfig,
    raw: Mapping[str, Any],
    origins: Mapping[str, ParamOrigin],
    *,
    tune_origin: ParamOrigin,
    explicit: bool,
) -> tuple[dict[str, Domain], list[ConfigIssue]]:
    """Validate raw parameters against ``base`` and the Tune settings; return domains and issues."""
    base_data = base.model_dump(mode="python", exclude={"search_space"})
    domains: dict[str, Domain] = {}
    issues: list[ConfigIssue] = []
    for key, value in raw.items():
        domain, found = _check_param(base_data, key, value, origins[key])
        issues.extend(found)
        if domain is not None:
            domains[key] = domain
    tune = base.tune
    if tune.search_alg == "optuna":  # per parameter: holds whatever else is wrong
        for key, d in domains.items():
            if not d.sampled:
                o = origins[key]
                issues.append(ConfigIssue(
                    o.source, f"search_space.{key}",
                    "is a grid, but tune.search_alg 'optuna' only samples; use choice, uniform, "
                    "loguniform or randint, or set tune.search_alg: grid", o.line))
    if issues:
        return domains, issues

    def tune_issue(path: str, message: str) -> None:
        issues.append(ConfigIssue(tune_origin.source, path, message, tune_origin.line))

    sampled = [k for k, d in domains.items() if d.sampled]
    if explicit and not domains:
        tune_issue("search_space", "is empty; give at least one parameter, e.g. "
                   "algorithm.alpha: {grid: [0.0, 0.5, 1.0]}, or remove the key")
    if tune.search_alg == "optuna":
        if not domains:
            tune_issue("tune.search_alg", "'optuna' needs at least one sampled parameter "
                       "(choice, uniform, loguniform, randint) in search_space")
        if tune.seeds > 1:
            tune_issue("tune.seeds", f"= {tune.seeds}: repeated seeds work with grid and random "
                       "search; with optuna, add train.seed as a parameter instead")
    if tune.search_alg == "random" and not sampled:
        tune_issue("tune.search_alg", "'random' needs at least one sampled parameter (choice, "
                   "uniform, loguniform, randint); for grids use tune.search_alg: grid")
    if tune.search_alg == "grid" and tune.num_samples > 1 and not sampled:
        tune_issue("tune.num_samples", f"= {tune.num_samples} would repeat identical trials; "
                   "use tune.seeds to repeat each configuration with different seeds")
    if tune.seeds > 1 and "train.seed" in domains:
        tune_issue("tune.seeds", "and a search over train.seed both set the seed; keep one")
    count = planned_trial_count(tune.num_samples, tune.seeds, domains,
                                adaptive=tune.search_alg == "optuna")
    if count > MAX_TRIALS:
        tune_issue("tune.num_samples", f"the search space asks for {count} trials; the limit is "
                   f"{MAX_TRIALS}: lower tune.num_samples or tune.seeds, or shorten the grids")
    return domains, issues


def planned_trial_count(num_samples: int, seeds: int, domains: Mapping[str, Domain], *,
                        adaptive: bool) -> int:
    """Trials before de-duplication: Optuna runs num_samples; grids multiply."""
    if adaptive:
        return num_samples
    return num_samples * seeds * math.prod(len(d.values) for d in domains.values()
                                           if not d.sampled)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def trial_name(params: Mapping[str, Any]) -> str:
    """A short, readable run name from the varied values: ``linear-a0.5-G8-s1``.

    >>> trial_name({"algorithm.modulation": "linear", "algorithm.alpha": 0.5,
    ...             "algorithm.group_size": 8})
    'linear-a0.5-G8'
    """
    first = {k: i for i, k in enumerate(_NAME_ORDER)}
    ordered = sorted(params.items(), key=lambda kv: first.get(kv[0], len(first)))
    if "train.seed" in params:  # the seed last: runs of one configuration sort together
        ordered = [kv for kv in ordered if kv[0] != "train.seed"] + [
            ("train.seed", params["train.seed"])]
    parts = []
    for key, value in ordered:
        if key in _BARE_VALUES:
            parts.append(str(value))
        else:
            label = _SHORT_NAMES.get(key, key.split(".")[-1])
            parts.append(f"{label}{_fmt(value)}")
    return "-".join(parts) or "base"


def _draw(domain: Domain, rng: random.Random) -> Any:
    lo_hi = domain.values
    if domain.kind == "choice":
        return rng.choice(domain.values)
    if domain.kind == "uniform":
        return rng.uniform(lo_hi[0], lo_hi[1])
    if domain.kind == "loguniform":
        return math.exp(rng.uniform(math.log(lo_hi[0]), math.log(lo_hi[1])))
    return rng.randrange(lo_hi[0], lo_hi[1])  # randint: hi excluded, as Ray Tune


def _variants(cfg: ExperimentConfig) -> list[dict[str, Any]]:
    space = cfg.search_space
    grid_keys = [k for k, d in space.items() if not d.sampled]
    rng = random.Random(cfg.tune.seed)
    out = []
    for _ in range(cfg.tune.num_samples):
        for combo in itertools.product(*(space[k].values for k in grid_keys)):
            chosen = dict(zip(grid_keys, combo, strict=True))
            for key, domain in space.items():
                if domain.sampled:
                    chosen[key] = _draw(domain, rng)
            out.append({k: chosen[k] for k in space})  # keep the file's parameter order
    return out


def ignored_params(modulation: str) -> set[str]:
    """Dotted paths that cannot change a training run with this modulation function.

    ``none`` modulation ignores alpha, gamma and which uncertainty f would read (f = 1); only
    ``focal`` reads gamma. A sweep of modulation x alpha (x uncertainty) therefore runs the
    ``none`` baseline once, not once per alpha.

    >>> sorted(ignored_params("none"))
    ['algorithm.alpha', 'algorithm.gamma', 'algorithm.uncertainty']
    """
    ignored = set()
    if modulation == "none":
        ignored |= {"algorithm.alpha", "algorithm.gamma", "algorithm.uncertainty"}
    elif modulation != "focal":
        ignored.add("algorithm.gamma")
    return ignored


def expand_trials(cfg: ExperimentConfig, *, source: str = "search_space") -> list[Trial]:
    """Every trial of the sweep, validated; Optuna trials carry their domains instead of values.

    Each combination is validated as a whole, so a rule across parameters (the batch must split
    over the learner ranks) fails here, naming the trial, and never at a trial's first step.
    """
    base = cfg.model_dump(mode="python")
    if cfg.tune.search_alg == "optuna":
        adaptive = dict(cfg.search_space)
        return [Trial(i, f"optuna-{i}", {}, cfg, adaptive) for i in range(cfg.tune.num_samples)]
    trials: list[Trial] = []
    seen: dict[str, int] = {}
    distinct: set[str] = set()
    for params in _variants(cfg):
        for offset in range(cfg.tune.seeds):
            varied = dict(params)
            if cfg.tune.seeds > 1:
                varied["train.seed"] = cfg.train.seed + offset
            data = copy.deepcopy(base)
            for key, value in varied.items():
                set_dotted(data, key, value)
            dropped = [k for k in ignored_params(data["algorithm"]["modulation"]) if k in varied]
            for key in dropped:
                varied.pop(key)
                set_dotted(data, key, _dotted_get(base, key))
            fingerprint = json.dumps(data, sort_keys=True, default=str)
            if dropped and fingerprint in distinct:
                continue  # identical to an earlier trial once ignored values are reset: run once
            distinct.add(fingerprint)
            name = trial_name(varied)
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name}-{seen[name]}"
            try:
                config = ExperimentConfig.model_validate(data)
            except ValidationError as err:
                inner = issues_from_validation(err, model=ExperimentConfig, source="")
                raise ConfigError([
                    ConfigIssue(source, "", f"trial {name} of the search space is invalid: "
                                f"{i.path} {i.message}".replace("  ", " ")) for i in inner
                ]) from err
            trials.append(Trial(len(trials), name, varied, config))
    return trials

"""Search spaces: check every parameter against the schema, and expand them into trials.

Expansion is ours, not Tune's, for grid and random search: the dry run prints exactly the trials
that the sweep will run (same order, same seeded draws), and the sweep hands Tune this list.
Order, as Ray Tune's basic variant generator: for each of ``tune.num_samples`` draws, every grid
combination (last parameter fastest), each repeated ``tune.seeds`` times with train.seed, +1, ...
Optuna chooses values adaptively, so its trials are listed with their domains instead.

Trial names become directory names (Tune's trial directories, ``seedgrpo-train``'s output) and
MLflow run names, so they are safe slugs: ``[A-Za-z0-9._-]``, never starting with ``.`` or
``-``. A value that is not already such a slug (a hub id ``Qwen/Qwen2.5-0.5B``, a local path)
keeps a readable part (its last path component) and gets a short hash of the whole value, so
two values never share a name; names depend only on the values, so they are stable across
runs and resumes. A trial's config carries no search space (the sweep keeps it once): each
trial costs the same whatever the size of the space.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from seedgrpo.config.applicability import is_not_applicable, not_applicable
from seedgrpo.config.errors import ConfigError, ConfigIssue, issues_from_validation, short_repr
from seedgrpo.config.overrides import field_annotation, strip_optional
from seedgrpo.config.schema import Domain, ExperimentConfig

__all__ = ["ParamOrigin", "PlannedTrial", "check_search_space", "expand_trials", "set_dotted",
           "trial_name"]

_NOT_SWEEPABLE = ("tune", "tracking", "search_space")
MAX_TRIALS = 10_000  # far beyond any sweep a cluster finishes; stops a typo from hanging the CLI
_SHORT_NAMES = {"algorithm.alpha": "a", "algorithm.group_size": "G", "train.seed": "s",
                "algorithm.focal_gamma": "g", "train.lr": "lr", "algorithm.kl_coef": "kl"}
_NAME_ORDER = ("model.name", "algorithm.uncertainty", "algorithm.modulation", "algorithm.alpha",
               "algorithm.group_size")
_BARE_VALUES = ("algorithm.modulation", "algorithm.uncertainty", "algorithm.estimator",
                "algorithm.clustering", "algorithm.baseline", "model.name")
_SLUG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_PART = 40  # one value's part of a name
_MAX_NAME = 120  # a whole name; file names may be 255 bytes
_HASH_LEN = 8


@dataclass(frozen=True)
class ParamOrigin:
    """Where a search-space parameter was written: for error messages."""

    source: str
    line: int | None = None


@dataclass(frozen=True)
class PlannedTrial:
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


def _with_value(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return _overlay(base, {key: value})


def _overlay(base: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``values`` set at their dotted paths; only the dicts on those paths are
    copied (a deepcopy of the whole config per trial was most of the cost of a large grid).
    ``base`` is never modified."""
    data = dict(base)
    fresh = [data]  # dicts made here: safe to write into (kept alive, so ids stay unique)
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                fresh.append(child)
            elif not any(child is f for f in fresh):
                child = dict(child)
                fresh.append(child)
            node[part] = child
            node = child
        node[leaf] = value
    return data


def _value_key(value: Any) -> Any:
    """A hashable stand-in for a grid value, equal for values YAML spells differently."""
    try:
        hash(value)
        return value
    except TypeError:
        return json.dumps(value, sort_keys=True, default=str)


def _duplicate_issue(domain: Domain) -> str | None:
    """A grid that lists one value twice would silently run the same trial twice."""
    if domain.kind != "grid":
        return None  # choice [a, a, b] is how Ray Tune weights a draw
    seen: set[Any] = set()
    for value in domain.values:
        key = _value_key(value)
        if key in seen:
            return f"grid lists {short_repr(value)} twice; list each value once"
        seen.add(key)
    return None


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
    kind_problem = _field_kind_issue(key, domain, annotation) or _duplicate_issue(domain)
    if kind_problem is not None:
        return None, [issue(kind_problem)]
    return domain, []


def _probe_param(base: dict[str, Any], key: str, domain: Domain, origin: ParamOrigin
                 ) -> list[ConfigIssue]:
    """Every value of one parameter, set alone on the base config, against the schema."""
    path = f"search_space.{key}"
    probes = list(domain.values)
    if domain.kind == "randint":
        probes = [domain.values[0], domain.values[1] - 1]
    issues = []
    for value in probes:
        try:
            ExperimentConfig.model_validate(_with_value(base, key, value))
        except ValidationError as err:
            for inner in issues_from_validation(err, model=ExperimentConfig, source=""):
                issues.append(ConfigIssue(
                    origin.source, path, f"{domain.kind} value {short_repr(value)} is invalid: "
                    f"{inner.path} {inner.message}".replace("  ", " "), origin.line))
    return issues


def check_search_space(
    base: ExperimentConfig,
    raw: Mapping[str, Any],
    origins: Mapping[str, ParamOrigin],
    *,
    tune_origin: ParamOrigin,
    explicit: bool,
) -> tuple[dict[str, Domain], list[ConfigIssue]]:
    """Validate raw parameters against ``base`` and the Tune settings; return domains and issues.

    Cheap checks first (the shape of every parameter, the trial count), then every value
    against the schema: a grid of a million values is refused by its count, not validated.
    """
    base_data = base.model_dump(mode="python", exclude={"search_space"})
    domains: dict[str, Domain] = {}
    issues: list[ConfigIssue] = []
    for key, value in raw.items():
        domain, found = _check_param(base_data, key, value, origins[key])
        issues.extend(found)
        if domain is not None:
            domains[key] = domain
    tune = base.tune
    count = planned_trial_count(tune.num_samples, tune.seeds, domains,
                                adaptive=tune.search_alg == "optuna")
    if not issues and count <= MAX_TRIALS:
        for key, domain in list(domains.items()):
            found = _probe_param(base_data, key, domain, origins[key])
            if found:
                issues.extend(found)
                del domains[key]
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


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LEN]


def _slug(text: str) -> str:
    """``text`` when it is already a short safe slug, else a readable part and a short hash.

    >>> _slug("linear"), _slug("Qwen/Qwen2.5-0.5B")
    ('linear', 'Qwen2.5-0.5B-b3a114d7')
    >>> _slug("../../etc")
    'etc-74ccf3c5'
    """
    if _SLUG.match(text) and len(text) <= _MAX_PART:
        return text
    last = text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    readable = _UNSAFE.sub("_", last).strip("._-")[: _MAX_PART - _HASH_LEN - 1].rstrip("._-")
    digest = _digest(text)
    return f"{readable}-{digest}" if readable else digest


def trial_name(params: Mapping[str, Any]) -> str:
    """A short, readable run name from the varied values: ``linear-a0.5-G8-s1``.

    Safe as a file name (module docstring): unsafe values become a readable slug plus a hash.

    >>> trial_name({"algorithm.modulation": "linear", "algorithm.alpha": 0.5,
    ...             "algorithm.group_size": 8})
    'linear-a0.5-G8'
    >>> trial_name({"model.name": "Qwen/Qwen2.5-0.5B", "algorithm.alpha": 0.5})
    'Qwen2.5-0.5B-b3a114d7-a0.5'
    """
    first = {k: i for i, k in enumerate(_NAME_ORDER)}
    ordered = sorted(params.items(), key=lambda kv: first.get(kv[0], len(first)))
    if "train.seed" in params:  # the seed last: runs of one configuration sort together
        ordered = [kv for kv in ordered if kv[0] != "train.seed"] + [
            ("train.seed", params["train.seed"])]
    parts = []
    for key, value in ordered:
        if key in _BARE_VALUES:
            parts.append(_slug(_fmt(value)))
        else:
            label = _SHORT_NAMES.get(key, key.split(".")[-1])
            parts.append(_slug(f"{label}{_fmt(value)}"))
    name = "-".join(parts) or "base"
    if len(name) > _MAX_NAME:
        name = f"{name[: _MAX_NAME - _HASH_LEN - 1].rstrip('._-')}-{_digest(name)}"
    return name


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


def expand_trials(cfg: ExperimentConfig, *, source: str = "search_space") -> list[PlannedTrial]:
    """Every trial of the sweep, validated; Optuna trials carry their domains instead of values.

    Each combination is validated as a whole, so a rule across parameters (the batch must split
    over the learner ranks) fails here, naming the trial, and never at a trial's first step.
    """
    base = cfg.model_dump(mode="python", exclude={"search_space"})
    if cfg.tune.search_alg == "optuna":
        adaptive = dict(cfg.search_space)
        bare = cfg.model_copy(update={"search_space": {}})
        return [PlannedTrial(i, f"optuna-{i}", {}, bare, adaptive)
                for i in range(cfg.tune.num_samples)]
    trials: list[PlannedTrial] = []
    taken: set[str] = set()
    next_number: dict[str, int] = {}
    distinct: set[str] = set()
    for params in _variants(cfg):
        for offset in range(cfg.tune.seeds):
            varied = dict(params)
            dropped = False
            if cfg.tune.seeds > 1:
                varied["train.seed"] = cfg.train.seed + offset
            # the values this trial ignores (seedgrpo.config.applicability) are reset to the
            # base's: trials share the base, and the rule gives the reset trial the same n/a
            # set, so two trials are the same run exactly when what is left of their varied
            # values is
            ignored = not_applicable(_overlay(base, varied))
            for key in [k for k in varied if is_not_applicable(k, ignored)]:
                del varied[key]
                dropped = True
            fingerprint = json.dumps(varied, sort_keys=True, default=str)
            if dropped and fingerprint in distinct:
                continue  # identical to an earlier trial once ignored values are reset: run once
            distinct.add(fingerprint)
            data = _overlay(base, varied)
            name = trial_name(varied)
            if name in taken:  # values that print alike (0.1234, 0.1235) or coincident draws
                number = next_number.get(name, 2)
                while f"{name}-{number}" in taken:
                    number += 1
                next_number[name] = number + 1
                name = f"{name}-{number}"
            taken.add(name)
            try:
                config = ExperimentConfig.model_validate(data)
            except ValidationError as err:
                inner = issues_from_validation(err, model=ExperimentConfig, source="")
                raise ConfigError([
                    ConfigIssue(source, "", f"trial {name} of the search space is invalid: "
                                f"{i.path} {i.message}".replace("  ", " ")) for i in inner
                ]) from err
            trials.append(PlannedTrial(len(trials), name, varied, config))
    return trials

"""Load an experiment file: read YAML, gather the search space, apply ``--set``, validate.

Search-space sources: ``search_space`` may be a mapping, a path to a YAML file of such a mapping
(typically in ``search_spaces/``), or a list mixing both. A relative path is looked up next to the
experiment file, then in each directory above it up to the project root, then in the working
directory. The project root is the nearest ancestor holding ``pyproject.toml`` or ``.git``, or
else the directory above the nearest ``experiments/`` the file is in (a container image ships
``experiments/`` and ``search_spaces/`` side by side); without either, only the experiment's
own directory is searched. So ``search_spaces/alpha.yaml`` works from ``experiments/`` and
``experiments/paper/`` alike, while a file planted higher up (say ``/tmp/search_spaces/``) is
never picked up. The same parameter in two sources is an error; a
``--set search_space.<param>=...`` replaces it.

An empty experiment file (or one of comments only) is refused: running every default is
never what a sweep means, and it is what an unsaved or truncated file looks like.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from seedgrpo.config.errors import (
    ConfigError,
    ConfigIssue,
    issues_from_validation,
    short_repr,
)
from seedgrpo.config.overrides import Override, parse_overrides
from seedgrpo.config.renamed_keys import (
    RENAMED_KEYS,
    both_given_message,
    rename_keys,
    renamed_path,
)
from seedgrpo.config.schema import ExperimentConfig
from seedgrpo.config.search_space import ParamOrigin, check_search_space, set_dotted
from seedgrpo.config.yaml_io import LinePositions, read_yaml

__all__ = ["LoadedExperiment", "load_experiment"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedExperiment:
    """A validated experiment and where it came from."""

    config: ExperimentConfig
    path: Path
    label: str  # the file as the user named it, for messages
    origins: dict[str, ParamOrigin]  # where each search-space parameter was written


_PROJECT_MARKERS = ("pyproject.toml", ".git")
_MINIMAL = ("a minimal experiment file is e.g. 'model: {source: tiny-random, name: tiny-llama}' "
            "plus the sections you change; see experiments/ for complete ones")


def _search_dirs(base_file: Path) -> list[Path]:
    """The experiment's directory and its parents up to the project root (see the docstring)."""
    here = base_file.resolve().parent
    chain = [here, *here.parents]
    for i, directory in enumerate(chain):
        if any((directory / marker).exists() for marker in _PROJECT_MARKERS):
            return chain[: i + 1]
    for i, directory in enumerate(chain[:-1]):
        if directory.name == "experiments":
            return chain[: i + 2]
    return chain[:1]


def _candidates(ref: str, base_file: Path | None) -> list[Path]:
    ref_path = Path(ref)
    if ref_path.is_absolute():
        return [ref_path]
    dirs = _search_dirs(base_file) if base_file is not None else []
    dirs.append(Path.cwd())
    return [d / ref_path for d in dict.fromkeys(dirs)]


def _default_experiment_name(file: Path) -> str:
    """The file's stem as a safe name (it becomes a directory and an MLflow experiment)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", file.stem).lstrip(".-_")[:100]
    return name or "experiment"


def _read_space_file(ref: str, base_file: Path | None, label: str, line: int | None
                     ) -> tuple[dict[str, Any], str, LinePositions]:
    candidates = _candidates(ref, base_file)
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        looked = ", ".join(str(c) for c in candidates[:4])
        raise ConfigError([ConfigIssue(label, "search_space", f"file '{ref}' not found "
                                       f"(looked in {looked})", line)])
    data, positions = read_yaml(found, label=ref)
    if data is None:
        data = {}
    if isinstance(data, dict) and set(data) == {"search_space"}:  # tolerate a wrapped file
        data, positions = data["search_space"], {k[1:]: v for k, v in positions.items() if k}
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(ref, "", "a search-space file must be a mapping of dotted "
                                       "config paths to {grid: [...]} and the like")])
    return data, ref, positions


def _gather_space(raw: Any, base_file: Path | None, label: str, positions: LinePositions
                  ) -> tuple[dict[str, Any], dict[str, ParamOrigin], list[ConfigIssue]]:
    """Merge the search-space sources into one mapping; a parameter defined twice is an issue."""
    if raw is None:
        return {}, {}, []
    items = raw if isinstance(raw, list) else [raw]
    merged: dict[str, Any] = {}
    origins: dict[str, ParamOrigin] = {}
    spelled: dict[str, str] = {}  # each parameter as it was written (an old spelling?)
    issues: list[ConfigIssue] = []
    for i, item in enumerate(items):
        prefix = ("search_space", str(i)) if isinstance(raw, list) else ("search_space",)
        line = positions.get(prefix)
        if isinstance(item, str):
            data, source, pos = _read_space_file(item, base_file, label, line)
            item_lines = {k: pos.get((k,)) for k in data}
        elif isinstance(item, dict):
            data, source = item, label
            item_lines = {k: positions.get((*prefix, str(k))) for k in data}
        else:
            issues.append(ConfigIssue(label, ".".join(prefix),
                                      f"= {short_repr(item)} must be a mapping of parameters "
                                      "or a path to a search-space file", line))
            continue
        for written, value in data.items():
            key = renamed_path(str(written))  # an old spelling still loads, with a warning
            line = item_lines.get(written)
            if key in merged:
                old = next((w for w in (str(written), spelled[key]) if w != key), None)
                message = (both_given_message(old) if old is not None else
                           f"is defined twice (also in {origins[key].source}); keep one")
                issues.append(ConfigIssue(source, f"search_space.{key}", message, line))
                continue
            spelled[key] = str(written)
            merged[key] = value
            origins[key] = ParamOrigin(source, line)
    return merged, origins, issues


def _apply_space_overrides(space: dict[str, Any], origins: dict[str, ParamOrigin],
                           overrides: Sequence[Override]) -> tuple[bool, list[ConfigIssue]]:
    replaced = False
    issues: list[ConfigIssue] = []
    for o in overrides:
        if o.key == "search_space":
            space.clear()
            origins.clear()
            new, new_origins, found = _gather_space(o.value, None, o.label, {})
            issues.extend(found)
            space.update(new)
            origins.update({k: ParamOrigin(o.label) for k in new_origins})
            replaced = True
        elif o.key.startswith("search_space."):  # parse_overrides renamed an old spelling
            param = o.key.removeprefix("search_space.")
            space[param] = o.value
            origins[param] = ParamOrigin(o.label)
    return replaced, issues


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> LoadedExperiment:
    """Read and validate an experiment file with ``--set`` overrides; raise ``ConfigError``.

    Everything is checked here, before anything starts: unknown keys, types, ranges, cross-field
    rules, every search-space parameter against the schema, and the Tune settings.
    """
    label = str(path)
    file = Path(path)
    parsed = parse_overrides(overrides)
    data, positions = read_yaml(file, label=label)
    if data is None:
        raise ConfigError([ConfigIssue(label, "", f"is empty; {_MINIMAL}")])
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(label, "", "must be a mapping of sections (model:, "
                                       "algorithm:, train:, ...) at the top level", 1)])
    try:  # old key spellings load, with a warning; before --set, which may give the new one
        data = rename_keys(data)
    except ValueError as err:
        raise ConfigError([ConfigIssue(label, "", str(err))]) from None
    positions = {_renamed_position(k): v for k, v in positions.items()}
    explicit_space = "search_space" in data
    space, origins, space_issues = _gather_space(data.pop("search_space", None), file, label,
                                                 positions)
    replaced, found = _apply_space_overrides(space, origins, parsed)
    space_issues += found
    explicit_space = explicit_space or replaced

    override_sources: dict[tuple[str, ...], str] = {}
    for o in parsed:
        if not o.key.startswith("search_space"):
            set_dotted(data, o.key, o.value)
            override_sources[tuple(o.key.split("."))] = o.label
    try:
        # plug-ins are also looked up next to the experiment file (seedgrpo.config.plugins)
        base = ExperimentConfig.model_validate(
            data, context={"plugin_dirs": [file.resolve().parent]})
    except ValidationError as err:
        issues = issues_from_validation(err, model=ExperimentConfig, source=label, lines=positions)
        raise ConfigError([_relabel(i, override_sources) for i in issues]) from err

    if base.tracking.experiment_name is None:
        base.tracking.experiment_name = _default_experiment_name(file)
    tune_origin = ParamOrigin(label, positions.get(("tune",)) or positions.get(("search_space",)))
    # A source that failed to load is reported as such, not as an empty search space too.
    domains, issues = check_search_space(base, space, origins, tune_origin=tune_origin,
                                         explicit=explicit_space and not space_issues)
    issues = space_issues + issues
    if issues:
        raise ConfigError(sorted(issues, key=lambda i: (i.source, i.line or 0)))
    config = base.model_copy(update={"search_space": domains})
    logger.debug("loaded %s with %d search-space parameter(s)", label, len(domains))
    return LoadedExperiment(config, file, label, dict(origins))


def _renamed_position(key: tuple[str, ...]) -> tuple[str, ...]:
    """A YAML line-map key under the current spelling, so errors keep their line numbers."""
    if len(key) >= 2 and key[0] == "search_space":  # an inline mapping (a list: as written)
        return (key[0], RENAMED_KEYS.get(key[1], key[1]), *key[2:])
    dotted = ".".join(key)
    return tuple(RENAMED_KEYS[dotted].split(".")) if dotted in RENAMED_KEYS else key


def _relabel(issue: ConfigIssue, override_sources: dict[tuple[str, ...], str]) -> ConfigIssue:
    """Point an error at the ``--set`` that wrote the field, not at the file.

    Matches an override of the field or of anything inside it (a section-level rule such as
    ``eval: unknown benchmark`` blames ``--set eval.benchmarks=...``). A rule across sections
    (path "") keeps the file as source and names the overrides that were applied.
    """
    parts = tuple(issue.path.split(".")) if issue.path else ()
    if not parts:
        if override_sources:
            applied = ", ".join(sorted(override_sources.values()))
            return ConfigIssue(issue.source, "", f"{issue.message} (with {applied})", issue.line)
        return issue
    for cut in range(len(parts), 0, -1):
        if parts[:cut] in override_sources:
            return ConfigIssue(override_sources[parts[:cut]], issue.path, issue.message)
    inside = [label for key, label in override_sources.items() if key[: len(parts)] == parts]
    if inside:
        return ConfigIssue(inside[0], issue.path, issue.message)
    return issue

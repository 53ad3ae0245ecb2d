"""Plug-in modules and the registered names the config accepts.

An experiment's ``plugins: [module, ...]`` names Python modules that register uncertainty
sources, modulation functions and rewards (``seedgrpo.algorithms.register_uncertainty``,
``register_modulation``, ``seedgrpo.rewards.register_reward``). ``ExperimentConfig`` imports
them before it validates anything else, so the names they register are valid values of
``algorithm.uncertainty`` / ``modulation`` / ``reward`` in the same file.

Where a module is looked up: ``sys.path`` first, then the experiment file's directory (the
loader passes it in the validation context). A directory used that way is remembered, and
``ray_runtime_env`` puts it on the ``PYTHONPATH`` of the Ray workers a CLI starts, because every
actor validates the trial's config, and so imports the plug-ins, in its own process. On a
multi-node cluster the directory must exist on every node (a shared file system), or the
module must be installed there.

The other algorithm choices (``algorithm.estimator``, ``clustering``, ``baseline``,
``loss_aggregation``, ``algorithm.gcpo.measure``) are checked against their registries the same
way, so each name is written once, where its function is registered; no plug-in API is
advertised for them.

Nothing heavy is imported at module level: the registries load on the first check of a name,
so ``import seedgrpo.config`` stays cheap.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from seedgrpo.config.errors import short_repr, suggest

__all__ = ["CHOICE_KINDS", "PLUGIN_KINDS", "builtin_names", "check_registered",
           "import_plugins", "ray_runtime_env", "registered_names"]

# kind -> (module holding the registry, its name, the config field it feeds)
PLUGIN_KINDS: dict[str, tuple[str, str, str]] = {
    "uncertainty": ("seedgrpo.algorithms.uncertainty", "UNCERTAINTY_SOURCES",
                    "algorithm.uncertainty"),
    "modulation": ("seedgrpo.algorithms.modulation", "MODULATIONS", "algorithm.modulation"),
    "reward": ("seedgrpo.rewards.registry", "REWARDS", "algorithm.reward"),
}
# the same for choices plug-ins are not meant to extend
CHOICE_KINDS: dict[str, tuple[str, str, str]] = {
    "estimator": ("seedgrpo.algorithms.entropy", "SE_ESTIMATORS", "algorithm.estimator"),
    "clustering": ("seedgrpo.algorithms.clustering", "CLUSTERINGS", "algorithm.clustering"),
    "baseline": ("seedgrpo.algorithms.advantages", "BASELINES", "algorithm.baseline"),
    # this registry's module imports torch: a config that keeps the default never loads it
    "loss_aggregation": ("seedgrpo.algorithms.losses", "LOSS_AGGREGATIONS",
                         "algorithm.loss_aggregation"),
    "measure": ("seedgrpo.algorithms.geometry", "GEOMETRY_MEASURES", "algorithm.gcpo.measure"),
}
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_added_dirs: list[str] = []  # directories this process put on sys.path for a plug-in


def _registry(kind: str) -> Any:
    module, attr, _ = PLUGIN_KINDS.get(kind) or CHOICE_KINDS[kind]
    return getattr(importlib.import_module(module), attr)


def registered_names(kind: str) -> tuple[str, ...]:
    """Names registered for ``kind`` (a key of ``PLUGIN_KINDS`` or ``CHOICE_KINDS``), built-ins
    first, then the plug-ins' in import order."""
    return _registry(kind).names()


def builtin_names(kind: str) -> tuple[str, ...]:
    """The names the package itself registers for ``kind`` (what docs/CONFIG.md lists): a
    plug-in's, or a test's, are left out, so the reference does not depend on the process."""
    registry = _registry(kind)

    def owner(name: str) -> str:
        entry = registry.get(name)
        return str(getattr(getattr(entry, "fn", entry), "__module__", ""))

    return tuple(n for n in registry.names() if owner(n).startswith("seedgrpo."))


def _one_of(names: Sequence[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def check_registered(kind: str, value: str) -> str:
    """``value`` if it is a registered ``kind`` name; else a ValueError listing the known ones
    (in the form the config errors use for fixed choices)."""
    names = registered_names(kind)
    if value in names:
        return value
    more = "; a plug-in module listed in plugins: can register more" if kind in PLUGIN_KINDS \
        else ""
    raise ValueError(f"= {short_repr(value)} is not one of {_one_of(names)}"
                     f"{suggest(value, names)}{more}")


def _add_search_dirs(dirs: Iterable[str | Path]) -> None:
    for d in dirs:
        path = str(Path(d).resolve())
        if path not in sys.path:
            sys.path.append(path)  # after everything installed: a plug-in never shadows one
            _added_dirs.append(path)


def import_plugins(names: Sequence[Any], search_dirs: Iterable[str | Path] = ()) -> None:
    """Import each plug-in module (once per process; later calls find it in ``sys.modules``).

    Raises a one-line ValueError naming the module and what went wrong: not a module name,
    not found (and where it was looked for), or the exception its import raised.
    """
    for name in names:
        if not isinstance(name, str) or not _MODULE_NAME.match(name):
            raise ValueError(f"plugins: {short_repr(name)} is not a Python module name; give "
                             "dotted module names, e.g. plugins: [my_uncertainty]")
        if name in sys.modules:
            continue
        dirs = [str(Path(d).resolve()) for d in search_dirs]
        _add_search_dirs(dirs)
        importlib.invalidate_caches()  # a module written since the last import attempt
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is not None and (name == err.name or name.startswith(err.name + ".")):
                where = "sys.path" + (f" and {', '.join(dirs)}" if dirs else "")
                raise ValueError(f"plugins: module '{name}' not found (looked on {where})"
                                 ) from None
            raise ValueError(f"plugins: module '{name}' failed to import: "
                             f"{type(err).__name__}: {err}") from None
        except Exception as err:  # noqa: BLE001 - any error of user code becomes one line
            raise ValueError(f"plugins: module '{name}' failed to import: "
                             f"{type(err).__name__}: {err}") from None


def ray_runtime_env() -> dict[str, Any] | None:
    """The ``runtime_env`` for ``ray.init`` that lets Ray workers import the plug-ins found in
    an experiment's directory: that directory on their ``PYTHONPATH`` (Ray expands
    ``${PYTHONPATH}`` to the node's own). None when no directory was added, so runs without
    plug-ins start Ray exactly as before."""
    if not _added_dirs:
        return None
    path = os.pathsep.join([*_added_dirs, "${PYTHONPATH}"])
    return {"env_vars": {"PYTHONPATH": path}}

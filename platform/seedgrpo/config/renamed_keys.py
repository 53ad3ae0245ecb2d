"""Config keys that were renamed, and the old spellings that still load.

Why keep old spellings: experiment files, ``--set`` lines in scripts and saved sweep state
outlive a rename, and a sweep that stops at load time with "unknown key" over a name change
wastes a run. So an old spelling is rewritten to the new one before validation, with a
``FutureWarning`` (and a logged warning) once per process per key, telling the user to rename
it. Giving both spellings is an error: which value was meant is a guess.

One table, two rewrites: :func:`rename_keys` for a raw nested mapping (an experiment file's
content, a saved config) and :func:`renamed_path` for a dotted path (a ``--set`` key, a
search-space parameter). Pure: no I/O besides the warning.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

__all__ = ["RENAMED_KEYS", "both_given_message", "rename_keys", "renamed_path",
           "with_old_spellings"]

logger = logging.getLogger(__name__)

# old dotted path -> new dotted path
RENAMED_KEYS: dict[str, str] = {
    # the focal modulation's exponent; "gamma" alone reads as RL's discount factor
    "algorithm.gamma": "algorithm.focal_gamma",
    # it bounds every wait on a trial's actors, not only the learner's
    "learner.timeout_s": "resources.call_timeout_s",
}
_SPACE = "search_space"
_warned: set[str] = set()  # old keys already warned about in this process


def _warn_once(old: str) -> None:
    if old in _warned:
        return
    _warned.add(old)
    message = (f"config key {old} was renamed to {RENAMED_KEYS[old]}; the old name still "
               "loads for now: rename it in your file")
    # stacklevel 4: past this function, the rewrite and the loader, at whoever loads
    warnings.warn(message, FutureWarning, stacklevel=4)
    logger.warning(message)


def both_given_message(old: str) -> str:
    """The one-line error for a config that gives a key under both its old and new names."""
    new = RENAMED_KEYS[old]
    return (f"{old} and {new} are both given; {old} is the old name of {new}: keep only {new}")


def renamed_path(path: str) -> str:
    """The current spelling of a dotted config path; warns once when ``path`` is an old one.

    A ``search_space.`` prefix (``--set search_space.algorithm.gamma=...``) is kept.

    >>> renamed_path("algorithm.alpha")
    'algorithm.alpha'
    """
    if path.startswith(f"{_SPACE}."):
        return f"{_SPACE}.{renamed_path(path.removeprefix(f'{_SPACE}.'))}"
    new = RENAMED_KEYS.get(path)
    if new is None:
        return path
    _warn_once(path)
    return new


def _lookup(data: Mapping[str, Any], parts: list[str]) -> tuple[bool, Any]:
    node: Any = data
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _room_for(data: Mapping[str, Any], parts: list[str]) -> bool:
    """Whether every section on the way to ``parts`` is a mapping or absent."""
    for cut in range(1, len(parts)):
        found, node = _lookup(data, parts[:cut])
        if not found:
            return True
        if not isinstance(node, Mapping):
            return False
    return True


def _moved(data: dict[str, Any], old: list[str], new: list[str], value: Any) -> dict[str, Any]:
    """``data`` with the value at ``old`` moved to ``new``; only the dicts on the two paths are
    copied, so the caller's mapping is never changed."""
    out = dict(data)
    node = out
    for part in old[:-1]:
        node[part] = dict(node[part])
        node = node[part]
    del node[old[-1]]
    node = out
    for part in new[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, Mapping) else {}
        node = node[part]
    node[new[-1]] = value
    return out


def _renamed_space(space: dict[str, Any]) -> dict[str, Any]:
    """A search-space mapping with its parameter paths renamed (order kept)."""
    keys = [str(k) for k in space]
    for old in RENAMED_KEYS:
        if old in keys and RENAMED_KEYS[old] in keys:
            raise ValueError(f"{_SPACE}: {both_given_message(old)}")
    return {renamed_path(str(k)): v for k, v in space.items()}


def rename_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """A raw config mapping (before validation) with old key spellings moved to the new ones,
    including the parameter paths of an inline ``search_space`` mapping (the loader renames
    those of files and lists, with :func:`renamed_path`, as it merges them). Warns once per old
    key; raises a one-line ``ValueError`` when a key is given under both names. ``data``
    itself is not changed.

    >>> rename_keys({"algorithm": {"alpha": 0.5}})
    {'algorithm': {'alpha': 0.5}}
    """
    out = dict(data)
    for old, new in RENAMED_KEYS.items():
        old_parts, new_parts = old.split("."), new.split(".")
        found, value = _lookup(out, old_parts)
        if not found:
            continue
        if _lookup(out, new_parts)[0]:
            raise ValueError(both_given_message(old))
        if not _room_for(out, new_parts):
            continue  # the new key's section is not a mapping: validation says so
        _warn_once(old)
        out = _moved(out, old_parts, new_parts, value)
    space = out.get(_SPACE)
    if isinstance(space, Mapping):
        out[_SPACE] = _renamed_space(dict(space))
    return out


def with_old_spellings(data: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved config mapping written back with the old key spellings, search-space paths
    included: how a sweep recorded before a rename saw the same config. Only to compare with
    a fingerprint taken then (``sweep.layout.fingerprint_matches``); no warning.

    >>> with_old_spellings({"algorithm": {"focal_gamma": 2.0}, "resources": {},
    ...                     "search_space": {"algorithm.focal_gamma": [1, 2]}})
    {'algorithm': {'gamma': 2.0}, 'resources': {}, 'search_space': {'algorithm.gamma': [1, 2]}}
    """
    out = dict(data)
    for old, new in RENAMED_KEYS.items():
        old_parts, new_parts = old.split("."), new.split(".")
        found, value = _lookup(out, new_parts)
        if found and _room_for(out, old_parts):
            out = _moved(out, new_parts, old_parts, value)
    space = out.get(_SPACE)
    if isinstance(space, Mapping):
        back = {new: old for old, new in RENAMED_KEYS.items()}
        out[_SPACE] = {back.get(str(k), k): v for k, v in space.items()}
    return out

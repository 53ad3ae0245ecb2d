"""Name -> function registries for every algorithm family.

Why registries and not if-chains: a new modulation, estimator or aggregation is one decorated
function (in the package or in a plug-in module an experiment names in ``plugins:``), the
config schema's choices are the registry keys, and an unknown name fails with the list of known
names instead of a bare ``KeyError`` deep in a trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Registry"]

FnT = TypeVar("FnT", bound=Callable[..., object])


class Registry(Generic[FnT]):
    """A named family of functions (``MODULATIONS``, ``SE_ESTIMATORS``, ...).

    >>> SQUARES = Registry("square function")
    >>> @SQUARES.register("plain")
    ... def plain(x): return x * x
    >>> SQUARES.get("plain")(3)
    9
    >>> SQUARES.get("fancy")
    Traceback (most recent call last):
    ValueError: unknown square function 'fancy'; known: plain
    """

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._entries: dict[str, FnT] = {}

    def register(self, name: str) -> Callable[[FnT], FnT]:
        """Decorator that files ``fn`` under ``name``; a taken name raises (no silent override)."""

        def decorate(fn: FnT) -> FnT:
            if name in self._entries:
                entry = self._entries[name]
                owner = getattr(getattr(entry, "fn", entry), "__module__", None)
                by = f" (by {owner})" if owner else ""
                raise ValueError(f"{self._kind} '{name}' is already registered{by}; choose "
                                 "another name")
            self._entries[name] = fn
            return fn

        return decorate

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests and notebooks that register a throw-away entry)."""
        self.get(name)  # an unknown name lists the known ones
        del self._entries[name]

    def get(self, name: str) -> FnT:
        """The function filed under ``name``; an unknown name lists the known ones."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries)
            raise ValueError(f"unknown {self._kind} '{name}'; known: {known}") from None

    def names(self) -> tuple[str, ...]:
        """Registered names in registration order."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

"""One registry shape for every extension point: tasks, models, recipes, methods, runtimes, objectives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from .exceptions import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind, looked up by the name a user writes in YAML or a notebook parameter.

    Every registry behaves alike: a duplicate name is refused unless ``overwrite=True``, an unknown name
    raises ``UnknownNameError`` listing the known ones, ``names()`` lists them in registration order.
    """

    def __init__(self, kind: str, fix: str | None = None):
        self.kind = kind
        self.fix = fix
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T, overwrite: bool = False) -> T:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a {self.kind} needs a non-empty name, got {name!r}", "give it a name")
        if name in self._entries and not overwrite:
            raise ConfigError(
                f"{self.kind} {name!r} is already registered",
                "choose another name, or pass overwrite=True to replace it",
            )
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> T:
        """Remove an entry (tests register throw-away entries); an unknown name raises as ``get`` does."""
        entry = self.get(name)
        del self._entries[name]
        return entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.kind, str(name), list(self._entries), self.fix) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries) or 'empty'})"

"""A figure and where it came from: every kernel fact the app shows carries its source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Fact:
    value: Any
    source: str


@dataclass
class Facts:
    """Named facts in the order they were read; ``values()`` and ``sources()`` for JSON."""

    items: dict[str, Fact] = field(default_factory=dict)

    def add(self, name: str, value: Any, source: str) -> None:
        self.items[name] = Fact(value, source)

    def update(self, other: Facts) -> None:
        self.items.update(other.items)

    def get(self, name: str, default: Any = None) -> Any:
        fact = self.items.get(name)
        return default if fact is None else fact.value

    def __contains__(self, name: str) -> bool:
        return name in self.items

    def values(self) -> dict[str, Any]:
        return {name: fact.value for name, fact in self.items.items()}

    def sources(self) -> dict[str, str]:
        return {name: fact.source for name, fact in self.items.items()}

    @classmethod
    def from_json(cls, values: dict[str, Any], sources: dict[str, str]) -> Facts:
        """Facts as ``values()`` and ``sources()`` gave them (a recording, a test's data)."""
        facts = cls()
        for name, value in values.items():
            facts.add(name, value, sources.get(name, ""))
        return facts

"""Which resource types a screen reads, as data (read_types.toml)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class ReadTypes:
    patient: frozenset[str]
    shared: frozenset[str]
    not_requested: frozenset[str] = frozenset()

    def wanted(self, resource_type: str) -> bool:
        return resource_type in self.patient or resource_type in self.shared

    def requested(self) -> tuple[str, ...]:
        """The types an export is asked for (`_type`), sorted: what the engine reads, less the
        shared types whose content reaches it another way."""
        return tuple(sorted((self.patient | self.shared) - self.not_requested))


@lru_cache(maxsize=1)
def read_types() -> ReadTypes:
    data = tomllib.loads((Path(__file__).parent / "read_types.toml").read_text(encoding="utf-8"))
    return ReadTypes(
        patient=frozenset(data["patient"]),
        shared=frozenset(data["shared"]),
        not_requested=frozenset(data["not_requested"]),
    )

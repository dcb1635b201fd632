"""A shortcut for R4B validation of resources made of parts already known to be valid.

A model's validation is the validation of each field's value on its own, plus checks of the
resource as a whole that depend only on which keys it has: unknown keys are refused, a choice
(`value[x]`) may be given once, a required primitive needs its value or its `_x` extension
(fhir_core's model validators; no R4B resource class adds its own). So a resource is valid when
its set of keys was seen in a valid resource of its type and each of its values is valid for its
field. Values are checked with the field's own validator (a pydantic TypeAdapter of the field's
annotation and constraints) and remembered by type, key and content, so a lab's code, its
category or the patient reference is checked once, not in each of a thousand results.

The shortcut only ever answers "valid". Anything it cannot vouch for — a new set of keys, a value
its field refuses, a null — goes to the full model validation, which gives the exact problem
text; tests/fhirmaps/test_r4b_parts.py holds both paths to the same answers.
"""

from __future__ import annotations

import hashlib
from threading import Lock
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from fhirmaps.json_codec import canonical

SHORT_KEY = 48  # bytes of JSON kept as they are in a part's key
PartKey = tuple[str, str, str, Any]  # resource type, JSON key, value type, value or digest
ShapeKey = tuple[str, frozenset[str]]


class KnownValidParts:
    def __init__(self, limit: int = 200_000) -> None:
        self._limit = limit
        self._parts: set[PartKey] = set()
        self._shapes: set[ShapeKey] = set()
        self._adapters: dict[tuple[str, str], TypeAdapter[Any] | None] = {}
        self._lock = Lock()

    def vouch(self, cls: type[BaseModel], resource: dict[str, Any]) -> bool:
        """True when `resource` is valid for `cls` by its known shape and parts; False: unknown."""
        resource_type = str(resource.get("resourceType"))
        if (resource_type, frozenset(resource)) not in self._shapes:
            return False
        known = self._parts
        learned: list[PartKey] = []
        for key, value in resource.items():
            if key == "resourceType":
                continue
            if value is None:
                return False
            if isinstance(value, dict | list):
                if isinstance(value, list) and None in value:
                    return False
                part = _part_key(resource_type, key, value)
            else:  # a primitive is its own key (inlined: this runs for every element of a screen)
                part = (resource_type, key, type(value).__name__, value)
            if part in known:
                continue
            adapter = self._adapter(cls, resource_type, key)
            if adapter is None:
                return False
            try:
                adapter.validate_python(value)
            except (ValidationError, TypeError, ValueError):
                return False
            learned.append(part)
        if learned:  # kept once the whole resource is vouched for, under one lock
            with self._lock:
                if len(known) + len(learned) > self._limit:
                    known.clear()
                known.update(learned)
        return True

    def learn(self, resource: dict[str, Any]) -> None:
        """`resource` passed full validation: its set of keys is a valid shape for its type."""
        with self._lock:
            self._shapes.add((str(resource.get("resourceType")), frozenset(resource)))

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()
            self._shapes.clear()

    def _adapter(self, cls: type[BaseModel], resource_type: str, key: str) -> TypeAdapter[Any] | None:
        """The validator of the field `key` names (by alias or name); None when there is none."""
        if (resource_type, key) in self._adapters:
            return self._adapters[(resource_type, key)]
        adapter: TypeAdapter[Any] | None = None
        for name, field in cls.model_fields.items():
            if key in (field.alias, name):
                # The field's type with its constraints (none in R4B today, kept if one comes).
                annotation: Any = field.annotation
                if field.metadata:
                    annotation = Annotated[(annotation, *field.metadata)]
                adapter = TypeAdapter(annotation)
                break
        self._adapters[(resource_type, key)] = adapter
        return adapter


def _part_key(resource_type: str, key: str, value: dict[str, Any] | list[Any]) -> PartKey:
    """The key of an object or array value: its JSON as it comes (not sorted), so the same value
    with its keys in another order is only a miss, checked by its validator, never a wrong answer.
    Short values are their own key; longer ones are hashed."""
    try:
        data = orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits or a key that is not a string
        data = canonical(value)
    digest = data if len(data) <= SHORT_KEY else hashlib.blake2b(data, digest_size=16).digest()
    return (resource_type, key, "json", digest)

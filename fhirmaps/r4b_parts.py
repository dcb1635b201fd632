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

SHORT_KEY = 128  # bytes of JSON kept as they are in a part's key; longer values are hashed
ShapeKey = tuple[str, frozenset[str]]
_NO_FIELDS: dict[str, dict[type, set[Any]]] = {}


class KnownValidParts:
    """Known valid shapes (sets of keys) and parts, by resource type. A part is remembered under its
    resource type, its key and the kind of its value (str, int, float, bool, or JSON for an object
    or array), so a value of one kind never stands for an equal value of another (1 and True)."""

    def __init__(self, limit: int = 200_000) -> None:
        self._limit = limit
        self._count = 0
        self._parts: dict[str, dict[str, dict[type, set[Any]]]] = {}
        self._shapes: set[ShapeKey] = set()
        self._adapters: dict[tuple[str, str], TypeAdapter[Any] | None] = {}
        self._lock = Lock()

    def vouch(self, cls: type[BaseModel], resource: dict[str, Any]) -> bool:
        """True when `resource` is valid for `cls` by its known shape and parts; False: unknown."""
        resource_type = str(resource.get("resourceType"))
        if (resource_type, frozenset(resource)) not in self._shapes:
            return False
        fields = self._parts.get(resource_type, _NO_FIELDS)
        learned: list[tuple[str, type, Any]] = []
        for key, value in resource.items():
            kind = type(value)
            if kind is dict or kind is list:
                if kind is list and None in value:
                    return False
                part: Any = _json_key(value)
                kind = bytes
            elif value is None:
                return False
            elif key == "resourceType":
                continue
            else:
                part = value
            known = fields.get(key)
            if known is not None and part in known.get(kind, ()):
                continue
            adapter = self._adapter(cls, resource_type, key)
            if adapter is None:
                return False
            try:
                adapter.validate_python(value)
            except (ValidationError, TypeError, ValueError, AttributeError):
                return False
            learned.append((key, kind, part))
        if learned:  # kept once the whole resource is vouched for, under one lock
            with self._lock:
                if self._count + len(learned) > self._limit:
                    self._parts.clear()
                    self._count = 0
                by_key = self._parts.setdefault(resource_type, {})
                for key, kind, part in learned:
                    by_key.setdefault(key, {}).setdefault(kind, set()).add(part)
                self._count += len(learned)
        return True

    def learn(self, resource: dict[str, Any]) -> None:
        """`resource` passed full validation: its set of keys is a valid shape for its type."""
        with self._lock:
            self._shapes.add((str(resource.get("resourceType")), frozenset(resource)))

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()
            self._count = 0
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


def _json_key(value: dict[str, Any] | list[Any]) -> bytes:
    """The key of an object or array value: its JSON as it comes (not sorted), so the same value
    with its keys in another order is only a miss, checked by its validator, never a wrong answer.
    Short values are their own key; longer ones are hashed."""
    try:
        data = orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits or a key that is not a string
        data = canonical(value)
    return data if len(data) <= SHORT_KEY else hashlib.blake2b(data, digest_size=16).digest()

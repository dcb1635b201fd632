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
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import orjson
from fhir_core.types import FhirBase, FhirElementOrResourceBase
from pydantic import BaseModel, TypeAdapter, ValidationError

from fhirmaps.json_codec import canonical

SHORT_KEY = 128  # bytes of JSON kept as they are in a part's key; longer values are hashed
# Objects this deep inside a resource (an extension in an extension ...) go to their field's validator.
DEPTH = 6
Owner = str | type  # a resource type, or the model class of a datatype or backbone element
ShapeKey = tuple[Owner, frozenset[str]]
Learned = list[tuple[Owner, str, type, Any]]
_NO_FIELDS: dict[str, dict[type, set[Any]]] = {}


class KnownValidParts:
    """Known valid shapes (sets of keys) and parts, by resource type. A part is remembered under its
    resource type, its key and the kind of its value (str, int, float, bool, or JSON for an object
    or array), so a value of one kind never stands for an equal value of another (1 and True).

    An object or array value not seen before (a lab's new Quantity, a chart's own subject
    Reference) is vouched for the same way one level down: its model is a datatype or a backbone
    element, whose validation is made of the same parts (its fields one by one, and checks that
    depend only on its keys), so an object whose keys were seen in a valid one of its type and whose
    values are valid for its fields is valid. Such shapes are learned from values that passed
    their field's validator whole. A value whose type is chosen by its content (`contained`) is
    always given to its field's validator."""

    def __init__(self, limit: int = 200_000) -> None:
        self._limit = limit
        self._count = 0
        self._parts: dict[Owner, dict[str, dict[type, set[Any]]]] = {}
        self._shapes: set[ShapeKey] = set()
        self._adapters: dict[tuple[Owner, str], TypeAdapter[Any] | None] = {}
        self._elements: dict[tuple[Owner, str], tuple[type[BaseModel], bool] | None] = {}
        self._lock = Lock()

    def vouch(self, cls: type[BaseModel], resource: dict[str, Any]) -> bool:
        """True when `resource` is valid for `cls` by its known shape and parts; False: unknown."""
        resource_type = str(resource.get("resourceType"))
        if (resource_type, frozenset(resource)) not in self._shapes:
            return False
        learned: Learned = []
        if not self._fields_valid(cls, resource_type, resource, learned, 0):
            return False
        if learned:  # kept once the whole resource is vouched for, under one lock
            with self._lock:
                if self._count + len(learned) > self._limit:
                    self._parts.clear()
                    self._count = 0
                for owner, key, kind, part in learned:
                    self._parts.setdefault(owner, {}).setdefault(key, {}).setdefault(kind, set()).add(part)
                self._count += len(learned)
        return True

    def learn(self, cls: type[BaseModel], resource: dict[str, Any]) -> None:
        """`resource` passed full validation: its set of keys is a valid shape for its type, and so
        are those of the objects inside it."""
        with self._lock:
            self._shapes.add((str(resource.get("resourceType")), frozenset(resource)))
        self._learn_inside(cls, str(resource.get("resourceType")), resource, 0)

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()
            self._count = 0
            self._shapes.clear()

    def _fields_valid(
        self, cls: type[BaseModel], owner: Owner, mapping: dict[str, Any], learned: Learned, depth: int
    ) -> bool:
        """Whether each value of `mapping` (a resource, or an object inside one) is valid for its
        field of `cls`; parts not known before are added to `learned`."""
        fields = self._parts.get(owner, _NO_FIELDS)
        for key, value in mapping.items():
            kind = type(value)
            if kind is dict or kind is list:
                if kind is list and None in value:
                    return False
                part: Any = _json_key(value)
                kind = bytes
            elif value is None:
                return False
            elif key == "resourceType" and isinstance(owner, str):
                continue
            else:
                part = value
            known = fields.get(key)
            if known is not None and part in known.get(kind, ()):
                continue
            if kind is bytes and self._inside_valid(cls, owner, key, value, learned, depth + 1):
                learned.append((owner, key, kind, part))
                continue
            adapter = self._adapter(cls, owner, key)
            if adapter is None:
                return False
            try:
                adapter.validate_python(value)
            except (ValidationError, TypeError, ValueError, AttributeError):
                return False
            if kind is bytes:  # valid whole: the shapes inside it are known from now on
                self._learn_value(cls, owner, key, value, depth + 1)
            learned.append((owner, key, kind, part))
        return True

    def _inside_valid(
        self, cls: type[BaseModel], owner: Owner, key: str, value: Any, learned: Learned, depth: int
    ) -> bool:
        """An object (or array of objects) value vouched for by its own known shape and parts."""
        element = self._element(cls, owner, key) if depth <= DEPTH else None
        if element is None:
            return False
        model, many = element
        items = value if many else [value]
        if type(items) is not list or (not many and type(value) is not dict):
            return False
        for item in items:
            if type(item) is not dict or (model, frozenset(item)) not in self._shapes:
                return False
            if not self._fields_valid(model, model, item, learned, depth):
                return False
        return True

    def _learn_value(self, cls: type[BaseModel], owner: Owner, key: str, value: Any, depth: int) -> None:
        """The shapes of the objects of a value that passed its field's validator."""
        element = self._element(cls, owner, key) if depth <= DEPTH else None
        if element is None:
            return
        model, many = element
        for item in value if many and isinstance(value, list) else [value]:
            if isinstance(item, dict):
                with self._lock:
                    self._shapes.add((model, frozenset(item)))
                self._learn_inside(model, model, item, depth)

    def _learn_inside(self, cls: type[BaseModel], owner: Owner, mapping: dict[str, Any], depth: int) -> None:
        for key, value in mapping.items():
            if isinstance(value, dict | list):
                self._learn_value(cls, owner, key, value, depth + 1)

    def _field(self, cls: type[BaseModel], key: str) -> Any:
        for name, field in cls.model_fields.items():
            if key in (field.alias, name):
                return field
        return None

    def _adapter(self, cls: type[BaseModel], owner: Owner, key: str) -> TypeAdapter[Any] | None:
        """The validator of the field `key` names (by alias or name); None when there is none."""
        if (owner, key) in self._adapters:
            return self._adapters[(owner, key)]
        adapter: TypeAdapter[Any] | None = None
        field = self._field(cls, key)
        if field is not None:
            # The field's type with its constraints (none in R4B today, kept if one comes).
            annotation: Any = field.annotation
            if field.metadata:
                annotation = Annotated[(annotation, *field.metadata)]
            adapter = TypeAdapter(annotation)
        self._adapters[(owner, key)] = adapter
        return adapter

    def _element(self, cls: type[BaseModel], owner: Owner, key: str) -> tuple[type[BaseModel], bool] | None:
        """(model, whether the field is a list) of a field whose values are objects of one FHIR
        model (a datatype or backbone element); None for any other field."""
        if (owner, key) in self._elements:
            return self._elements[(owner, key)]
        found: tuple[type[BaseModel], bool] | None = None
        field = self._field(cls, key)
        if field is not None and not field.metadata:
            found = _element_model(field.annotation)
        self._elements[(owner, key)] = found
        return found


def _element_model(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """`X`, `X | None`, `List[X]` or `List[X] | None` of a FHIR model type X that is not chosen by
    the value's content: (X's model class, whether a list)."""
    optional = get_origin(annotation) in (Union, UnionType)
    args = [a for a in get_args(annotation) if a is not type(None)] if optional else [annotation]
    if len(args) != 1:
        return None
    inner, many = args[0], False
    if get_origin(inner) is list:
        (inner,), many = get_args(inner), True
    if not isinstance(inner, type) or not issubclass(inner, FhirBase):
        return None
    if issubclass(inner, FhirElementOrResourceBase):
        return None
    model = inner.get_model_klass()
    return (model, many) if isinstance(model, type) and issubclass(model, BaseModel) else None


def _json_key(value: dict[str, Any] | list[Any]) -> bytes:
    """The key of an object or array value: its JSON as it comes (not sorted), so the same value
    with its keys in another order is only a miss, checked by its validator, never a wrong answer.
    Short values are their own key; longer ones are hashed."""
    try:
        data = orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits or a key that is not a string
        data = canonical(value)
    return data if len(data) <= SHORT_KEY else hashlib.blake2b(data, digest_size=16).digest()

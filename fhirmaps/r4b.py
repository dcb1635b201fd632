"""The only module that imports ``fhir.resources``; it pins FHIR R4B.

``fhir.resources``' top-level package is R5 and silently drops R4-only fields, so every model
used by the project comes from ``fhir.resources.R4B`` through here.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from functools import cache
from threading import Lock
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from fhirmaps.json_codec import canonical

__all__ = [
    "Bundle",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "Observation",
    "Patient",
    "Resource",
    "check_batch",
    "fingerprint",
    "forget_validations",
    "model_class",
    "remember",
    "validate",
    "validation_problem",
]


@cache
def model_class(resource_type: str) -> type[Resource] | None:
    """The R4B model for a resource type, or None for a type R4B does not define."""
    try:
        cls: type[Resource] = get_fhir_model_class(resource_type)  # type: ignore[assignment]
    except (KeyError, ValueError, ImportError, AttributeError):
        return None
    return cls


# Validation is most of the engine's CPU time, and the same resources come back again and again
# (every chart opening, every page of the app). The answer depends only on the resource's
# content, so it is remembered by a digest of that content (bounded, thread-safe).
_MEMO: OrderedDict[str, str | None] = OrderedDict()
_MEMO_LIMIT = 100_000
_MEMO_LOCK = Lock()


def fingerprint(resource: dict[str, Any] | list[Any]) -> str:
    return hashlib.blake2b(canonical(resource), digest_size=16).hexdigest()


def validation_problem(resource: dict[str, Any]) -> str | None:
    """Validate one resource against R4B; return a short readable reason, or None when valid.

    Unknown resource types return None (they are ignored by the mapping, not reported).
    """
    key = fingerprint(resource)
    with _MEMO_LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return _MEMO[key]
    problem = validate(resource)
    with _MEMO_LOCK:
        _MEMO[key] = problem
        if len(_MEMO) > _MEMO_LIMIT:
            _MEMO.popitem(last=False)
    return problem


def check_batch(resources: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(content digest, problem) per resource: validation done elsewhere (another process),
    handed back to `remember` so `validation_problem` finds the answers."""
    return [(fingerprint(resource), validate(resource)) for resource in resources]


def remember(checked: list[tuple[str, str | None]]) -> None:
    with _MEMO_LOCK:
        for key, problem in checked:
            _MEMO[key] = problem
            _MEMO.move_to_end(key)
        while len(_MEMO) > _MEMO_LIMIT:
            _MEMO.popitem(last=False)


def forget_validations() -> None:
    """Empty the memo (benchmarks measuring a record never seen before)."""
    with _MEMO_LOCK:
        _MEMO.clear()
    _ELEMENTS.clear()


def validate(resource: dict[str, Any]) -> str | None:
    """The problem with one resource (not remembered; `validation_problem` remembers)."""
    cls = model_class(str(resource.get("resourceType", "")))
    if cls is None:
        return None
    resource_type = str(resource.get("resourceType"))
    shell, unknown = _ELEMENTS.substitute(resource_type, resource)
    try:
        model = cls.model_validate(shell)
    except ValidationError as exc:
        errors = exc.errors()
        loc = errors[0]["loc"] if errors else ()
        where = ".".join(str(p) for p in loc if p != "__root__")
        message = str(errors[0]["msg"]) if errors else "invalid"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"not valid FHIR R4B at {where or 'resource'}: {message}{more}"[:300]
    except (TypeError, ValueError) as exc:
        return f"not valid FHIR R4B: {exc}"[:300]
    _ELEMENTS.learn(resource_type, model, unknown)
    return None


@cache
def _field_names(resource_type: str) -> dict[str, str]:
    """JSON key -> model field name (`class` is `class_fhir`, `_status` is `status__ext`)."""
    cls = model_class(resource_type)
    return {} if cls is None else {(f.alias or name): name for name, f in cls.model_fields.items()}


ElementKey = tuple[str, str, str]  # resource type, JSON key, content digest


class _ElementMemo:
    """Validated top-level elements, so that a resource's repeated parts (a lab's code, its category,
    the patient reference) are validated once, not in every resource that carries them.

    A model instance given for a field is taken as it is by the model (pydantic does not validate an
    instance again), so a resource whose known elements are swapped for their instances gets the
    same answer as the whole resource: the swapped elements were valid in that same field of that
    same type, and the resource's own checks (choice types, required elements, unknown keys) still
    run. Only elements seen twice are kept (most values are unique), and only from a resource that
    validated without a problem."""

    def __init__(self, limit: int, seen_limit: int) -> None:
        self._kept: OrderedDict[ElementKey, Any] = OrderedDict()
        self._seen: OrderedDict[ElementKey, None] = OrderedDict()
        self._limit, self._seen_limit = limit, seen_limit
        self._lock = Lock()

    def substitute(
        self, resource_type: str, resource: dict[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, ElementKey]]]:
        """The resource with known elements swapped for their instances, and the elements to keep
        if it proves valid (seen before, not yet kept)."""
        fields = _field_names(resource_type)
        shell = dict(resource)
        unknown: list[tuple[str, ElementKey]] = []
        for key, value in resource.items():
            if key == "contained" or key not in fields or not value or not isinstance(value, dict | list):
                continue
            element: ElementKey = (resource_type, key, fingerprint(value))
            with self._lock:
                known = self._kept.get(element)
                if known is not None:
                    self._kept.move_to_end(element)
                    shell[key] = known
                elif element in self._seen:
                    unknown.append((key, element))
                else:
                    self._seen[element] = None
                    if len(self._seen) > self._seen_limit:
                        self._seen.popitem(last=False)
        return shell, unknown

    def learn(self, resource_type: str, model: Any, unknown: list[tuple[str, ElementKey]]) -> None:
        fields = _field_names(resource_type)
        with self._lock:
            for key, element in unknown:
                self._kept[element] = getattr(model, fields[key])
                self._seen.pop(element, None)
            while len(self._kept) > self._limit:
                self._kept.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._seen.clear()


_ELEMENTS = _ElementMemo(limit=20_000, seen_limit=200_000)


# Referral packet output (fhirmaps/write.py) validates these before anything is sent.
from fhir.resources.R4B.composition import Composition  # noqa: E402
from fhir.resources.R4B.servicerequest import ServiceRequest  # noqa: E402

__all__ += ["Composition", "ServiceRequest"]

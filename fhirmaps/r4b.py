"""The only module that imports ``fhir.resources``; it pins FHIR R4B.

``fhir.resources``' top-level package is R5 and silently drops R4-only fields, so every model
used by the project comes from ``fhir.resources.R4B`` through here.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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
from fhirmaps.r4b_parts import KnownValidParts

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
    "validations_not_remembered",
    "validate",
    "validate_in_full",
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
# Work that reads each resource once (a screen: every line of an export is a resource of its own)
# gains nothing from the memo but the cost of its key, and turns it off while it runs.
_REMEMBER: ContextVar[bool] = ContextVar("remember_validations", default=True)


@contextmanager
def validations_not_remembered() -> Iterator[None]:
    """Inside: `validation_problem` validates without looking up or keeping answers."""
    token = _REMEMBER.set(False)
    try:
        yield
    finally:
        _REMEMBER.reset(token)


def fingerprint(resource: dict[str, Any]) -> str:
    return hashlib.blake2b(canonical(resource), digest_size=16).hexdigest()


def validation_problem(resource: dict[str, Any]) -> str | None:
    """Validate one resource against R4B; return a short readable reason, or None when valid.

    Unknown resource types return None (they are ignored by the mapping, not reported).
    """
    if not _REMEMBER.get():
        return validate(resource)
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
    _PARTS.clear()


def validate(resource: dict[str, Any]) -> str | None:
    """The problem with one resource (not remembered; `validation_problem` remembers)."""
    cls = model_class(str(resource.get("resourceType", "")))
    if cls is None:
        return None
    if _PARTS.vouch(cls, resource):
        return None
    problem = validate_in_full(resource)
    if problem is None:
        _PARTS.learn(cls, resource)
    return problem


def validate_in_full(resource: dict[str, Any]) -> str | None:
    """The R4B model's own answer, without the shortcut (tests hold the shortcut to it)."""
    cls = model_class(str(resource.get("resourceType", "")))
    if cls is None:
        return None
    try:
        cls.model_validate(resource)
    except ValidationError as exc:
        errors = exc.errors()
        loc = errors[0]["loc"] if errors else ()
        where = ".".join(str(p) for p in loc if p != "__root__")
        message = str(errors[0]["msg"]) if errors else "invalid"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"not valid FHIR R4B at {where or 'resource'}: {message}{more}"[:300]
    except (TypeError, ValueError) as exc:
        return f"not valid FHIR R4B: {exc}"[:300]
    except AttributeError:
        # fhir.resources' URL and URI checks call str methods on a number or boolean they are given.
        return "not valid FHIR R4B: an element holds a value of the wrong type"
    return None


# Resources made of known-valid parts are valid without the full model validation (r4b_parts).
_PARTS = KnownValidParts()


# Referral packet output (fhirmaps/write.py) validates these before anything is sent.
from fhir.resources.R4B.composition import Composition  # noqa: E402
from fhir.resources.R4B.servicerequest import ServiceRequest  # noqa: E402

__all__ += ["Composition", "ServiceRequest"]

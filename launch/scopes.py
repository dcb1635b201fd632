"""Scopes: what we request (v2, or v1 where the EHR only speaks v1) and what was actually granted."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from launch.discovery import SmartConfiguration
from launch.registry import Registration

CONTEXT_SCOPES = ("launch", "openid", "fhirUser", "online_access")
# (resource type, SMART v2 permissions such as "rs"): what the app reads. The app passes its own
# list (smartapp's read plan); `launch` does not decide which clinical data matters.
ResourceRead = tuple[str, str]
WRITE_SCOPES = (("ServiceRequest", "c"), ("DocumentReference", "c"))
SCOPE_URI_PREFIX = "http://smarthealthit.org/fhir/scopes/"
_V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
_RESOURCE_SCOPE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.([a-z*]+)(\?.*)?$")


def uses_v1(registration: Registration, config: SmartConfiguration) -> bool:
    if registration.scope_syntax == "v1":
        return True
    if registration.scope_syntax == "v2":
        return False
    return config.has_capability("permission-v1") and not config.has_capability("permission-v2")


USER_CONTEXT_SCOPES = ("openid", "fhirUser", "online_access")


def requested_scopes(
    registration: Registration,
    config: SmartConfiguration,
    standalone: bool,
    *,
    reads: Sequence[ResourceRead],
    user_level: bool = False,
) -> str:
    """The scope string for the authorize request: `reads` (plus write-back's creates) unless the
    registration gives its own scope string.

    A standalone launch asks for `launch/patient` instead of `launch` (there is no EHR context to bind).
    `user_level` is a standalone sign-in without patient context: the signed-in user's identity and
    `user/` read scopes (whatever that user may see at the EHR), never a launch context.
    """
    if user_level:
        return " ".join(user_level_scopes(registration, config, reads))
    if registration.scopes:
        scopes = registration.scopes.split()
    else:
        v1 = uses_v1(registration, config)
        wanted = [*reads, *(WRITE_SCOPES if registration.write_back else ())]
        scopes = list(CONTEXT_SCOPES)
        for resource_type, permissions in wanted:
            if v1:
                scope = f"patient/{resource_type}.{'write' if permissions == 'c' else 'read'}"
            else:
                scope = f"patient/{resource_type}.{permissions}"
            if scope not in scopes:
                scopes.append(scope)
    if standalone:
        scopes = ["launch/patient" if scope == "launch" else scope for scope in scopes]
        if "launch/patient" not in scopes:
            scopes.insert(0, "launch/patient")
    return " ".join(scopes)


def user_level_scopes(
    registration: Registration, config: SmartConfiguration, reads: Sequence[ResourceRead]
) -> list[str]:
    if registration.scopes:
        # The site's own scope string, re-levelled: the same types, for any patient the user may see.
        resources = [
            s.replace("patient/", "user/", 1) for s in registration.scopes.split() if s.startswith("patient/")
        ]
    else:
        v1 = uses_v1(registration, config)
        resources = [f"user/{t}.read" if v1 else f"user/{t}.{p}" for t, p in reads]
    return [*USER_CONTEXT_SCOPES, *dict.fromkeys(resources)]


@dataclass(frozen=True)
class ResourceScope:
    context: str  # patient | user | system
    resource_type: str  # a FHIR type or "*"
    permissions: frozenset[str]  # subset of c r u d s
    query: str | None = None  # granular restriction such as "category=...|laboratory"

    def covers(self, resource_type: str, permission: str) -> bool:
        return self.resource_type in ("*", resource_type) and permission in self.permissions


def parse_resource_scope(scope: str) -> ResourceScope | None:
    """Parse `patient/Observation.rs?category=…` or v1 `user/*.read`; None for other scopes."""
    if scope.startswith(SCOPE_URI_PREFIX):
        scope = scope[len(SCOPE_URI_PREFIX) :]
    match = _RESOURCE_SCOPE.match(scope)
    if match is None:
        return None
    context, resource_type, suffix, query = match.groups()
    if suffix in _V1_PERMISSIONS:
        permissions = _V1_PERMISSIONS[suffix]
    elif re.fullmatch(r"c?r?u?d?s?", suffix):
        permissions = suffix
    else:
        return None  # out-of-order or unknown permission letters: SAL lets us ignore these
    if not permissions:
        return None
    return ResourceScope(context, resource_type, frozenset(permissions), query[1:] if query else None)


@dataclass(frozen=True)
class GrantedScopes:
    """The scopes in a token response, answering what the app may do."""

    raw: tuple[str, ...]
    resources: tuple[ResourceScope, ...] = field(default=())

    @classmethod
    def parse(cls, scope: str | None) -> GrantedScopes:
        raw = tuple(dict.fromkeys((scope or "").split()))
        parsed = (parse_resource_scope(item) for item in raw)
        return cls(raw, tuple(item for item in parsed if item is not None))

    def has(self, scope: str) -> bool:
        return scope in self.raw

    def _allows(self, resource_type: str, permission: str) -> bool:
        # patient/ and user/ scopes both let the launched user reach the patient in context.
        return any(
            item.context in ("patient", "user") and item.covers(resource_type, permission)
            for item in self.resources
        )

    def can_read(self, resource_type: str) -> bool:
        return self._allows(resource_type, "r")

    def can_search(self, resource_type: str) -> bool:
        return self._allows(resource_type, "s")

    def user_can_read(self, resource_type: str) -> bool:
        """A `user/` grant: the user may read this type for patients other than a launch patient."""
        return any(item.context == "user" and item.covers(resource_type, "r") for item in self.resources)

    def can_create(self, resource_type: str) -> bool:
        return self._allows(resource_type, "c")

    def restrictions(self, resource_type: str, permission: str = "s") -> list[str]:
        """Granular query restrictions on this type; empty when some grant is unrestricted."""
        matching = [
            item
            for item in self.resources
            if item.context != "system" and item.covers(resource_type, permission)
        ]
        if any(item.query is None for item in matching):
            return []
        return [item.query for item in matching if item.query is not None]

    def missing_reads(self, requested_types: Iterable[str]) -> list[str]:
        """Requested types that can be neither read nor searched under the granted scopes."""
        return [t for t in requested_types if not (self.can_read(t) or self.can_search(t))]

    def not_granted(self, requested: str) -> list[str]:
        """Scopes from a requested scope string that are absent from the grant, verbatim."""
        return [scope for scope in requested.split() if scope not in self.raw]

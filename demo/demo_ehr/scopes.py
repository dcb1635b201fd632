"""SMART scope grammar as the demo EHR enforces it (v1 `.read/.write/.*` and v2 `.cruds`).

Granular v2 suffixes (`?category=...`) are accepted but not enforced: the demo grants the
whole type, which is broader than a strict server and is recorded here on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONTEXT_SCOPES = frozenset({"openid", "fhirUser", "profile", "launch", "online_access", "offline_access"})
_RESOURCE_SCOPE = re.compile(
    r"^(?P<level>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<perm>read|write|\*|[cruds]+)(\?.*)?$"
)
_LAUNCH_SCOPE = re.compile(r"^launch/[a-z]+(\?.*)?$")
_V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
# SMART's appendix allows scopes written as URIs under this prefix.
SCOPE_URI_PREFIX = "http://smarthealthit.org/fhir/scopes/"


@dataclass(frozen=True)
class ResourceScope:
    level: str
    resource_type: str
    permissions: frozenset[str]

    def covers(self, resource_type: str, permission: str) -> bool:
        return self.resource_type in ("*", resource_type) and permission in self.permissions


def parse_resource_scope(scope: str) -> ResourceScope | None:
    match = _RESOURCE_SCOPE.match(scope.removeprefix(SCOPE_URI_PREFIX))
    if match is None:
        return None
    perm = match["perm"]
    letters = _V1_PERMISSIONS.get(perm, perm)
    if perm not in _V1_PERMISSIONS and not _is_ordered_cruds(perm):
        return None
    return ResourceScope(match["level"], match["type"], frozenset(letters))


def _is_ordered_cruds(perm: str) -> bool:
    positions = ["cruds".index(letter) for letter in perm]
    return positions == sorted(set(positions))


def is_known_scope(scope: str) -> bool:
    """True for scopes the demo understands; others are silently dropped at authorization."""
    scope = scope.removeprefix(SCOPE_URI_PREFIX)
    return (
        scope in CONTEXT_SCOPES
        or _LAUNCH_SCOPE.match(scope) is not None
        or parse_resource_scope(scope) is not None
    )


def split_scope(scope: str | None) -> list[str]:
    seen: dict[str, None] = {}
    for item in (scope or "").split():
        seen.setdefault(item, None)
    return list(seen)


@dataclass(frozen=True)
class Access:
    """What one access token may do on the FHIR endpoint."""

    scopes: tuple[ResourceScope, ...]
    patient_id: str | None

    @classmethod
    def from_scope(cls, scope: str, patient_id: str | None) -> Access:
        parsed = (parse_resource_scope(item) for item in split_scope(scope))
        return cls(tuple(item for item in parsed if item is not None), patient_id)

    def allows(self, resource_type: str, permission: str) -> bool:
        return any(item.covers(resource_type, permission) for item in self.scopes)

    def patient_restricted(self, resource_type: str, permission: str) -> bool:
        """Patient-level scopes limit the token to its patient's compartment, unless a
        user/system scope also covers the type."""
        return not any(
            item.level != "patient" and item.covers(resource_type, permission) for item in self.scopes
        )


_CONTEXT_WORDS = {
    "openid": "confirm who you are",
    "fhirUser": "know your user record",
    "profile": "know your name",
    "launch": "open with the patient of this EHR session",
    "launch/patient": "ask which patient to open",
    "launch/encounter": "know the current encounter",
    "online_access": "keep access while you are signed in",
    "offline_access": "keep access after you sign out",
}
_VERBS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def describe_scope(scope: str) -> str:
    """Plain words for the consent page."""
    if scope in _CONTEXT_WORDS:
        return _CONTEXT_WORDS[scope]
    parsed = parse_resource_scope(scope)
    if parsed is None:
        return ""
    verbs = ", ".join(_VERBS[letter] for letter in "cruds" if letter in parsed.permissions)
    what = "all record types" if parsed.resource_type == "*" else parsed.resource_type
    whose = {"patient": "this patient only", "user": "any patient you may see", "system": "all patients"}
    return f"{verbs} {what} ({whose[parsed.level]})"

"""The one bearer check of the demo's FHIR and Bulk Data routes: the request's access token must
be one this EHR issued, not revoked or expired. Every route that reads or writes data takes
`BearerGrant` (or `SystemGrant`, built on it), so all of them refuse alike: 401 with an
OperationOutcome and `WWW-Authenticate: Bearer`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from .deps import Memory
from .fhir_responses import FhirRefusal
from .scopes import Access


@dataclass(frozen=True)
class Grant:
    """What the request's token was granted: its client, patient context and scopes."""

    client_id: str
    access: Access

    @property
    def patient_id(self) -> str | None:
        return self.access.patient_id

    @property
    def system(self) -> bool:
        """A SMART Backend Services token (system/ scopes) rather than a patient or user one."""
        return any(scope.level == "system" for scope in self.access.scopes)


async def get_grant(request: Request, memory: Memory) -> Grant:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    token = memory.access_tokens.get(value.strip()) if scheme.lower() == "bearer" and value else None
    if token is None or token.revoked or token.expires_at <= time.time():
        raise FhirRefusal(401, "login", "A valid Bearer access token is required.")
    return Grant(token.client_id, Access.from_scope(token.scope, token.context.patient_id))


BearerGrant = Annotated[Grant, Depends(get_grant)]


async def require_system(grant: BearerGrant) -> Grant:
    if not grant.system:
        raise FhirRefusal(
            403,
            "forbidden",
            "Bulk Data export needs a system-level token (SMART Backend Services, system/ scopes); "
            "patient and user tokens cannot export.",
        )
    return grant


SystemGrant = Annotated[Grant, Depends(require_system)]

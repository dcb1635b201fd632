"""FHIR clients for launch sessions: the session's EHR, its tokens (refreshed as needed) and that
EHR's limit on requests in flight."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2

from launch.fhir_client import FhirClient
from launch.registry import Registration, Registry
from launch.sessions import LaunchSession
from launch.tokens import SessionTokenSource, TokenManager


def ehr_concurrency(registration: Registration | None, app_default: int) -> int:
    """Requests in flight to one EHR: the registry entry's `max_concurrency`, else the app's setting."""
    return registration.concurrency(app_default) if registration else app_default


@dataclass(frozen=True)
class SessionClients:
    http: httpx2.AsyncClient
    tokens: TokenManager
    registry: Registry
    # The app's limit, for EHRs whose registration sets none.
    default_concurrency: int

    def client_for(self, session: LaunchSession) -> FhirClient:
        return FhirClient(
            session.iss,
            self.http,
            SessionTokenSource(self.tokens, session.id),
            max_concurrency=ehr_concurrency(self.registry.get(session.iss), self.default_concurrency),
        )

"""Who may use the worklist, the patient a coordinator opened from it, and the audit trail.

A coordinator is a launch session without a launch patient (EHR launch without patient context,
or the user-level standalone sign-in) whose verified `fhirUser` is allowed for that EHR in the
registry (`worklist_users`, or a `worklist_roles` code on one of the user's PractitionerRoles).
The patient opened from the worklist is kept server-side per session (`worklist_selections`), so
no patient id travels in a URL; patient pages then read that patient with the coordinator's own
user-level token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Column, String, Table, Text, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from launch.fhir_client import FhirClient
from launch.registry import Registration
from launch.tables import UtcDateTime
from smartapp.storage import metadata
from smartapp.worklist.tables import worklist_audit

# One row per coordinator session: the authorization decision (roles cost an EHR round trip, so
# it is taken once per session) and the patient opened from the worklist, if any.
worklist_selections = Table(
    "worklist_selections",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("iss", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("authorized", Boolean, nullable=False),
    Column("patient_id", String(128)),
    Column("updated_at", UtcDateTime, nullable=False),
)

ACTIONS = ("view-worklist", "open-patient", "export-csv", "set-status")


def relative_user(fhir_user: str, iss: str) -> str:
    """`fhirUser` may be absolute under the FHIR base (Epic) or relative; compare it relative."""
    base = iss.rstrip("/") + "/"
    return fhir_user[len(base) :] if fhir_user.startswith(base) else fhir_user


def user_allowed(registration: Registration, fhir_user: str) -> bool:
    wanted = {relative_user(user, registration.iss) for user in registration.worklist_users}
    return relative_user(fhir_user, registration.iss) in wanted


async def has_allowed_role(registration: Registration, fhir_user: str, client: FhirClient) -> bool:
    """True when one of the user's PractitionerRole codes (`code` or `system|code`) is allowed."""
    user = relative_user(fhir_user, registration.iss)
    if not registration.worklist_roles or not user.startswith("Practitioner/"):
        return False
    result = await client.search("PractitionerRole", {"practitioner": user}, max_pages=5)
    allowed = set(registration.worklist_roles)
    for role in result.resources:
        for concept in role.get("code") or []:
            for coding in concept.get("coding") or [] if isinstance(concept, dict) else []:
                code, system = coding.get("code"), coding.get("system")
                if code in allowed or (system and f"{system}|{code}" in allowed):
                    return True
    return False


async def cached_decision(engine: AsyncEngine, session_id: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(worklist_selections).where(worklist_selections.c.session_id == session_id)
            )
        ).first()
    return dict(row._mapping) if row is not None else None


async def remember_decision(
    engine: AsyncEngine, session_id: str, iss: str, actor: str, authorized: bool
) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(worklist_selections).where(worklist_selections.c.session_id == session_id))
        await conn.execute(
            insert(worklist_selections).values(
                session_id=session_id,
                iss=iss,
                actor=actor,
                authorized=authorized,
                patient_id=None,
                updated_at=datetime.now(UTC),
            )
        )


async def select_patient(engine: AsyncEngine, session_id: str, patient_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            worklist_selections.update()
            .where(worklist_selections.c.session_id == session_id, worklist_selections.c.authorized.is_(True))
            .values(patient_id=patient_id, updated_at=datetime.now(UTC))
        )


async def selected_patient(engine: AsyncEngine, session_id: str) -> str | None:
    row = await cached_decision(engine, session_id)
    if row is None or not row["authorized"]:
        return None
    patient: str | None = row["patient_id"]
    return patient


async def audit(
    engine: AsyncEngine,
    *,
    iss: str,
    actor: str,
    action: str,
    patient_id: str | None = None,
    detail: str | None = None,
) -> None:
    """One audit row: who (fhirUser), which EHR, what, which patient id. No names, no tokens."""
    if action not in ACTIONS:
        raise ValueError(f"unknown worklist audit action {action!r}")
    async with engine.begin() as conn:
        await conn.execute(
            insert(worklist_audit).values(
                at=datetime.now(UTC),
                iss=iss,
                actor=actor,
                action=action,
                patient_id=patient_id,
                detail=detail[:200] if detail else None,
            )
        )

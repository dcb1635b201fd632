"""SQL tables for launch state, on launch's own MetaData (the app creates them via SessionStore)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Stores UTC; SQLite drops the zone, so it is re-attached on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()
# Marks the columns that hold Fernet tokens written by SessionStore, so that whoever rotates the
# keys (the app's `secondlook rotate-keys`) finds them without a list of its own.
FERNET_TOKEN = {"fernet_token": True}

pending_launches = Table(
    "launch_pending",
    metadata,
    Column("state", String(128), primary_key=True),
    Column("nonce_hash", String(64), nullable=False),
    Column("iss", Text, nullable=False),
    Column("launch", Text),
    Column("redirect_uri", Text, nullable=False),
    Column("code_verifier_enc", Text, nullable=False, info=FERNET_TOKEN),
    Column("requested_scope", Text, nullable=False),
    Column("token_endpoint", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)

launch_sessions = Table(
    "launch_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("iss", Text, nullable=False),
    Column("client_id", Text, nullable=False),
    Column("token_endpoint", Text, nullable=False),
    Column("patient", Text),
    Column("encounter", Text),
    Column("fhir_context", Text, nullable=False),
    Column("need_patient_banner", Boolean),
    Column("smart_style_url", Text),
    Column("intent", Text),
    # CDS Hooks card `appContext`, passed by the EHR in the token response (opaque to launch).
    Column("app_context", Text),
    Column("tenant", Text),
    Column("fhir_user", Text),
    Column("granted_scope", Text, nullable=False),
    Column("access_token_enc", Text, nullable=False, info=FERNET_TOKEN),
    Column("refresh_token_enc", Text, info=FERNET_TOKEN),
    Column("token_expires_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)

"""Server-side launch state in SQL: pending launches (state → PKCE verifier) and launch sessions.

Every launch gets its own session row: two launches in one browser never share state (Cerner
"session bleed", Epic Hyperdrive first-patient bug). The public handle appears in app URLs; the
secret goes in an HttpOnly cookie and only its SHA-256 is stored. Tokens and PKCE verifiers are
Fernet-encrypted, so the database never holds them in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from launch.crypto import TokenCipher
from launch.errors import LaunchError
from launch.scopes import GrantedScopes
from launch.tables import launch_sessions, metadata, pending_launches

__all__ = ["metadata", "LaunchSession", "PendingLaunch", "SessionStore", "TokenSet", "LockedTokens"]

PENDING_TTL = timedelta(minutes=10)
SESSION_TTL = timedelta(hours=12)


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PendingLaunch:
    """An authorize request in flight, keyed by its `state`."""

    state: str
    iss: str
    launch: str | None
    redirect_uri: str
    code_verifier: str
    requested_scope: str
    token_endpoint: str  # pinned at authorize time (mix-up defence, RFC 9700 §4.4)
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class TokenSet:
    """Token material from a token response; only ever held in memory or encrypted."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    scope: str | None = None


@dataclass(frozen=True)
class LaunchSession:
    """One launch's context. Tokens are deliberately not attributes (see `SessionStore.read_tokens`)."""

    id: str
    iss: str
    client_id: str
    patient: str | None
    encounter: str | None
    fhir_context: list[dict[str, Any]]
    need_patient_banner: bool | None
    smart_style_url: str | None
    intent: str | None
    app_context: str | None
    tenant: str | None
    fhir_user: str | None
    granted_scope: str
    token_expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime

    @property
    def granted(self) -> GrantedScopes:
        return GrantedScopes.parse(self.granted_scope)


@dataclass
class LockedTokens:
    """Tokens read under a row lock; assign `replacement` to write new ones in the same transaction,
    or set `ended` to end the session (its refresh was refused)."""

    tokens: TokenSet
    iss: str
    token_endpoint: str
    replacement: TokenSet | None = None
    ended: bool = False


class SessionStore:
    def __init__(
        self,
        engine: AsyncEngine,
        cipher: TokenCipher,
        *,
        session_ttl: timedelta = SESSION_TTL,
        session_ttl_hours: float | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._cipher = cipher
        self._session_ttl = (
            timedelta(hours=session_ttl_hours) if session_ttl_hours is not None else session_ttl
        )
        self._clock = clock

    async def create_tables(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    # -- pending launches -------------------------------------------------------------------
    async def add_pending(self, pending: PendingLaunch, browser_nonce: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(pending_launches).values(
                    state=pending.state,
                    nonce_hash=hash_secret(browser_nonce),
                    iss=pending.iss,
                    launch=pending.launch,
                    redirect_uri=pending.redirect_uri,
                    code_verifier_enc=self._cipher.encrypt(pending.code_verifier),
                    requested_scope=pending.requested_scope,
                    token_endpoint=pending.token_endpoint,
                    created_at=pending.created_at,
                    expires_at=pending.expires_at,
                )
            )

    async def take_pending(self, state: str, browser_nonce: str) -> PendingLaunch:
        """Consume the pending launch for `state` (one-time), checking expiry and browser binding."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(select(pending_launches).where(pending_launches.c.state == state))
            ).first()
            if row is not None:
                # The DELETE's row count decides the race if two callbacks carry the same state.
                result = await conn.execute(delete(pending_launches).where(pending_launches.c.state == state))
                if result.rowcount != 1:
                    row = None
        if row is None:
            raise _invalid_state("This sign-in link was already used or is unknown.")
        if row.expires_at <= self._clock():
            raise _invalid_state("The sign-in took too long and expired.")
        if not hmac.compare_digest(row.nonce_hash, hash_secret(browser_nonce)):
            raise _invalid_state("The sign-in finished in a different browser session than it started in.")
        return PendingLaunch(
            state=row.state,
            iss=row.iss,
            launch=row.launch,
            redirect_uri=row.redirect_uri,
            code_verifier=self._cipher.decrypt(row.code_verifier_enc),
            requested_scope=row.requested_scope,
            token_endpoint=row.token_endpoint,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )

    # -- sessions ---------------------------------------------------------------------------
    async def create_session(
        self, *, iss: str, client_id: str, token_endpoint: str, tokens: TokenSet, context: dict[str, Any]
    ) -> tuple[LaunchSession, str]:
        """Store a new launch session; returns it with the cookie secret (shown only this once)."""
        session_id = secrets.token_urlsafe(24)  # 192 bits
        secret = secrets.token_urlsafe(32)  # 256 bits
        now = self._clock()
        fhir_context = context.get("fhirContext")
        banner = context.get("need_patient_banner")
        values: dict[str, Any] = {
            "id": session_id,
            "secret_hash": hash_secret(secret),
            "iss": iss,
            "client_id": client_id,
            "token_endpoint": token_endpoint,
            "patient": _text(context.get("patient")),
            "encounter": _text(context.get("encounter")),
            "fhir_context": json.dumps(fhir_context if isinstance(fhir_context, list) else []),
            "need_patient_banner": banner if isinstance(banner, bool) else None,
            "smart_style_url": _text(context.get("smart_style_url")),
            "intent": _text(context.get("intent")),
            "app_context": _app_context(context.get("appContext")),
            "tenant": _text(context.get("tenant")),
            "fhir_user": _text(context.get("fhirUser")),
            "granted_scope": tokens.scope or "",
            "access_token_enc": self._cipher.encrypt(tokens.access_token),
            "refresh_token_enc": self._cipher.encrypt(tokens.refresh_token) if tokens.refresh_token else None,
            "token_expires_at": tokens.expires_at,
            "created_at": now,
            "last_used_at": now,
            "expires_at": now + self._session_ttl,
        }
        async with self._engine.begin() as conn:
            await conn.execute(insert(launch_sessions).values(**values))
        return _session_from(values), secret

    async def get_session(self, session_id: str, secret: str) -> LaunchSession | None:
        """The session for a handle + cookie secret; None when unknown, not proven by the secret, or expired.

        The caller treats all three alike ("relaunch from the EHR"), so nothing tells a prober which it was.
        """
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(select(launch_sessions).where(launch_sessions.c.id == session_id))
            ).first()
            # Hash comparison in constant time; an unknown id is compared against a dummy hash.
            expected = row.secret_hash if row is not None else hash_secret("")
            if not hmac.compare_digest(expected, hash_secret(secret)) or row is None:
                return None
            now = self._clock()
            if row.expires_at <= now:
                return None
            await conn.execute(
                update(launch_sessions).where(launch_sessions.c.id == session_id).values(last_used_at=now)
            )
        values = dict(row._mapping)
        values["last_used_at"] = now
        return _session_from(values)

    async def live_sessions(self, handles: dict[str, str]) -> dict[str, datetime]:
        """Of the given (session id -> cookie secret) pairs, the ones that prove a live session, with
        when each was created: one read, nothing updated (a browser's cookie housekeeping)."""
        if not handles:
            return {}
        query = select(
            launch_sessions.c.id,
            launch_sessions.c.secret_hash,
            launch_sessions.c.created_at,
            launch_sessions.c.expires_at,
        ).where(launch_sessions.c.id.in_(list(handles)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        now = self._clock()
        return {
            row.id: row.created_at
            for row in rows
            if hmac.compare_digest(row.secret_hash, hash_secret(handles[row.id])) and row.expires_at > now
        }

    async def read_tokens(self, session_id: str) -> TokenSet:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(launch_sessions).where(launch_sessions.c.id == session_id))
            ).first()
        if row is None or row.expires_at <= self._clock():
            raise _session_expired()
        return self._tokens_from(row)

    @asynccontextmanager
    async def lock_tokens(self, session_id: str) -> AsyncIterator[LockedTokens]:
        """Read tokens with `SELECT … FOR UPDATE` (a no-op on SQLite) and write a replacement atomically."""
        async with self._engine.begin() as conn:
            query = select(launch_sessions).where(launch_sessions.c.id == session_id).with_for_update()
            row = (await conn.execute(query)).first()
            if row is None or row.expires_at <= self._clock():
                raise _session_expired()
            locked = LockedTokens(self._tokens_from(row), row.iss, row.token_endpoint)
            yield locked
            new = locked.replacement
            if locked.ended:
                # Expired from now on: every reader, in this process or another, sees it ended.
                await conn.execute(
                    update(launch_sessions)
                    .where(launch_sessions.c.id == session_id)
                    .values(expires_at=self._clock(), refresh_token_enc=None)
                )
            elif new is not None:
                values: dict[str, Any] = {
                    "access_token_enc": self._cipher.encrypt(new.access_token),
                    "token_expires_at": new.expires_at,
                    "last_used_at": self._clock(),
                }
                if new.refresh_token:
                    values["refresh_token_enc"] = self._cipher.encrypt(new.refresh_token)
                if new.scope:
                    values["granted_scope"] = new.scope
                await conn.execute(
                    update(launch_sessions).where(launch_sessions.c.id == session_id).values(**values)
                )

    async def delete_session(self, session_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(launch_sessions).where(launch_sessions.c.id == session_id))

    async def delete_expired(self) -> int:
        """Housekeeping: drop expired pending launches and sessions; returns how many rows went."""
        return sum((await purge_expired(self._engine, self._clock())).values())

    def _tokens_from(self, row: Any) -> TokenSet:
        return TokenSet(
            access_token=self._cipher.decrypt(row.access_token_enc),
            refresh_token=self._cipher.decrypt(row.refresh_token_enc) if row.refresh_token_enc else None,
            expires_at=row.token_expires_at,
            scope=row.granted_scope,
        )


async def purge_expired(engine: AsyncEngine, now: datetime) -> dict[str, int]:
    """Deletes pending launches and launch sessions whose expiry has passed, nothing else;
    returns the rows deleted per table."""
    async with engine.begin() as conn:
        pending = await conn.execute(delete(pending_launches).where(pending_launches.c.expires_at <= now))
        sessions = await conn.execute(delete(launch_sessions).where(launch_sessions.c.expires_at <= now))
    return {"pending_launches": int(pending.rowcount), "launch_sessions": int(sessions.rowcount)}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _app_context(value: Any) -> str | None:
    # CDS Hooks defines appContext as a string; some EHRs hand the JSON through as an object.
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, dict | list) else None
    return text[:2000] if text else None


def _session_from(values: dict[str, Any]) -> LaunchSession:
    return LaunchSession(
        id=values["id"],
        iss=values["iss"],
        client_id=values["client_id"],
        patient=values["patient"],
        encounter=values["encounter"],
        fhir_context=json.loads(values["fhir_context"]),
        need_patient_banner=values["need_patient_banner"],
        smart_style_url=values["smart_style_url"],
        intent=values["intent"],
        app_context=values.get("app_context"),
        tenant=values["tenant"],
        fhir_user=values["fhir_user"],
        granted_scope=values["granted_scope"],
        token_expires_at=values["token_expires_at"],
        created_at=values["created_at"],
        last_used_at=values["last_used_at"],
        expires_at=values["expires_at"],
    )


def _invalid_state(what: str) -> LaunchError:
    return LaunchError("invalid_state", f"{what} Please open SecondLook again from the EHR.", 400)


def _session_expired() -> LaunchError:
    return LaunchError(
        "session_expired",
        "Your SecondLook session has ended or the EHR no longer accepts it. "
        "Please relaunch SecondLook from the EHR.",
        401,
    )

"""Access tokens for a launch session, refreshed proactively and one refresh at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol
from weakref import WeakValueDictionary

import httpx2
import structlog

from launch.discovery import Discovery
from launch.errors import LaunchError
from launch.registry import Registry
from launch.sessions import SessionStore, TokenSet, utc_now
from launch.token_endpoint import refresh_tokens, token_set_from

REFRESH_MARGIN = timedelta(seconds=60)
log = structlog.get_logger(__name__)


class TokenSource(Protocol):
    """What the FHIR client needs: a bearer token, and a way to get a new one after a 401 (`stale`:
    the token the EHR refused, so that parallel requests refused together cause one renewal)."""

    async def token(self) -> str: ...

    async def reauthenticate(self, stale: str | None = None) -> str: ...


class TokenManager:
    def __init__(
        self,
        store: SessionStore,
        registry: Registry,
        discovery: Discovery,
        http: httpx2.AsyncClient,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._registry = registry
        self._discovery = discovery
        self._http = http
        self._clock = clock
        self._locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    async def access_token(self, session_id: str) -> str:
        return (await self.fresh_tokens(session_id)).access_token

    async def fresh_tokens(self, session_id: str) -> TokenSet:
        """The session's tokens, refreshed first when the access token is within the margin."""
        tokens = await self._store.read_tokens(session_id)
        if self.is_fresh(tokens):
            return tokens
        return await self._refresh(session_id, force=False)

    async def force_refresh(self, session_id: str, stale_access: str | None = None) -> str:
        """Refresh now (after a 401 for `stale_access`, by default the stored token), unless another
        task or worker already replaced that token."""
        if stale_access is None:
            stale_access = (await self._store.read_tokens(session_id)).access_token
        return (await self._refresh(session_id, force=True, stale_access=stale_access)).access_token

    def token_source(self, session_id: str) -> SessionTokenSource:
        return SessionTokenSource(self, session_id)

    def is_fresh(self, tokens: TokenSet) -> bool:
        return tokens.expires_at is None or tokens.expires_at - self._clock() > REFRESH_MARGIN

    async def _refresh(self, session_id: str, *, force: bool, stale_access: str | None = None) -> TokenSet:
        """One refresh per launch at a time: an asyncio lock per session in this process, and the
        session row's lock (`SELECT … FOR UPDATE`) across processes on PostgreSQL. A refused
        refresh ends the session in the database, so the requests queued behind it, and any other
        worker, stop there instead of each trying again (17 refreshes for one page open, seen
        against the SMART launcher's refresh-refusal simulation)."""
        lock = self._locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[session_id] = lock
        async with lock, self._store.lock_tokens(session_id) as locked:
            # Re-read under both locks: another task or worker may already have refreshed.
            current = locked.tokens
            if force and current.access_token != stale_access:
                return current
            if not force and self.is_fresh(current):
                return current
            if current.refresh_token:
                registration = self._registry.require(locked.iss)
                try:
                    document = await refresh_tokens(
                        self._http, registration, locked.token_endpoint, current.refresh_token
                    )
                except LaunchError as exc:
                    log.info("refresh_refused", error=exc.error)
                    document = None
                if document is not None:
                    locked.replacement = token_set_from(document, self._clock(), previous=current)
                    return locked.replacement
            # Leaving the block normally commits the end of the session; raising would roll it back.
            locked.ended = True
        raise _expired()


class SessionTokenSource:
    """Adapter from a TokenManager and one session id to the FHIR client's TokenSource.

    It keeps the tokens it was given while they stay fresh: one chart read sends dozens of requests
    at once, and each used to read and decrypt the session row again (a database round trip per
    FHIR request). The source lives as long as one client, so a refresh by another worker is seen
    on the next client or after a 401."""

    def __init__(self, manager: TokenManager, session_id: str) -> None:
        self._manager = manager
        self._session_id = session_id
        self._held: TokenSet | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._held is None or not self._manager.is_fresh(self._held):
                self._held = await self._manager.fresh_tokens(self._session_id)
            return self._held.access_token

    async def reauthenticate(self, stale: str | None = None) -> str:
        async with self._lock:
            held = self._held
            if held is not None and stale is not None and held.access_token != stale:
                return held.access_token  # already renewed after another request's 401
            if stale is None and held is not None:
                stale = held.access_token
            self._held = None  # the next token() reads the session again
            return await self._manager.force_refresh(self._session_id, stale)


def _expired() -> LaunchError:
    return LaunchError(
        "session_expired",
        "Your access to the EHR has expired and could not be renewed. "
        "Please relaunch SecondLook from the EHR.",
        401,
    )

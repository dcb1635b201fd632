from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime, timedelta

import httpx2
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from werkzeug import Request, Response

from launch.crypto import TokenCipher
from launch.discovery import Discovery
from launch.errors import LaunchError
from launch.registry import Registry
from launch.sessions import SessionStore, TokenSet
from launch.tokens import TokenManager

from .conftest import CLIENT_ID, POSTGRES_ENV, FakeEhr


async def make_session(
    store: SessionStore, ehr: FakeEhr, *, expires_in: float, refresh: str | None = "RT-1"
) -> str:
    tokens = TokenSet(
        "AT-old", refresh, datetime.now(UTC) + timedelta(seconds=expires_in), "launch patient/*.rs"
    )
    session, _secret = await store.create_session(
        iss=ehr.base,
        client_id=CLIENT_ID,
        token_endpoint=ehr.token_url,
        tokens=tokens,
        context={"patient": "p1"},
    )
    return session.id


def answers_refresh(ehr: FakeEhr, access_token: str) -> None:
    """The EHR's next token response: a new access token for five minutes, no new refresh token."""
    ehr.token_responses.append(
        (200, {"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "scope": "launch"})
    )


@pytest.fixture
def manager(
    lite_store: SessionStore, registry: Registry, discovery: Discovery, http: httpx2.AsyncClient
) -> TokenManager:
    return TokenManager(lite_store, registry, discovery, http)


async def test_valid_token_needs_no_request(
    ehr: FakeEhr, lite_store: SessionStore, manager: TokenManager
) -> None:
    session_id = await make_session(lite_store, ehr, expires_in=600)
    assert await manager.access_token(session_id) == "AT-old"
    assert ehr.token_requests == []


@pytest.mark.parametrize("expires_in", [-30, 30])  # already expired, or expiring within the 60 s margin
async def test_refresh_with_rotation(
    expires_in: int, ehr: FakeEhr, lite_store: SessionStore, manager: TokenManager
) -> None:
    session_id = await make_session(lite_store, ehr, expires_in=expires_in)
    ehr.token_responses.append(
        (
            200,
            {
                "access_token": "AT-new",
                "token_type": "bearer",
                "expires_in": 300,
                "refresh_token": "RT-2",
                "scope": "launch patient/Condition.rs",
            },
        )
    )
    assert await manager.access_token(session_id) == "AT-new"
    form = ehr.token_form()
    assert form == {"grant_type": "refresh_token", "refresh_token": "RT-1", "client_id": CLIENT_ID}
    stored = await lite_store.read_tokens(session_id)
    assert stored.refresh_token == "RT-2"
    assert stored.scope == "launch patient/Condition.rs"
    assert stored.expires_at is not None and stored.expires_at > datetime.now(UTC) + timedelta(seconds=200)
    assert await manager.access_token(session_id) == "AT-new"
    assert len(ehr.token_requests) == 1


async def test_refresh_without_new_refresh_token_keeps_old(
    ehr: FakeEhr, lite_store: SessionStore, manager: TokenManager
) -> None:
    session_id = await make_session(lite_store, ehr, expires_in=-1)
    ehr.token_responses.append(
        (
            200,
            {
                "access_token": "AT-new",
                "token_type": "Bearer",
                "expires_in": 570,
                "scope": "launch patient/*.rs",
            },
        )
    )
    assert await manager.access_token(session_id) == "AT-new"
    assert (await lite_store.read_tokens(session_id)).refresh_token == "RT-1"


async def test_concurrent_calls_refresh_once(
    ehr: FakeEhr, lite_store: SessionStore, manager: TokenManager
) -> None:
    def slow_token(request: Request) -> Response:
        ehr.token_requests.append(request)
        time.sleep(0.2)
        body = {
            "access_token": f"AT-{len(ehr.token_requests)}",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "launch patient/*.rs",
        }
        return Response(json.dumps(body), content_type="application/json")

    ehr.server.clear_all_handlers()
    ehr.server.expect_request("/auth/token", method="POST").respond_with_handler(slow_token)
    session_id = await make_session(lite_store, ehr, expires_in=-1)
    tokens = await asyncio.gather(*(manager.access_token(session_id) for _ in range(6)))
    assert tokens == ["AT-1"] * 6
    assert len(ehr.token_requests) == 1


async def test_second_manager_rereads_after_refresh(
    ehr: FakeEhr, lite_store: SessionStore, registry: Registry, discovery: Discovery, http: httpx2.AsyncClient
) -> None:
    """A second worker (its own manager and lock) sees the first one's refresh and does not repeat it."""
    session_id = await make_session(lite_store, ehr, expires_in=-1)
    ehr.token_responses.append(
        (
            200,
            {
                "access_token": "AT-new",
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "launch patient/*.rs",
            },
        )
    )
    first = TokenManager(lite_store, registry, discovery, http)
    second = TokenManager(lite_store, registry, discovery, http)
    assert await first.access_token(session_id) == "AT-new"
    assert await second.access_token(session_id) == "AT-new"
    assert len(ehr.token_requests) == 1


async def test_refresh_failure_asks_to_relaunch(
    ehr: FakeEhr, lite_store: SessionStore, manager: TokenManager
) -> None:
    session_id = await make_session(lite_store, ehr, expires_in=-1)
    ehr.token_responses.append((400, {"error": "invalid_grant"}))
    with pytest.raises(LaunchError) as caught:
        await manager.access_token(session_id)
    assert caught.value.error == "session_expired"
    assert "relaunch" in caught.value.description.lower()
    assert "RT-1" not in str(caught.value)


async def test_expired_without_refresh_token(
    ehr: FakeEhr, lite_store: SessionStore, manager: TokenManager
) -> None:
    session_id = await make_session(lite_store, ehr, expires_in=-1, refresh=None)
    with pytest.raises(LaunchError) as caught:
        await manager.access_token(session_id)
    assert caught.value.error == "session_expired"
    assert ehr.token_requests == []


async def test_force_refresh_and_token_source(
    ehr: FakeEhr, lite_store: SessionStore, manager: TokenManager
) -> None:
    session_id = await make_session(lite_store, ehr, expires_in=600)
    answers_refresh(ehr, "AT-forced")
    source = manager.token_source(session_id)
    assert await source.token() == "AT-old"
    assert await source.reauthenticate() == "AT-forced"
    assert await source.token() == "AT-forced"
    assert len(ehr.token_requests) == 1


async def test_token_source_reads_the_session_once_per_client(
    ehr: FakeEhr, lite_store: SessionStore, manager: TokenManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chart read sends dozens of requests at once; the session row is read and decrypted once."""
    session_id = await make_session(lite_store, ehr, expires_in=600)
    reads: list[str] = []
    read_tokens = lite_store.read_tokens

    async def counted(wanted: str) -> TokenSet:
        reads.append(wanted)
        return await read_tokens(wanted)

    monkeypatch.setattr(lite_store, "read_tokens", counted)
    source = manager.token_source(session_id)
    tokens = await asyncio.gather(*(source.token() for _ in range(20)))
    assert tokens == ["AT-old"] * 20
    assert reads == [session_id]
    # Another client (the next page) reads the session again: a refresh elsewhere is seen there.
    assert await manager.token_source(session_id).token() == "AT-old"
    assert len(reads) == 2


async def test_token_source_renews_a_held_token_near_expiry(
    ehr: FakeEhr, lite_store: SessionStore, registry: Registry, discovery: Discovery, http: httpx2.AsyncClient
) -> None:
    now = [datetime.now(UTC)]
    manager = TokenManager(lite_store, registry, discovery, http, clock=lambda: now[0])
    session_id = await make_session(lite_store, ehr, expires_in=600)
    answers_refresh(ehr, "AT-new")
    source = manager.token_source(session_id)
    assert await source.token() == "AT-old"
    now[0] += timedelta(seconds=545)  # 55 s left: inside the 60 s margin
    assert await source.token() == "AT-new"
    assert len(ehr.token_requests) == 1


async def test_parallel_401s_on_one_client_renew_once(
    ehr: FakeEhr, lite_store: SessionStore, manager: TokenManager
) -> None:
    session_id = await make_session(lite_store, ehr, expires_in=600)
    answers_refresh(ehr, "AT-forced")
    source = manager.token_source(session_id)
    refused = await source.token()
    renewed = await asyncio.gather(*(source.reauthenticate(refused) for _ in range(5)))
    assert renewed == ["AT-forced"] * 5
    assert await source.token() == "AT-forced"
    assert len(ehr.token_requests) == 1


async def test_unknown_session(manager: TokenManager, ehr: FakeEhr) -> None:
    with pytest.raises(LaunchError) as caught:
        await manager.access_token("nope")
    assert caught.value.error == "session_expired"


@pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"{POSTGRES_ENV} is not set (CI sets it)")
async def test_concurrent_workers_refresh_once_on_postgresql(
    ehr: FakeEhr, cipher: TokenCipher, registry: Registry, discovery: Discovery, http: httpx2.AsyncClient
) -> None:
    """Two managers (two web workers: separate asyncio locks) race; SELECT … FOR UPDATE serialises them."""

    def slow_token(request: Request) -> Response:
        ehr.token_requests.append(request)
        time.sleep(0.2)
        body = {
            "access_token": f"AT-{len(ehr.token_requests)}",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "launch patient/*.rs",
        }
        return Response(json.dumps(body), content_type="application/json")

    ehr.server.clear_all_handlers()
    ehr.server.expect_request("/auth/token", method="POST").respond_with_handler(slow_token)
    engine = create_async_engine(os.environ[POSTGRES_ENV])
    try:
        store = SessionStore(engine, cipher)
        await store.create_tables()
        session_id = await make_session(store, ehr, expires_in=-1)
        workers = [TokenManager(store, registry, discovery, http) for _ in range(2)]
        tokens = await asyncio.gather(*(worker.access_token(session_id) for worker in workers))
        assert tokens == ["AT-1", "AT-1"]
        assert len(ehr.token_requests) == 1
        await store.delete_session(session_id)
    finally:
        await engine.dispose()


def refusing_token_endpoint(ehr: FakeEhr, delay: float = 0.2) -> None:
    """A token endpoint that refuses every refresh (as the SMART launcher's expired-refresh simulation
    does)."""

    def refuse(request: Request) -> Response:
        ehr.token_requests.append(request)
        time.sleep(delay)
        return Response(json.dumps({"error": "invalid_grant"}), status=400, content_type="application/json")

    ehr.server.clear_all_handlers()
    ehr.server.expect_request("/auth/token", method="POST").respond_with_handler(refuse)


@pytest.mark.parametrize("after_401", [False, True], ids=["expired", "rejected"])
async def test_refused_refresh_is_tried_once_per_launch(
    after_401: bool, ehr: FakeEhr, lite_store: SessionStore, manager: TokenManager
) -> None:
    """A page open reads a dozen searches at once; each one needing a token must not refresh again."""
    refusing_token_endpoint(ehr)
    session_id = await make_session(lite_store, ehr, expires_in=600 if after_401 else -1)
    call = manager.force_refresh if after_401 else manager.access_token
    outcomes = await asyncio.gather(*(call(session_id) for _ in range(17)), return_exceptions=True)
    assert all(isinstance(o, LaunchError) and o.error == "session_expired" for o in outcomes)
    # Later requests of the same launch find the session ended, without another attempt.
    with pytest.raises(LaunchError, match="relaunch"):
        await manager.access_token(session_id)
    with pytest.raises(LaunchError):
        await manager.force_refresh(session_id)
    assert len(ehr.token_requests) == 1


async def test_refused_refresh_ends_the_session_for_other_workers(
    ehr: FakeEhr, lite_store: SessionStore, registry: Registry, discovery: Discovery, http: httpx2.AsyncClient
) -> None:
    """The end of the session is written to the database, so another process does not retry."""
    refusing_token_endpoint(ehr, delay=0)
    session_id = await make_session(lite_store, ehr, expires_in=-1)
    for worker in (TokenManager(lite_store, registry, discovery, http) for _ in range(3)):
        with pytest.raises(LaunchError):
            await worker.access_token(session_id)
    assert len(ehr.token_requests) == 1
    assert await lite_store.get_session(session_id, "any") is None


@pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"{POSTGRES_ENV} is not set (CI sets it)")
async def test_concurrent_workers_share_one_refused_refresh_on_postgresql(
    ehr: FakeEhr, cipher: TokenCipher, registry: Registry, discovery: Discovery, http: httpx2.AsyncClient
) -> None:
    refusing_token_endpoint(ehr)
    engine = create_async_engine(os.environ[POSTGRES_ENV])
    try:
        store = SessionStore(engine, cipher)
        await store.create_tables()
        session_id = await make_session(store, ehr, expires_in=-1)
        workers = [TokenManager(store, registry, discovery, http) for _ in range(3)]
        outcomes = await asyncio.gather(
            *(worker.access_token(session_id) for worker in workers for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(o, LaunchError) for o in outcomes)
        assert len(ehr.token_requests) == 1
        await store.delete_session(session_id)
    finally:
        await engine.dispose()

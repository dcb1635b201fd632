from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from launch.crypto import TokenCipher, generate_key
from launch.errors import LaunchError
from launch.sessions import PendingLaunch, SessionStore, TokenSet, hash_secret

ACCESS = "access-token-CLEARTEXT-1234567890"
REFRESH = "refresh-token-CLEARTEXT-0987654321"
VERIFIER = "pkce-verifier-CLEARTEXT-abcdefghijklmnopqrstuvwxyz0123456789"
CONTEXT = {
    "patient": "p123",
    "encounter": "e9",
    "fhirContext": [{"reference": "DiagnosticReport/dr1", "role": "launch"}],
    "need_patient_banner": False,
    "smart_style_url": "https://ehr.example.org/style.json",
    "intent": "review",
    "tenant": "org-7",
    "fhirUser": "Practitioner/doc1",
}


def tokens(expires_in: int = 3600) -> TokenSet:
    return TokenSet(ACCESS, REFRESH, datetime.now(UTC) + timedelta(seconds=expires_in), "launch patient/*.rs")


def pending(state: str = "state-1", minutes: int = 10) -> PendingLaunch:
    now = datetime.now(UTC)
    return PendingLaunch(
        state,
        "https://e.example.org",
        "L1",
        "https://app/cb",
        VERIFIER,
        "launch",
        "https://e/t",
        now,
        now + timedelta(minutes=minutes),
    )


async def new_session(store: SessionStore) -> tuple[str, str]:
    session, secret = await store.create_session(
        iss="https://e.example.org",
        client_id="c",
        token_endpoint="https://e/t",
        tokens=tokens(),
        context=CONTEXT,
    )
    return session.id, secret


async def test_session_round_trip(store: SessionStore) -> None:
    session_id, secret = await new_session(store)
    assert len(session_id) >= 22 and len(secret) >= 43  # ≥128 and ≥256 bits, urlsafe base64
    session = await store.get_session(session_id, secret)
    assert session.patient == "p123"
    assert session.encounter == "e9"
    assert session.fhir_context == [{"reference": "DiagnosticReport/dr1", "role": "launch"}]
    assert session.need_patient_banner is False
    assert (session.smart_style_url, session.intent, session.tenant) == (
        "https://ehr.example.org/style.json",
        "review",
        "org-7",
    )
    assert session.fhir_user == "Practitioner/doc1"
    assert session.granted.can_read("Condition")
    assert session.expires_at - session.created_at == timedelta(hours=12)
    assert not hasattr(session, "access_token")
    stored = await store.read_tokens(session_id)
    assert (stored.access_token, stored.refresh_token) == (ACCESS, REFRESH)


async def test_wrong_secret_and_unknown_id_are_refused(store: SessionStore) -> None:
    session_id, secret = await new_session(store)
    assert await store.get_session(session_id, secret + "x") is None
    assert await store.get_session("unknown", secret) is None
    assert await store.get_session(session_id, "") is None


async def test_two_launches_are_independent(store: SessionStore) -> None:
    first_id, first_secret = await new_session(store)
    second, second_secret = await store.create_session(
        iss="https://e.example.org",
        client_id="c",
        token_endpoint="https://e/t",
        tokens=tokens(),
        context={**CONTEXT, "patient": "other"},
    )
    assert (await store.get_session(first_id, first_secret)).patient == "p123"
    assert (await store.get_session(second.id, second_secret)).patient == "other"
    assert await store.get_session(first_id, second_secret) is None


async def test_tokens_are_not_stored_in_cleartext(store: SessionStore, engine: AsyncEngine) -> None:
    session_id, secret = await new_session(store)
    await store.add_pending(pending(), "nonce-1")
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM launch_sessions"))).all()
        rows += (await conn.execute(text("SELECT * FROM launch_pending"))).all()
    dump = repr(rows)
    assert session_id in dump  # the dump really holds the rows
    for cleartext in (ACCESS, REFRESH, VERIFIER, secret, "nonce-1"):
        assert cleartext not in dump
    assert hash_secret(secret) in dump


async def test_pending_launch_is_one_time(store: SessionStore) -> None:
    await store.add_pending(pending(), "nonce-1")
    taken = await store.take_pending("state-1", "nonce-1")
    assert taken.code_verifier == VERIFIER and taken.launch == "L1"
    with pytest.raises(LaunchError) as caught:
        await store.take_pending("state-1", "nonce-1")
    assert caught.value.error == "invalid_state"


async def test_pending_launch_expires(store: SessionStore) -> None:
    await store.add_pending(pending(minutes=-1), "nonce-1")
    with pytest.raises(LaunchError, match="expired") as caught:
        await store.take_pending("state-1", "nonce-1")
    assert caught.value.error == "invalid_state"


async def test_pending_launch_is_bound_to_the_browser(store: SessionStore) -> None:
    await store.add_pending(pending(), "nonce-1")
    with pytest.raises(LaunchError, match="different browser") as caught:
        await store.take_pending("state-1", "nonce-2")
    assert caught.value.error == "invalid_state"


async def test_expired_session_and_housekeeping(engine: AsyncEngine, cipher: TokenCipher) -> None:
    now = [datetime.now(UTC)]
    store = SessionStore(engine, cipher, clock=lambda: now[0])
    await store.create_tables()
    session_id, secret = await new_session(store)
    await store.add_pending(pending(minutes=1), "n")
    now[0] += timedelta(hours=13)
    assert await store.get_session(session_id, secret) is None
    with pytest.raises(LaunchError) as caught:
        await store.read_tokens(session_id)
    assert caught.value.error == "session_expired"
    assert await store.delete_expired() == 2
    assert await store.delete_expired() == 0


async def test_last_used_is_updated(engine: AsyncEngine, cipher: TokenCipher) -> None:
    now = [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)]
    store = SessionStore(engine, cipher, clock=lambda: now[0])
    await store.create_tables()
    session_id, secret = await new_session(store)
    now[0] += timedelta(minutes=5)
    await store.get_session(session_id, secret)
    again = await store.get_session(session_id, secret)
    assert again.created_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert again.last_used_at == datetime(2026, 1, 1, 12, 5, tzinfo=UTC)


async def test_session_survives_restart(tmp_path: Path) -> None:
    key = generate_key()
    url = f"sqlite+aiosqlite:///{tmp_path / 'persist.db'}"
    first_engine = create_async_engine(url)
    store = SessionStore(first_engine, TokenCipher([key]))
    await store.create_tables()
    session_id, secret = await new_session(store)
    await first_engine.dispose()

    second_engine = create_async_engine(url)
    restarted = SessionStore(
        second_engine, TokenCipher([generate_key(), key])
    )  # key rotation: old key still decrypts
    assert (await restarted.get_session(session_id, secret)).patient == "p123"
    assert (await restarted.read_tokens(session_id)).access_token == ACCESS
    await second_engine.dispose()


async def test_live_sessions_proves_each_handle_by_its_secret_in_one_read(
    engine: AsyncEngine, cipher: TokenCipher
) -> None:
    now = [datetime.now(UTC)]
    store = SessionStore(engine, cipher, clock=lambda: now[0])
    await store.create_tables()
    live_id, live_secret = await new_session(store)
    old_id, old_secret = await new_session(store)
    assert await store.live_sessions({}) == {}
    found = await store.live_sessions({live_id: live_secret, old_id: "wrong secret", "unknown": "x"})
    assert set(found) == {live_id}
    now[0] += timedelta(hours=13)  # both expired
    assert await store.live_sessions({live_id: live_secret, old_id: old_secret}) == {}

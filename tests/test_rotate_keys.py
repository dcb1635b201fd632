"""`secondlook rotate-keys` re-encrypts patient data and launch tokens under the newest key, so
the old key can be removed afterwards; a value no configured key decrypts stops it with one line
naming the table and row (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from launch.crypto import TokenCipher, generate_key
from launch.sessions import SessionStore
from smartapp.cli.main import main
from smartapp.db import create_engine
from smartapp.encryption import UnreadableValue
from smartapp.packet.store import PacketStore
from smartapp.schema import migrate
from tests.launch.test_sessions import ACCESS, new_session
from tests.test_encryption_at_rest import ISS, NAME, packet

OLD, NEW = generate_key(), generate_key()


async def _seed(url: str, key: str, session: bool = True) -> tuple[str, str]:
    """A packet and (unless not `session`) a launch session written under `key`; their ids."""
    cipher = TokenCipher([key])
    engine = create_engine(url, cipher)
    session_id = ""
    try:
        await migrate(engine)
        packet_id = (await PacketStore(engine).create(packet(), iss=ISS, who="doc")).packet.id
        if session:
            session_id, _ = await new_session(SessionStore(engine, cipher))
    finally:
        await engine.dispose()
    return packet_id, session_id


async def _read(url: str, keys: list[str], packet_id: str, session_id: str) -> tuple[str, str]:
    cipher = TokenCipher(keys)
    engine = create_engine(url, cipher)
    try:
        stored = await PacketStore(engine).get(packet_id)
        tokens = await SessionStore(engine, cipher).read_tokens(session_id)
    finally:
        await engine.dispose()
    assert stored is not None
    return stored.packet.patient.name, tokens.access_token


async def _packet_name(url: str, key: str, packet_id: str) -> str:
    engine = create_engine(url, TokenCipher([key]))
    try:
        stored = await PacketStore(engine).get(packet_id)
    finally:
        await engine.dispose()
    assert stored is not None
    return stored.packet.patient.name


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], keys: str, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("SECONDLOOK_SECRET_KEY", keys)
    code = main(["rotate-keys", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_rotation_lets_the_old_key_go(
    empty_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    packet_id, session_id = asyncio.run(_seed(empty_database, OLD))
    with pytest.raises(UnreadableValue):  # without rotation the old key is still needed
        asyncio.run(_read(empty_database, [NEW], packet_id, session_id))

    code, out, err = _cli(monkeypatch, capsys, f"{NEW},{OLD}", "--database-url", empty_database)
    assert (code, err) == (0, "")
    rotated = json.loads(out)["rotated"]
    assert rotated["already_current"] == 0
    assert rotated["columns"]["packets.body"]["reencrypted"] == 1
    assert rotated["columns"]["packet_edits.changes"]["reencrypted"] == 1
    assert rotated["columns"]["launch_sessions.access_token_enc"]["reencrypted"] == 1
    assert rotated["columns"]["launch_sessions.refresh_token_enc"]["reencrypted"] == 1
    assert rotated["reencrypted"] == 4

    assert asyncio.run(_read(empty_database, [NEW], packet_id, session_id)) == (NAME, ACCESS)
    code, out, err = _cli(monkeypatch, capsys, NEW, "--database-url", empty_database, "--check")
    assert (code, err) == (0, "")
    assert (
        json.loads(out)["checked"]["reencrypted"] == 0 and json.loads(out)["checked"]["already_current"] == 4
    )
    code, out, _ = _cli(monkeypatch, capsys, f"{NEW},{OLD}", "--database-url", empty_database)
    assert json.loads(out)["rotated"]["reencrypted"] == 0  # nothing left to do


def test_a_value_no_key_decrypts_stops_rotation_with_one_line_naming_the_row(
    empty_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lost = generate_key()
    packet_id, _ = asyncio.run(_seed(empty_database, lost, session=False))
    for extra in ([], ["--check"]):
        code, out, err = _cli(monkeypatch, capsys, f"{NEW},{OLD}", "--database-url", empty_database, *extra)
        assert (code, out) == (1, "")
        assert err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith(f"secondlook rotate-keys: packets row id={packet_id}: body cannot be decrypted")
    # Nothing was lost: with its key back, the row reads.
    assert asyncio.run(_packet_name(empty_database, lost, packet_id)) == NAME


def test_a_malformed_key_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(
        monkeypatch, capsys, "not-a-key", "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    )
    assert (code, out) == (2, "")
    assert err.startswith(
        "secondlook rotate-keys: cannot start: SECONDLOOK_SECRET_KEY: the key is not a Fernet key"
    )
    assert err.count("\n") == 1 and "not-a-key" not in err

"""Alembic migrations: a new database migrates to exactly the models' schema (SQLite and
PostgreSQL), a database made before migrations is stamped and kept, two processes starting
together do not trip over each other, and `secondlook migrate` reports the revision."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, insert, inspect, select, text

from launch.crypto import TokenCipher, generate_key
from launch.tables import metadata as launch_metadata
from launch.tables import pending_launches
from smartapp.cli.main import main
from smartapp.db import create_engine
from smartapp.packet.delivery import DeliveryStore
from smartapp.packet.model import Insurance, PatientInfo, ReferralPacket
from smartapp.packet.store import PacketStore
from smartapp.schema import downgrade, migrate, target_metadata
from smartapp.storage import metadata as app_metadata
from tests.support import database_params

# A key of these tests alone (the engine needs one; these tests do not depend on its value).
CIPHER = TokenCipher([generate_key()])

HEAD = "0006"  # the newest revision in smartapp/migrations/versions
# Tables added by revisions after the baseline: a database made before migrations cannot hold them.
AFTER_BASELINE = {"referral_events", "referral_deliveries", "outside_reports"}


async def _drop_all(url: str) -> None:
    engine = create_engine(url, CIPHER)
    async with engine.begin() as conn:
        for metadata in target_metadata():
            await conn.run_sync(metadata.drop_all)
        await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    await engine.dispose()


def _differences(connection) -> list:  # type: ignore[no-untyped-def]
    merged = MetaData()
    for metadata in target_metadata():
        for table in metadata.tables.values():
            table.to_metadata(merged)
    return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), merged)


@pytest.mark.parametrize("url", database_params())
async def test_a_new_database_migrates_to_exactly_the_models(url: str, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}" if url == "sqlite" else url
    await _drop_all(url)
    engine = create_engine(url, CIPHER)
    try:
        assert await migrate(engine) == HEAD
        assert await migrate(engine) == HEAD  # idempotent
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()
        await _drop_all(url)


async def test_a_database_made_before_migrations_is_stamped_and_its_rows_kept(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'legacy.db'}", CIPHER)
    async with engine.begin() as conn:
        await conn.run_sync(launch_metadata.create_all)
        await conn.run_sync(
            app_metadata.create_all,
            tables=[t for t in app_metadata.sorted_tables if t.name not in AFTER_BASELINE],
        )
        await conn.execute(
            insert(pending_launches).values(
                state="s1",
                nonce_hash="n",
                iss="https://e",
                redirect_uri="https://a/cb",
                code_verifier_enc="v",
                requested_scope="launch",
                token_endpoint="https://e/t",
                created_at=datetime.now(UTC),
                expires_at=datetime.now(UTC),
            )
        )
    assert await migrate(engine) == HEAD
    async with engine.connect() as conn:
        assert (await conn.execute(select(pending_launches.c.state))).scalars().all() == ["s1"]
        assert "alembic_version" in await conn.run_sync(lambda c: inspect(c).get_table_names())
    await engine.dispose()


async def test_two_processes_starting_together_both_succeed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    engines = [create_engine(url, CIPHER), create_engine(url, CIPHER)]
    try:
        assert await asyncio.gather(*(migrate(e) for e in engines)) == [HEAD, HEAD]
    finally:
        for e in engines:
            await e.dispose()


def test_secondlook_migrate_prints_the_revision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"]) == 0
    assert json.loads(capsys.readouterr().out) == {"revision": HEAD}


def test_every_module_that_defines_a_table_is_part_of_the_schema() -> None:
    root = Path(__file__).resolve().parents[1]
    schema = (root / "smartapp" / "schema.py").read_text()
    defining = sorted(
        p.relative_to(root)
        for folder in ("smartapp", "launch")
        for p in (root / folder).rglob("*.py")
        if "= Table(" in p.read_text() and "migrations" not in p.parts
    )
    for path in defining:
        module = ".".join(path.with_suffix("").parts)
        assert module in schema or path == Path("launch/tables.py"), (
            f"{module} defines a table the migrations do not know"
        )


@pytest.mark.parametrize("url", database_params())
async def test_deliveries_sent_before_0006_stay_sends_to_the_center(url: str, tmp_path: Path) -> None:
    # 0006 adds `target` to referral_deliveries so EHR filing attempts share the table; the rows
    # already there are sends to a center, and a downgrade drops the EHR attempts it cannot hold.
    url = f"sqlite+aiosqlite:///{tmp_path / 'deliveries.db'}" if url == "sqlite" else url
    await _drop_all(url)
    engine = create_engine(url, CIPHER)
    try:
        await migrate(engine)
        assert await downgrade(engine, "0005") == "0005"
        packet = ReferralPacket(
            created="2026-12-01T09:00:00+00:00",
            patient=PatientInfo(reference="Patient/p1"),
            insurance=Insurance(available=False),
        )
        stored = await PacketStore(engine).create(packet, iss="https://ehr.example/fhir", who="doc")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO referral_deliveries (packet_id, version, endpoint, document, who, at, "
                    "delivered, detail, location) VALUES (:id, 1, 'https://center/fhir', 'd1', 'doc', :at, "
                    ":yes, :empty, :empty)"
                ),
                {"id": stored.packet.id, "at": datetime.now(UTC), "yes": True, "empty": CIPHER.encrypt("")},
            )
        assert await migrate(engine) == HEAD
        deliveries = DeliveryStore(engine)
        [sent] = await deliveries.for_packet(stored.packet.id)
        assert sent.target == "center" and sent.delivered and sent.endpoint == "https://center/fhir"
        assert await deliveries.for_packet(stored.packet.id, "ehr") == []
        await deliveries.record(
            stored.packet.id,
            1,
            endpoint="https://ehr.example/fhir",
            document="p",
            who="doc",
            delivered=False,
            detail="The EHR did not answer in time",
            target="ehr",
        )
        assert len(await deliveries.for_packet(stored.packet.id, "ehr")) == 1
        assert await downgrade(engine, "0005") == "0005"
        async with engine.connect() as conn:
            left = (await conn.execute(text("SELECT endpoint FROM referral_deliveries"))).scalars().all()
        assert left == ["https://center/fhir"]
    finally:
        await engine.dispose()
        await _drop_all(url)

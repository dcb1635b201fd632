"""Patient data is ciphertext in the database (SQLite and PostgreSQL) and reads back whole: after a
packet, referral, outside report, worklist, finding action and CDS feedback round trip, raw SQL
over every column of every table finds no name, finding sentence or report text; the migration to
encryption converts clear rows (and its downgrade restores them); clear values an older version
leaves behind are encrypted at the next start; a value no key decrypts is an error, not a loss."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from launch.crypto import TokenCipher, generate_key
from smartapp.cds.feedback import FeedbackRequest, record_feedback
from smartapp.db import create_engine, create_sync_engine
from smartapp.encryption import UnreadableValue
from smartapp.finding_decisions import list_decisions, record_decision
from smartapp.packet import outside_report
from smartapp.packet.delivery import DeliveryStore
from smartapp.packet.model import Insurance, PatientInfo, Reason, ReferralPacket
from smartapp.packet.store import PacketStore
from smartapp.packet.tracking import Opinion, change_status, tracking
from smartapp.schema import _config, _migrating, downgrade, migrate, target_metadata
from smartapp.screening.worklist_writer import WorklistWriter
from smartapp.worklist.queries import Filters, list_rows

ISS = "https://ehr.example/fhir"
NAME = "Zelda Quintanilla-Marsh"
MRN = "MRN-77441902"
FINDING = "Pathology describes a spindle cell neoplasm of uncertain malignant potential"
NOTE = "Patient asked that her sister Imogen be called first"
OPINION = "Outside review favours low-grade fibromyxoid sarcoma over desmoid fibromatosis"
REPORT = "OUTSIDE CONSULT: epithelioid sarcoma, proximal type, INI1 lost"
FILE_NAME = "Quintanilla-Marsh consult.txt"
DETAIL = "OperationOutcome: duplicate referral for Zelda Quintanilla-Marsh"
COMMENT = "Discussed with Mrs Quintanilla-Marsh at the bedside"
CLEAR_TEXTS = (NAME, MRN, FINDING, NOTE, OPINION, REPORT, FILE_NAME, DETAIL, COMMENT, "1961-04-23")


def packet() -> ReferralPacket:
    return ReferralPacket(
        created="2026-11-25T09:00:00+00:00",
        patient=PatientInfo(reference="Patient/p1", name=NAME, identifier=MRN, birth_date="1961-04-23"),
        insurance=Insurance(available=False, note="Not available"),
        reasons=[Reason(trigger="uncertain-pathology", summary=FINDING)],
    )


async def round_trip(engine: AsyncEngine, url: str, cipher: TokenCipher) -> str:
    """Writes patient data through every store that keeps some; returns the packet id."""
    store = PacketStore(engine)
    created = await store.create(packet(), iss=ISS, who="Practitioner/doc1")
    edited = created.packet.model_copy(deep=True)
    edited.summary_note = NOTE
    edited.status = "final"
    stored = await store.save(edited, 1, "Practitioner/doc1")
    await store.add_receipt(stored.packet.id, stored.version, {"patient_name": NAME})
    await change_status(engine, stored, "sent", who="Practitioner/doc1", note=NOTE)
    opinion = Opinion(received=date(2026, 11, 30), center="Center", summary=OPINION, agreement="agrees")
    await change_status(engine, stored, "", who="Practitioner/doc1", opinion=opinion)
    await outside_report.keep(
        engine, stored.packet.id, 2, FILE_NAME, outside_report.TEXT, REPORT.encode("utf-8")
    )
    await DeliveryStore(engine).record(
        stored.packet.id,
        stored.version,
        endpoint="https://center.example/fhir",
        document="doc-1",
        who="Practitioner/doc1",
        delivered=False,
        detail=DETAIL,
        location="https://center.example/fhir/Bundle/" + NAME,
    )
    await record_decision(
        engine,
        iss=ISS,
        patient="p1",
        kind="dismiss",
        trigger="rare-cancer",
        reason="other",
        note=NOTE,
        who="Practitioner/doc1",
    )
    await record_feedback(
        engine,
        "secondlook",
        ISS,
        FeedbackRequest.model_validate(
            {
                "feedback": [
                    {
                        "card": "card-1",
                        "outcome": "overridden",
                        "overrideReason": {"userComment": COMMENT},
                        "outcomeTimestamp": "2026-11-30T10:00:00Z",
                    }
                ]
            }
        ),
    )
    sync = create_sync_engine(url, cipher)
    writer = WorklistWriter(sync, ISS, "oncology-clinic")
    writer.start(date(2026, 11, 30), None)
    result = {"patient": "Patient/p1", "time_critical": None, "data_issues": []}
    result["findings"] = [{"trigger": "uncertain-pathology", "urgency": "routine", "summary": FINDING}]
    writer.write([{"patient_id": "p1", "result": result, "display_name": NAME, "birth_date": "1961-04-23"}])
    writer.finish("finished", {})
    sync.dispose()
    return stored.packet.id


async def raw_dump(engine: AsyncEngine) -> str:
    """Every value of every table of the app, as the database returns it to plain SQL."""
    values: list[str] = []
    async with engine.connect() as conn:
        for metadata in target_metadata():
            for table in metadata.sorted_tables:
                for row in (await conn.execute(text(f"SELECT * FROM {table.name}"))).all():  # noqa: S608
                    values.extend(
                        bytes(v).decode("latin-1") if isinstance(v, bytes | memoryview) else str(v)
                        for v in row
                    )
    return "\n".join(values)


async def test_no_patient_text_is_clear_in_the_database_and_the_app_reads_it_all(empty_database: str) -> None:
    cipher = TokenCipher([generate_key()])
    engine = create_engine(empty_database, cipher)
    try:
        await migrate(engine)
        packet_id = await round_trip(engine, empty_database, cipher)
        dump = await raw_dump(engine)
        assert dump  # the tables were read
        assert [t for t in CLEAR_TEXTS if t in dump] == []
        assert "Patient/p1" in dump  # identifiers used for lookups stay clear (docs/security.md)

        stored = await PacketStore(engine).get(packet_id)
        assert stored is not None
        assert (stored.packet.patient.name, stored.packet.patient.identifier) == (NAME, MRN)
        assert stored.packet.reasons[0].summary == FINDING and stored.packet.summary_note == NOTE
        history = await PacketStore(engine).history(packet_id)
        assert history[-1].changes["summary_note"] == {"from": "", "to": NOTE}
        assert (await PacketStore(engine).receipts(packet_id))[0]["patient_name"] == NAME
        state = await tracking(engine, stored)
        assert state.events[0].note == NOTE and state.opinion is not None and state.opinion.summary == OPINION
        reports = (await outside_report.for_packets(engine, [packet_id]))[packet_id]
        assert reports[0].name == FILE_NAME
        found = await outside_report.read_for_patient(
            engine, reports[0].id, iss=ISS, patient_ref="Patient/p1"
        )
        assert found is not None and found[1] == REPORT.encode("utf-8")
        delivery = (await DeliveryStore(engine).for_packet(packet_id))[0]
        assert (delivery.detail, delivery.location) == (DETAIL, "https://center.example/fhir/Bundle/" + NAME)
        assert [a.note for a in await list_decisions(engine, ISS, "p1")] == [NOTE]
        rows = await list_rows(engine, ISS, Filters())
        assert [(r.name, r.birth_date) for r in rows] == [(NAME, date(1961, 4, 23))]
        async with engine.connect() as conn:
            comment = (await conn.execute(text("SELECT user_comment FROM cds_feedback"))).scalar_one()
        assert comment.startswith("gAAAAA")
    finally:
        await engine.dispose()


async def test_a_value_no_key_decrypts_is_an_error_naming_what_to_run(empty_database: str) -> None:
    engine = create_engine(empty_database, TokenCipher([generate_key()]))
    try:
        await migrate(engine)
        packet_id = (await PacketStore(engine).create(packet(), iss=ISS, who="doc")).packet.id
    finally:
        await engine.dispose()
    stranger = create_engine(empty_database, TokenCipher([generate_key()]))
    try:
        with pytest.raises(
            UnreadableValue, match="cannot be decrypted with any key in SECONDLOOK_SECRET_KEY"
        ):
            await PacketStore(stranger).get(packet_id)
    finally:
        await stranger.dispose()


CLEAR_BODY = {"id": "legacy", "created": "2026-11-01T09:00:00+00:00", "status": "draft"}


def _legacy_rows(conn: Any) -> None:
    """Rows as version 0004 wrote them: JSON, text, dates and file bytes in clear."""
    body = CLEAR_BODY | {
        "patient": {"reference": "Patient/p9", "name": NAME},
        "insurance": {"available": False},
        "reasons": [{"trigger": "rare-cancer", "summary": FINDING}],
    }
    now = datetime(2026, 11, 1, 9, tzinfo=UTC)
    conn.execute(
        text(
            "INSERT INTO packets (id, patient_ref, iss, identifier, version, status, body, "
            "created_at, updated_at) "
            "VALUES ('legacy', 'Patient/p9', :iss, 'legacy', 1, 'draft', :body, :now, :now)"
        ),
        {"iss": ISS, "body": json.dumps(body), "now": now},
    )
    conn.execute(
        text(
            "INSERT INTO outside_reports (packet_id, seq, name, content_type, size, data, at) "
            "VALUES ('legacy', 1, :name, 'text/plain; charset=utf-8', 10, :data, :now)"
        ),
        {"name": FILE_NAME, "data": REPORT.encode("utf-8"), "now": now},
    )
    conn.execute(
        text(
            "INSERT INTO worklist_entries (source, patient_id, display_name, birth_date, result_json, "
            "triggers, finding_count, urgency, time_critical, fingerprint, change, status, groups_json, "
            "first_run_id, last_run_id, updated_at) "
            "VALUES (:iss, 'p9', :name, :born, :result, 'rare-cancer', 1, 'routine', "
            ":no, :fp, 'new', 'new', '[]', 'r1', 'r1', :now)"
        ),
        {
            "iss": ISS,
            "name": NAME,
            "born": date(1961, 4, 23),
            "result": json.dumps({"findings": [{"summary": FINDING}]}),
            "no": False,
            "fp": "0" * 64,
            "now": now,
        },
    )


async def test_the_migration_encrypts_clear_rows_and_its_downgrade_restores_them(empty_database: str) -> None:
    cipher = TokenCipher([generate_key()])
    engine = create_engine(empty_database, cipher)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(_config(sync), "0004"))
            await conn.run_sync(_legacy_rows)
        assert NAME in await raw_dump(engine)

        # Alembic alone, without the start-up pass of smartapp.schema.migrate: the revision converts.
        async with engine.connect() as conn:
            upgrade = _migrating(lambda sync: command.upgrade(_config(sync), "0005"))  # type: ignore[func-returns-value]
            await conn.run_sync(upgrade)
        dump = await raw_dump(engine)
        assert [t for t in CLEAR_TEXTS if t in dump] == []
        stored = await PacketStore(engine).get("legacy")
        assert stored is not None and stored.packet.patient.name == NAME
        assert stored.packet.reasons[0].summary == FINDING
        report = (await outside_report.for_packets(engine, ["legacy"]))["legacy"][0]
        found = await outside_report.read_for_patient(engine, report.id, iss=ISS, patient_ref="Patient/p9")
        assert found is not None and found[1] == REPORT.encode("utf-8") and found[0].name == FILE_NAME
        rows = await list_rows(engine, ISS, Filters())
        assert [(r.name, r.birth_date) for r in rows] == [(NAME, date(1961, 4, 23))]

        assert await downgrade(engine, "0004") == "0004"
        async with engine.connect() as conn:
            body = (await conn.execute(text("SELECT body FROM packets"))).scalar_one()
            data = (await conn.execute(text("SELECT data FROM outside_reports"))).scalar_one()
            born = (await conn.execute(text("SELECT birth_date FROM worklist_entries"))).scalar_one()
        body = json.loads(body) if isinstance(body, str) else body  # PostgreSQL's json comes parsed
        assert body["patient"]["name"] == NAME and bytes(data) == REPORT.encode("utf-8")
        assert str(born) == "1961-04-23"
    finally:
        await engine.dispose()


async def test_clear_values_an_older_version_wrote_are_encrypted_at_the_next_start(
    empty_database: str,
) -> None:
    cipher = TokenCipher([generate_key()])
    engine = create_engine(empty_database, cipher)
    try:
        await migrate(engine)
        packet_id = (await PacketStore(engine).create(packet(), iss=ISS, who="doc")).packet.id
        async with engine.begin() as conn:  # a replica still on 0004 code writes a clear note
            await conn.execute(
                text(
                    "INSERT INTO referral_events (packet_id, seq, status, who, who_name, at, note) "
                    "VALUES (:id, 1, 'sent', 'doc', '', :at, :note)"
                ),
                {"id": packet_id, "at": datetime.now(UTC), "note": NOTE},
            )
        stored = await PacketStore(engine).get(packet_id)
        assert stored is not None
        with pytest.raises(UnreadableValue, match="clear text"):
            await tracking(engine, stored)

        await migrate(engine)  # the next start
        assert NOTE not in await raw_dump(engine)
        assert (await tracking(engine, stored)).events[0].note == NOTE
        await migrate(engine)  # idempotent
        assert (await tracking(engine, stored)).events[0].note == NOTE
    finally:
        await engine.dispose()


async def test_alembic_run_directly_on_sqlite_with_foreign_keys_on_is_refused(tmp_path: Path) -> None:
    # Rebuilding `packets` with foreign keys on would cascade-delete referral events and reports.
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}", TokenCipher([generate_key()]))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(_config(sync), "0004"))
        with pytest.raises(RuntimeError, match="needs foreign keys off"):
            async with engine.begin() as conn:
                await conn.run_sync(lambda sync: command.upgrade(_config(sync), "0005"))
    finally:
        await engine.dispose()

"""Packet storage on a real SQLite file: versions, edit history, the concurrency refusal, restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from launch.crypto import TokenCipher, generate_key
from smartapp.db import create_engine, create_tables
from smartapp.packet.model import Insurance, PatientInfo, Question, ReferralPacket
from smartapp.packet.store import PacketConflict, PacketFinal, PacketStore
from smartapp.storage import metadata

# A key of these tests alone (the engine needs one; these tests do not depend on its value).
CIPHER = TokenCipher([generate_key()])

ISS = "https://ehr.example/fhir"


def new_packet() -> ReferralPacket:
    return ReferralPacket(
        created="2026-11-25T09:00:00+00:00",
        patient=PatientInfo(reference="Patient/p1", name="Test Patient"),
        insurance=Insurance(available=False, note="Not available"),
        questions=[Question(id="q1", text="Original question?")],
    )


async def open_store(path: Path) -> tuple[PacketStore, object]:
    engine = create_engine(f"sqlite+aiosqlite:///{path}", CIPHER)
    await create_tables(engine, metadata)
    return PacketStore(engine), engine


async def test_save_increments_version_and_records_who_changed_what(tmp_path: Path) -> None:
    store, engine = await open_store(tmp_path / "app.db")
    created = await store.create(new_packet(), iss=ISS, who="Practitioner/coordinator")
    edited = created.packet.model_copy(deep=True)
    edited.cover_letter = "Dear colleague"
    saved = await store.save(edited, 1, "Practitioner/coordinator")
    assert saved.version == 2
    history = await store.history(created.packet.id)
    assert [(e.version, e.who) for e in history] == [
        (1, "Practitioner/coordinator"),
        (2, "Practitioner/coordinator"),
    ]
    assert history[1].changes == {"cover_letter": {"from": "", "to": "Dear colleague"}}
    await engine.dispose()  # type: ignore[attr-defined]


async def test_second_editor_is_refused_with_the_current_version(tmp_path: Path) -> None:
    store, engine = await open_store(tmp_path / "app.db")
    created = await store.create(new_packet(), iss=ISS, who="alice")
    alice = created.packet.model_copy(deep=True)
    bob = created.packet.model_copy(deep=True)
    alice.summary_note = "Alice's note"
    bob.summary_note = "Bob's note"
    await store.save(alice, 1, "alice")
    with pytest.raises(PacketConflict) as refused:
        await store.save(bob, 1, "bob")
    assert refused.value.current.version == 2
    assert refused.value.current.packet.summary_note == "Alice's note"
    assert "changed by someone else" in str(refused.value)
    stored = await store.get(created.packet.id)
    assert stored is not None and stored.packet.summary_note == "Alice's note"
    assert [e.who for e in await store.history(created.packet.id)] == ["alice", "alice"]
    await engine.dispose()  # type: ignore[attr-defined]


async def test_concurrent_saves_from_the_same_version_only_one_wins(tmp_path: Path) -> None:
    store, engine = await open_store(tmp_path / "app.db")
    created = await store.create(new_packet(), iss=ISS, who="a")
    edits = []
    for name in ("a", "b", "c"):
        edit = created.packet.model_copy(deep=True)
        edit.summary_note = name
        edits.append(store.save(edit, 1, name))
    results = await asyncio.gather(*edits, return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, PacketConflict)) == 2
    stored = await store.get(created.packet.id)
    assert stored is not None and stored.version == 2
    await engine.dispose()  # type: ignore[attr-defined]


async def test_final_packet_is_not_edited_again(tmp_path: Path) -> None:
    store, engine = await open_store(tmp_path / "app.db")
    created = await store.create(new_packet(), iss=ISS, who="a")
    await store.save(created.packet.model_copy(update={"status": "final"}), 1, "a")
    with pytest.raises(PacketFinal):
        await store.save(created.packet.model_copy(update={"summary_note": "late"}), 2, "a")
    await engine.dispose()  # type: ignore[attr-defined]


async def test_edit_cannot_move_a_packet_to_another_patient(tmp_path: Path) -> None:
    store, engine = await open_store(tmp_path / "app.db")
    created = await store.create(new_packet(), iss=ISS, who="a")
    other = created.packet.model_copy(update={"patient": PatientInfo(reference="Patient/other")})
    saved = await store.save(other, 1, "a")
    assert saved.packet.patient.reference == "Patient/p1"
    await engine.dispose()  # type: ignore[attr-defined]


async def test_drafts_edits_and_receipts_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    store, engine = await open_store(path)
    created = await store.create(new_packet(), iss=ISS, who="a")
    edited = created.packet.model_copy(deep=True)
    edited.questions[0].text = "Edited question?"
    await store.save(edited, 1, "a")
    await store.add_receipt(created.packet.id, 2, {"ServiceRequest": {"id": "sr1"}})
    await engine.dispose()  # type: ignore[attr-defined]

    reopened, engine = await open_store(path)
    found = await reopened.find(ISS, "Patient/p1")
    assert found is not None and found.version == 2
    assert found.packet.questions[0].text == "Edited question?"
    assert len(await reopened.history(created.packet.id)) == 2
    assert (await reopened.receipts(created.packet.id))[0]["ServiceRequest"] == {"id": "sr1"}
    assert await reopened.find("https://other-ehr.example/fhir", "Patient/p1") is None
    await engine.dispose()  # type: ignore[attr-defined]


async def test_concurrent_first_opens_create_one_draft_and_a_final_packet_allows_the_next(
    tmp_path: Path,
) -> None:
    store, engine = await open_store(tmp_path / "app.db")
    created = await asyncio.gather(*(store.create(new_packet(), iss=ISS, who=f"u{i}") for i in range(5)))
    assert len({c.packet.id for c in created}) == 1
    first = created[0].packet
    found = await store.find(ISS, "Patient/p1")
    assert found is not None and found.packet.id == first.id
    assert len(await store.history(first.id)) == 1
    await store.save(first.model_copy(update={"status": "final"}), 1, "u0")
    second = await store.create(new_packet(), iss=ISS, who="u0")  # e.g. after the first center declined
    assert second.packet.id != first.id and second.packet.status == "draft"
    assert (
        await store.create(new_packet(), iss="https://other.example/fhir", who="u0")
    ).packet.id != second.packet.id
    await engine.dispose()  # type: ignore[attr-defined]


async def test_an_earlier_version_is_rebuilt_from_the_edit_history(tmp_path: Path) -> None:
    store, engine = await open_store(tmp_path / "app.db")
    created = await store.create(new_packet(), iss=ISS, who="alice")
    second = created.packet.model_copy(deep=True)
    second.cover_letter = "Alice's letter"
    second.questions[0].text = "Alice's question?"
    await store.save(second, 1, "alice")
    third = second.model_copy(deep=True)
    third.cover_letter = "Bob's letter"
    third.summary_note = "Bob's note"
    latest = await store.save(third, 2, "bob")
    assert await store.as_of(latest, 3) == latest.packet
    at_two = await store.as_of(latest, 2)
    assert at_two is not None
    assert (at_two.cover_letter, at_two.summary_note, at_two.questions[0].text) == (
        "Alice's letter",
        "",
        "Alice's question?",
    )
    assert await store.as_of(latest, 1) == created.packet
    assert await store.as_of(latest, 0) is None and await store.as_of(latest, 4) is None
    await engine.dispose()  # type: ignore[attr-defined]

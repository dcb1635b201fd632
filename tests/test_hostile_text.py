"""Hostile narrative text: every path into NLP reads a bounded amount, names the document it cut, and
loses no finding from another document of the same record (issue 12)."""

from __future__ import annotations

import base64
import random
from datetime import date
from typing import Any

import pytest

from fhirmaps import narrative_budget
from fhirmaps.context import PIECE_CHARS, analyze
from fhirmaps.read import read_records
from fhirmaps.reports import DOCUMENT_CHARS
from smartapp.cds.cards import build_cards
from smartapp.cds.evaluation import evaluate
from smartapp.cds.fetch import HookRecord, read_prefetch
from smartapp.engine import evaluate_resources
from tests.fhirmaps.builders import bundle, condition, note, observation, patient, report
from tests.hostile_text import KINDS, hostile

AS_OF = date(2026, 3, 1)
FIVE_MB = 5_000_000
GOOD = report("good", "FINAL DIAGNOSIS: Chordoma of the sacrum.", date="2026-01-10")


def _hostile_resource(path: str, text: str) -> dict[str, Any]:
    if path == "pathology":
        return report("bad", text)
    if path == "radiology":
        return report("bad", text, kind="imaging", title="CT chest")
    if path == "note":
        return note("bad", text)
    return observation("bad", "22637-3", "Pathology report final diagnosis", text_value=text)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", ["pathology", "radiology", "note", "valueString"])
def test_five_megabytes_of_hostile_text_are_cut_named_and_other_findings_survive(
    path: str, kind: str
) -> None:
    resources = [bundle(patient(), _hostile_resource(path, hostile(kind, FIVE_MB)), GOOD)]
    [record] = read_records(resources, as_of=AS_OF)
    bad = next(r for r in record.texts if r.reference.endswith("/bad"))
    assert len(bad.text) <= DOCUMENT_CHARS + 100  # + the "CONCLUSION:"-style labels between texts
    assert all(len(m.raw.sentence) <= PIECE_CHARS for m in bad.mentions)
    [result] = evaluate_resources(resources, as_of=AS_OF)
    [cut] = [i for i in result.data_issues if i.resource.endswith("/bad")]
    assert "5.0 million characters long; only the first 200,000 characters were read" in cut.reason
    assert "/bad" not in cut.reason  # the document is named in words, not by id
    rare = result.finding("rare-cancer")
    assert rare is not None and any(e.reference == "DiagnosticReport/good" for e in rare.evidence)


def test_a_finding_before_the_cut_in_the_long_document_is_still_read() -> None:
    text = "FINAL DIAGNOSIS: Chordoma of the sacrum.\n" + hostile("hedges", 2_000_000)
    [result] = evaluate_resources([bundle(patient(), report("long", text))], as_of=AS_OF)
    rare = result.finding("rare-cancer")
    assert rare is not None and rare.evidence[0].reference == "DiagnosticReport/long"


def test_a_run_on_sentence_is_read_in_bounded_pieces_to_its_end() -> None:
    text = hostile("run-on", 20_000)
    mentions = analyze([text])[0]
    assert mentions and all(len(m.sentence) <= PIECE_CHARS for m in mentions)
    assert max(m.start for m in mentions) > 19_000  # the whole text was read, not only its start
    last = max(mentions, key=lambda m: m.start)
    assert text[last.start : last.start + len(last.text)] == last.text  # offsets are in the whole text


def test_hostile_cds_prefetch_keeps_the_time_critical_card() -> None:
    aml = condition("aml", "C92.00", "Acute myeloblastic leukemia, not having achieved remission")
    prefetch = {
        "patient": patient(),
        "conditions": bundle(aml, kind="searchset"),
        "documents": bundle(note("bad", hostile("hedges", FIVE_MB)), kind="searchset"),
    }
    found, _ = read_prefetch(prefetch)
    record = HookRecord(resources=[r for items in found.values() for r in items])
    result = evaluate(record, "p1", AS_OF)
    assert result.time_critical is not None
    assert any(i.resource == "DocumentReference/bad" for i in result.data_issues)
    cards = build_cards(result, "hook-1", "https://app.test/launch")
    assert cards and "leukemia" in str(cards[0]).lower()


def test_random_bytes_labelled_text_never_yield_a_finding() -> None:
    rng = random.Random(12)  # noqa: S311 - test data
    for i in range(60):
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(50, 3000)))
        resource = report(f"blob{i}", "", title="Surgical pathology") | {
            "presentedForm": [{"contentType": "text/plain", "data": base64.b64encode(blob).decode()}]
        }
        [result] = evaluate_resources([bundle(patient(), resource)], as_of=AS_OF)
        assert result.findings == [] and result.time_critical is None, i
        assert any("binary" in d.reason for d in result.data_issues), i


REQUEST = "Patient requests a second opinion at a sarcoma center before any surgery."
FILLER = " Vital signs stable; tolerating diet; ambulating independently."


def _record_of_documents(older_note: str) -> list[dict[str, Any]]:
    return [
        bundle(
            patient(),
            report("path", "FINAL DIAGNOSIS: Chordoma of the sacrum.", date="2025-03-01"),
            report(
                "ct", "IMPRESSION: Sacral mass, unchanged." + FILLER * 5, kind="imaging", date="2026-01-05"
            ),
            note("newer", "Follow-up visit." + FILLER * 10, date="2026-02-10"),
            note("older", older_note, date="2025-06-01"),
        )
    ]


def test_documents_beyond_the_record_budget_are_named_and_not_assessed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resources = _record_of_documents(REQUEST + FILLER * 10)
    [unbounded] = evaluate_resources(resources, as_of=AS_OF)
    assert unbounded.finding("patient-request") is not None  # the older note is what it reads

    # Room for the pathology report, the imaging report and the newer note, not the older note.
    monkeypatch.setattr(narrative_budget, "RECORD_CHARS", 1_500)
    [record] = read_records(resources, as_of=AS_OF)
    older = next(r for r in record.texts if r.reference.endswith("/older"))
    assert older.text == "" and older.mentions == []
    assert all(r.text for r in record.texts if not r.reference.endswith("/older"))
    [result] = evaluate_resources(resources, as_of=AS_OF)
    assert result.finding("patient-request") is None
    assert result.finding("rare-cancer") is not None
    [cut] = [i for i in result.data_issues if i.resource.endswith("/older")]
    assert cut.reason.startswith("Progress note (note) of 06/01/2025 was not assessed")
    assert "1,500 read per record" in cut.reason
    assert not [i for i in result.data_issues if "not assessed" in i.reason and "/older" not in i.resource]


def test_the_record_budget_reads_pathology_before_newer_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = _record_of_documents("Seen in clinic." + FILLER * 2)
    monkeypatch.setattr(narrative_budget, "RECORD_CHARS", 60)  # the pathology report only
    [result] = evaluate_resources(resources, as_of=AS_OF)
    rare = result.finding("rare-cancer")
    assert rare is not None and rare.evidence[0].reference == "DiagnosticReport/path"
    cut = sorted(i.resource for i in result.data_issues if "was not assessed" in i.reason)
    assert cut == ["DiagnosticReport/ct", "DocumentReference/newer", "DocumentReference/older"]

"""One TriggerSpec per trigger, and every consumer derives from it: a trigger missing anywhere fails here."""

from __future__ import annotations

from pathlib import Path

from smartapp.cds.cards import GROUP_TITLES, GROUPS
from smartapp.findings import Fact, Finding
from smartapp.packet.draft import review_type
from smartapp.triggers import BY_ID, SPECS, TRIGGER_IDS
from smartapp.triggers.spec import ACTION_LABELS
from smartapp.web.labels import TRIGGER_LABELS

DESIGN_BRIEF_IDS = [
    "rare-cancer",
    "uncertain-pathology",
    "discordant-findings",
    "incomplete-biomarker",
    "major-treatment",
    "not-responding",
    "surveillance-check",
    "stopping-treatment",
    "guideline-deviation",
    "patient-request",
]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "clinical-rules.md"


def test_the_design_brief_trigger_ids_are_all_registered_once() -> None:
    assert sorted(TRIGGER_IDS) == sorted(DESIGN_BRIEF_IDS)
    assert len(set(TRIGGER_IDS)) == len(TRIGGER_IDS) == len(BY_ID)


def test_every_spec_is_complete() -> None:
    for spec in SPECS:
        assert spec.label and spec.short_label and spec.rationale and spec.sources and spec.rule_source, (
            spec.id
        )
        assert spec.action in ACTION_LABELS, spec.id
        assert spec.group in GROUP_TITLES, spec.id
        assert "{topic}" in spec.question or spec.id == "patient-request" or spec.ask is not None, spec.id
        assert spec.rule_data, spec.id


def test_every_consumer_has_every_trigger() -> None:
    carded = {t for g in GROUPS for t in g.triggers}
    docs = DOCS.read_text()
    for spec in SPECS:
        assert TRIGGER_LABELS[spec.id] == spec.label
        assert spec.id in carded, f"{spec.id} has no CDS card group"
        finding = Finding(
            trigger=spec.id,
            summary="s.",
            rationale="r",
            action=spec.action,
            facts=[Fact(kind="statement", name="a fact")],
        )
        assert spec.question_for(finding), f"{spec.id} has no packet question"
        assert review_type([finding]) in ("pathology", "clinical", "both")
        assert f"`{spec.id}`" in docs, f"docs/clinical-rules.md has no row for {spec.id}"


def test_a_finding_carries_the_spec_rationale_and_action() -> None:
    spec = BY_ID["incomplete-biomarker"]
    finding = spec.finding("HER2 IHC 2+ (equivocal) has no ISH result.", [])
    assert (finding.rationale, finding.action, finding.urgency) == (spec.rationale, "local-action", "routine")


def test_a_sentence_that_records_a_review_becomes_a_review_not_evidence() -> None:
    from smartapp.findings import Evidence

    spec = BY_ID["rare-cancer"]
    review = Evidence(
        reference="DiagnosticReport/r1",
        path="p",
        text="Reviewed at the sarcoma pathology consensus conference.",
    )
    reason = Evidence(reference="Condition/c1", path="p", text="Osteosarcoma of distal left femur")
    finding = spec.finding("Osteosarcoma is a rare cancer.", [reason, review])
    assert [e.reference for e in finding.evidence] == ["Condition/c1"]
    assert [(r.status, r.reference) for r in finding.reviews] == [("done", "DiagnosticReport/r1")]

"""The typed finding: evidence is deduplicated once, where it is made, and says where it stands in words."""

from __future__ import annotations

from datetime import date

from smartapp.findings import Evidence, Finding


def test_evidence_is_deduplicated_in_order_when_the_finding_is_made() -> None:
    first = Evidence(
        reference="DiagnosticReport/r1",
        path="p",
        text="Lymphoma cannot be excluded.",
        title="Surgical pathology",
        section="FINAL DIAGNOSIS",
        when=date(2026, 1, 14),
    )
    repeat = first.model_copy(update={"text": "lymphoma  cannot be excluded.", "section": "COMMENT"})
    other = Evidence(reference="Condition/c1", path="p", text="Atypical lymphoid infiltrate")
    finding = Finding(
        trigger="uncertain-pathology",
        summary="s.",
        rationale="r",
        action="expert-pathology-review",
        evidence=[first, repeat, other],
    )
    assert [e.reference for e in finding.evidence] == ["DiagnosticReport/r1", "Condition/c1"]
    place = finding.to_json()["evidence"][0]["where"]
    assert place == "Surgical pathology · FINAL DIAGNOSIS · 01/14/2026"
    assert finding.to_json()["evidence"][1]["where"] == "Problem list"

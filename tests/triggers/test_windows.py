"""Every time window and threshold in the rule data, just inside and just outside (AS_OF is 2026-03-01)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.fhirmaps.builders import SNOMED, cc, condition, medication, observation, report, service_request
from tests.triggers.engine_helpers import AS_OF, fired, run

CRC = condition("c1", "C18.7", "Malignant neoplasm of sigmoid colon", onset="2025-01-10")
FOLFOX = medication(
    "m1", "oxaliplatin", date="2025-02-01", resource_type="MedicationAdministration", status="completed"
)
BREAST = condition("c1", "C50.412", "Malignant neoplasm of upper-outer quadrant of left female breast")
PANCREAS = condition("c1", "C25.0", "Malignant neoplasm of head of pancreas")


def days_before(days: int) -> str:
    return (AS_OF - timedelta(days=days)).isoformat()


def ct(rid: str, when: str) -> dict[str, Any]:
    return report(
        rid,
        "IMPRESSION: Progressive disease with new liver metastases.\n",
        kind="imaging",
        date=when,
        title="CT abdomen",
    )


def test_progression_counts_for_180_days() -> None:
    assert "not-responding" in fired(CRC, FOLFOX, ct("r1", days_before(180)))
    assert "not-responding" not in fired(CRC, FOLFOX, ct("r1", days_before(181)))


def test_deauville_4_is_an_inadequate_response_and_3_is_not() -> None:
    lymphoma = condition("c1", "C81.90", "Hodgkin lymphoma, unspecified", onset="2025-12-01")
    abvd = medication(
        "m1", "doxorubicin", date="2026-01-02", resource_type="MedicationAdministration", status="completed"
    )

    def deauville(score: int) -> dict[str, Any]:
        out = observation("o1", "0", "Deauville five-point scale", value=score, date="2026-02-20")
        out["code"] = cc(SNOMED, "708895006", "Deauville five point scale (assessment scale)")
        return out

    assert "not-responding" in fired(lymphoma, abvd, deauville(4))
    assert "not-responding" not in fired(lymphoma, abvd, deauville(3))


def hospice(when: str) -> dict[str, Any]:
    return dict(
        service_request("s1", "Hospice referral", code=("385763009", "Hospice care"), when=when),
        authoredOn=when,
    )


def test_a_hospice_referral_counts_for_180_days() -> None:
    assert "stopping-treatment" in fired(PANCREAS, hospice(days_before(180)))
    assert "stopping-treatment" not in fired(PANCREAS, hospice(days_before(181)))


def test_a_hospice_referral_followed_by_treatment_is_not_current() -> None:
    later = medication(
        "m1",
        "gemcitabine",
        date=days_before(30),
        resource_type="MedicationAdministration",
        status="completed",
    )
    assert "stopping-treatment" not in fired(PANCREAS, hospice(days_before(60)), later)


def her2(oid: str, value: str, when: str, loinc: str = "85319-2") -> dict[str, Any]:
    return observation(
        oid, loinc, "HER2 by IHC" if loinc == "85319-2" else "ERBB2 by FISH", text_value=value, date=when
    )


def test_an_ish_result_from_up_to_7_days_before_the_ihc_resolves_it() -> None:
    ihc = her2("o1", "2+ (equivocal)", "2026-01-15")
    assert "incomplete-biomarker" not in fired(
        BREAST, ihc, her2("o2", "Not amplified", "2026-01-08", "85318-4")
    )
    assert "incomplete-biomarker" in fired(BREAST, ihc, her2("o2", "Not amplified", "2026-01-07", "85318-4"))


def test_a_pending_ish_is_not_a_gap_for_21_days() -> None:
    ihc = her2("o1", "2+ (equivocal)", "2026-01-15")
    ordered = service_request("s1", "HER2 FISH (reflex)", when="2026-01-16")
    assert "incomplete-biomarker" not in fired(BREAST, ihc, ordered, as_of=date(2026, 2, 5))  # 21 days
    assert "incomplete-biomarker" in fired(BREAST, ihc, ordered, as_of=date(2026, 2, 6))  # 22 days


def test_a_hedged_report_is_superseded_by_a_confident_final_report_after_182_days() -> None:
    hedged = report(
        "r1",
        "FINAL DIAGNOSIS: Atypical ductal proliferation; carcinoma cannot be excluded.\n",
        date="2025-01-10",
    )

    def final(when: str) -> dict[str, Any]:
        return report("r2", "FINAL DIAGNOSIS: Invasive ductal carcinoma, grade 2.\n", date=when)

    assert "uncertain-pathology" in fired(BREAST, hedged, final("2025-07-11"))  # 182 days later
    assert "uncertain-pathology" not in fired(BREAST, hedged, final("2025-07-12"))  # 183 days later


def test_a_major_operation_within_14_days_makes_findings_expedite() -> None:
    def whipple(when: str) -> dict[str, Any]:
        return service_request("s1", "Pancreaticoduodenectomy (Whipple)", when=when)

    soon = run(PANCREAS, whipple((AS_OF + timedelta(days=14)).isoformat()))
    later = run(PANCREAS, whipple((AS_OF + timedelta(days=15)).isoformat()))
    assert [f.urgency for f in soon.findings if f.trigger == "major-treatment"] == ["expedite"]
    assert [f.urgency for f in later.findings if f.trigger == "major-treatment"] == ["routine"]


def test_a_clinic_note_plans_a_major_treatment_for_90_days() -> None:
    from tests.fhirmaps.builders import note

    text = "Plan: proceed with Whipple procedure next month."
    assert "major-treatment" in fired(PANCREAS, note("n1", text, date=days_before(90)))
    assert "major-treatment" not in fired(PANCREAS, note("n1", text, date=days_before(91)))

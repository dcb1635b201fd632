"""Classes of charting found by the second blind batch (blind-x), kept by unit tests."""

from __future__ import annotations

from tests.fhirmaps.builders import condition, note, report, service_request
from tests.triggers.engine_helpers import fired

PTMC = condition(
    "c1", "C73", "Malignant neoplasm of thyroid gland", text="Papillary thyroid microcarcinoma, right lobe"
)
COLON = condition("c1", "C18.3", "Malignant neoplasm of hepatic flexure")
LUNG = condition(
    "c1", "C34.31", "Malignant neoplasm of lower lobe, right bronchus or lung", text="Lung adenocarcinoma"
)


def test_a_negated_aggressive_subtype_is_not_one() -> None:
    criteria = (
        "Active surveillance. "
        "Ultrasound: 0.7 cm nodule, no extrathyroidal extension, no suspicious lymph nodes. "
        "Pathology: papillary thyroid carcinoma, classic type. "
        "No tall-cell, hobnail or columnar-cell features seen."
    )
    assert "surveillance-check" not in fired(PTMC, note("n1", criteria, date="2026-02-10"))
    aggressive = criteria.replace(
        "No tall-cell, hobnail or columnar-cell features seen.", "Tall-cell features present."
    )
    assert "surveillance-check" in fired(PTMC, note("n1", aggressive, date="2026-02-10"))


def test_surgery_named_as_the_alternative_does_not_end_surveillance() -> None:
    text = (
        "Active surveillance of low-risk papillary thyroid carcinoma in lieu of immediate lobectomy. "
        "Tumor 1.3 cm."
    )
    assert "surveillance-check" in fired(
        PTMC,
        note("n1", text, date="2026-02-10"),
        service_request("s1", "Active surveillance in lieu of immediate lobectomy"),
    )


def test_no_further_chemotherapy_indicated_after_a_completed_course_is_not_stopping() -> None:
    done = (
        "Completed all planned cycles of adjuvant CAPOX. No further chemotherapy indicated. "
        "Surveillance CEA and CT."
    )
    assert "stopping-treatment" not in fired(COLON, note("n1", done, date="2026-02-20"))
    stop = "Patient declines further chemotherapy; no further chemotherapy. Hospice discussed."
    assert "stopping-treatment" in fired(COLON, note("n1", stop, date="2026-02-20"))


def test_telling_the_patient_he_may_seek_a_second_opinion_is_not_his_request() -> None:
    offer = "We discussed that he may seek a second opinion at any time; he prefers to continue here."
    assert "patient-request" not in fired(COLON, note("n1", offer, date="2026-02-20"))
    ask = "The patient would like a second opinion at an NCI-designated center before starting chemotherapy."
    assert "patient-request" in fired(COLON, note("n1", ask, date="2026-02-20"))


def test_a_result_line_in_a_report_about_one_test_counts_for_that_test() -> None:
    pdl1 = report(
        "r1",
        "PD-L1 IMMUNOHISTOCHEMISTRY (22C3)\nRESULT: NOT EVALUABLE.\nFewer than 100 viable tumor cells.\n",
        title="PD-L1 22C3 IHC",
        date="2026-01-27",
    )
    assert "incomplete-biomarker" in fired(LUNG, pdl1)
    scored = report(
        "r1",
        "PD-L1 IMMUNOHISTOCHEMISTRY (22C3)\nRESULT: TPS 60%.\n",
        title="PD-L1 22C3 IHC",
        date="2026-01-27",
    )
    assert "incomplete-biomarker" not in fired(LUNG, scored)


def test_education_for_an_operation_is_not_the_operation() -> None:
    teaching = service_request("s1", "Stoma care education (end colostomy)", when="2026-03-10")
    assert "major-treatment" not in fired(COLON, teaching)
    assert "major-treatment" in fired(
        COLON, service_request("s2", "Abdominoperineal resection with end colostomy", when="2026-03-10")
    )


def test_the_test_named_nearest_the_equivocal_word_is_the_one_reported() -> None:
    from tests.triggers.engine_helpers import run

    line = note(
        "n1",
        "KRAS G12D, no actionable driver; PD-L1 22C3 not evaluable on the cell block.",
        date="2026-02-20",
    )
    finding = next(f for f in run(LUNG, line).findings if f.trigger == "incomplete-biomarker")
    assert finding.summary.startswith("PD-L1 result not evaluable")


def test_microcarcinoma_growth_of_3_mm_on_surveillance_is_flagged_and_2_mm_is_not() -> None:
    from tests.triggers.engine_helpers import run

    def ultrasound(rid: str, size_mm: int, when: str) -> dict[str, object]:
        return report(
            rid,
            f"IMPRESSION: Right thyroid nodule measuring {size_mm} mm. No suspicious lymph nodes. "
            "No extrathyroidal extension.\n",
            kind="imaging",
            date=when,
            title="Thyroid ultrasound",
        )

    plan = note(
        "n1", "Papillary thyroid microcarcinoma, classic type, on active surveillance.", date="2025-06-01"
    )
    grew = run(PTMC, plan, ultrasound("u1", 6, "2025-06-01"), ultrasound("u2", 9, "2026-02-01"))
    finding = next(f for f in grew.findings if f.trigger == "surveillance-check")
    assert "tumor grew from 0.6 to 0.9 cm between 06/01/2025 and 02/01/2026" in finding.summary
    stable = run(PTMC, plan, ultrasound("u1", 6, "2025-06-01"), ultrasound("u2", 8, "2026-02-01"))
    assert "surveillance-check" not in stable.triggers

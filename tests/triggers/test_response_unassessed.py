"""not-responding says when it could not decide: metastatic disease on a current line of treatment for
four months or more, with nothing in the record since the line began that tells response."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.fhirmaps.builders import LOINC, cc, condition, medication, observation, report
from tests.triggers.engine_helpers import run

AS_OF = date(2026, 3, 1)
LUNG = condition("c1", "C34.11", "Adenocarcinoma of right upper lobe of lung", onset="2025-09-01")
BONE = condition("c2", "C79.51", "Secondary malignant neoplasm of bone", onset="2025-09-01")


def response_notes(*resources: dict[str, Any]) -> list[str]:
    return [n for n in run(*resources, as_of=AS_OF).notes if n.startswith("Response")]


def test_four_months_of_treatment_for_metastatic_disease_without_any_assessment_is_said() -> None:
    notes = response_notes(LUNG, BONE, medication("m1", "osimertinib 80 mg oral tablet", date="2025-10-01"))
    assert notes == [
        "Response to osimertinib could not be assessed: no imaging report, tumor marker or disease "
        "status is in the record since the treatment began on 10/01/2025."
    ]


def test_the_note_waits_120_days_from_the_start_of_the_line() -> None:
    day_120 = medication("m1", "osimertinib 80 mg oral tablet", date="2025-11-01")
    day_119 = medication("m1", "osimertinib 80 mg oral tablet", date="2025-11-02")
    assert len(response_notes(LUNG, BONE, day_120)) == 1
    assert response_notes(LUNG, BONE, day_119) == []


def test_an_imaging_report_after_the_start_is_an_assessment_and_one_before_it_is_not() -> None:
    drug = medication("m1", "osimertinib 80 mg oral tablet", date="2025-10-01")
    after = report("r1", "IMPRESSION: Partial response.", kind="imaging", date="2026-01-10", title="CT chest")
    before = report("r1", "IMPRESSION: Bone lesions.", kind="imaging", date="2025-09-20", title="CT chest")
    assert response_notes(LUNG, BONE, drug, after) == []
    assert len(response_notes(LUNG, BONE, drug, before)) == 1


def test_a_tumor_marker_after_the_start_is_an_assessment() -> None:
    drug = medication("m1", "osimertinib 80 mg oral tablet", date="2025-10-01")
    cea = observation("o1", "2039-6", "CEA", value=4.1, unit="ng/mL", date="2026-01-05")
    assert response_notes(LUNG, BONE, drug, cea) == []


def test_regional_lymph_nodes_are_not_metastatic_disease_to_restage() -> None:
    breast = condition("c1", "C50.412", "Invasive ductal carcinoma of left breast", onset="2025-06-01")
    nodes = condition(
        "c2", "C77.3", "Metastatic carcinoma in left axillary lymph nodes (2/15)", onset="2025-06-01"
    )
    letrozole = medication("m1", "letrozole 2.5 mg oral tablet", date="2025-08-01")
    assert response_notes(breast, nodes, letrozole) == []
    stage_iv = observation(
        "o1", "21908-9", "Stage group", coded=cc(LOINC, "LA3", "Stage IV"), date="2025-06-01"
    )
    assert response_notes(breast, nodes, letrozole, stage_iv) != []  # M1 stated: nodes are distant


def test_a_line_completed_long_ago_is_not_current() -> None:
    done = medication("m1", "oxaliplatin", status="completed", date="2022-01-03")
    colon = condition("c1", "C18.7", "Adenocarcinoma of sigmoid colon", onset="2021-06-01")
    liver = condition("c2", "C78.7", "Liver metastases", onset="2021-06-01")
    assert response_notes(colon, liver, done) == []


def test_progression_is_a_finding_not_a_note() -> None:
    drug = medication("m1", "osimertinib 80 mg oral tablet", date="2025-10-01")
    ct = report(
        "r1",
        "IMPRESSION: Progressive disease with new liver metastases.",
        kind="imaging",
        date="2026-02-10",
        title="CT chest abdomen pelvis",
    )
    result = run(LUNG, BONE, drug, ct, as_of=AS_OF)
    assert "not-responding" in result.triggers
    assert not any(n.startswith("Response") for n in result.notes)

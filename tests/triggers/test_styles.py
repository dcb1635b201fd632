"""Mixed-style charts (Epic problem-list names, Oracle SNOMED + ICD-10 pairs, notes) for several
triggers at once."""

from tests.fhirmaps.builders import ICD10, SNOMED, cc, condition, medication, note, observation, report
from tests.triggers.engine_helpers import fired, run


def test_oracle_snomed_and_icd10_pair_for_gist() -> None:
    gist = condition("c1", "C49.A2", "Gastrointestinal stromal tumor of stomach")
    gist["code"]["coding"].insert(
        0, {"system": SNOMED, "code": "999999999", "display": "Gastrointestinal stromal tumor of stomach"}
    )
    assert "rare-cancer" in fired(gist)


def test_epic_prostate_active_surveillance_with_high_psa_density() -> None:
    prostate = condition("c1", "C61", "Malignant neoplasm of prostate", text="Prostate cancer (HCC)")
    plan = {
        "resourceType": "CarePlan",
        "id": "cp1",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/p1"},
        "title": "Active Surveillance - Prostate",
        "description": "PSA every 6 months, MRI yearly, confirmatory biopsy.",
    }
    biopsy = report(
        "r1",
        "FINAL DIAGNOSIS:\n"
        "Prostate, needle biopsies: Adenocarcinoma, Gleason score 3+3=6 (Grade Group 1), "
        "2 of 12 cores positive, maximum 30% of core length. Clinical stage cT1c.\n",
    )
    mri = report(
        "r2", "IMPRESSION: PI-RADS 3 lesion. Prostate volume 38 cc.\n", kind="imaging", title="MRI prostate"
    )
    psa = observation("o1", "2857-1", "PSA", value=6.2, unit="ng/mL")
    result = run(prostate, plan, biopsy, mri, psa)
    finding = next(f for f in result.findings if f.trigger == "surveillance-check")
    assert "PSA density 0.16" in finding.summary
    assert "rare-cancer" not in result.triggers


def test_patient_interest_fires_but_clinician_recommendation_does_not() -> None:
    crc = condition("c1", "C18.7", "Malignant neoplasm of sigmoid colon")
    assert "patient-request" in fired(
        crc, note("n1", "Patient is interested in obtaining a second opinion at MD Anderson.")
    )
    assert "patient-request" not in fired(
        crc, note("n2", "We recommended a second opinion at a sarcoma center.")
    )


def test_decision_to_stop_chemotherapy_fires_but_hold_with_resumption_does_not() -> None:
    pancreas = condition("c1", "C25.0", "Malignant neoplasm of head of pancreas")
    assert "stopping-treatment" in fired(
        pancreas, note("n1", "She has decided to stop chemotherapy and focus on quality of life.")
    )
    assert "stopping-treatment" not in fired(
        pancreas, note("n2", "Chemotherapy on hold for neutropenia; will resume with cycle 5 next week.")
    )


def test_progression_wording_variants() -> None:
    crc = condition("c1", "C18.7", "Malignant neoplasm of sigmoid colon", onset="2025-06-01")
    folfox = medication("m1", "FOLFOX", date="2025-07-01")
    yes = report(
        "r1",
        "IMPRESSION: Findings consistent with disease progression.\n",
        kind="imaging",
        date="2026-01-10",
        title="CT",
    )
    mixed = report(
        "r2",
        "IMPRESSION: Decrease in hepatic lesions. New 5 mm lung nodule, indeterminate.\n",
        kind="imaging",
        date="2026-01-10",
        title="CT",
    )
    assert "not-responding" in fired(crc, folfox, yes)
    assert "not-responding" not in fired(crc, folfox, mixed)


def test_relapsed_all_is_time_critical_rare_and_not_responding() -> None:
    relapse = condition("c1", "C91.02", "Acute lymphoblastic leukemia, in relapse", clinical="relapse")
    result = run(relapse)
    assert result.time_critical is not None
    assert {"rare-cancer", "not-responding"} <= set(result.triggers)
    assert ICD10 and cc

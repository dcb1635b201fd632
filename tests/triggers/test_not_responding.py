from __future__ import annotations

import pytest

from smartapp.triggers.not_responding import pseudoprogression_raised, tumor_clause
from tests.fhirmaps.builders import SNOMED, cc, condition, medication, observation, report
from tests.triggers.engine_helpers import fired, run

CRC = condition("c1", "C18.7", "Malignant neoplasm of sigmoid colon", onset="2025-06-01")
FOLFOX = medication(
    "m1",
    "FOLFOX (oxaliplatin, leucovorin, fluorouracil)",
    date="2025-07-01",
    resource_type="MedicationAdministration",
    status="completed",
)


def test_disease_status_worsened_after_treatment_start_fires_and_expedites() -> None:
    status = observation(
        "o1",
        "97509-4",
        "Cancer disease status",
        coded=cc(SNOMED, "271299001", "Patient's condition worsened"),
        date="2026-01-20",
    )
    finding = next(f for f in run(CRC, FOLFOX, status).findings if f.trigger == "not-responding")
    assert finding.urgency == "expedite"


def test_imaging_progression_after_start_fires() -> None:
    ct = report(
        "r1",
        "FINDINGS: Multiple new hepatic lesions.\n"
        "IMPRESSION: New hepatic metastases, consistent with progressive disease.\n",
        kind="imaging",
        date="2026-01-10",
        title="CT abdomen",
    )
    assert "not-responding" in fired(CRC, FOLFOX, ct)


def test_stable_or_benign_new_lesion_or_pre_treatment_scan_does_not_fire() -> None:
    stable = report(
        "r1",
        "IMPRESSION: Stable disease. No new lesions.\n",
        kind="imaging",
        date="2026-01-10",
        title="CT abdomen",
    )
    benign = report(
        "r2",
        "IMPRESSION: New 6 mm hepatic lesion, likely benign hemangioma. Otherwise stable.\n",
        kind="imaging",
        date="2026-01-10",
        title="CT",
    )
    before = report(
        "r3", "IMPRESSION: New hepatic metastases.\n", kind="imaging", date="2025-06-15", title="CT abdomen"
    )
    assert "not-responding" not in fired(CRC, FOLFOX, stable)
    assert "not-responding" not in fired(CRC, FOLFOX, benign)
    assert "not-responding" not in fired(CRC, FOLFOX, before)


def test_pseudoprogression_and_flare_do_not_fire() -> None:
    pseudo = report(
        "r1",
        "IMPRESSION: Interval increase in size of lung nodules, "
        "may represent pseudoprogression on immunotherapy.\n",
        kind="imaging",
        date="2026-01-10",
        title="CT chest",
    )
    assert "not-responding" not in fired(CRC, FOLFOX, pseudo)


def test_psa_rise_confirmed_on_systemic_therapy_fires_single_rise_does_not() -> None:
    prostate = condition("c1", "C61", "Malignant neoplasm of prostate", onset="2024-01-01")
    adt = medication(
        "m1",
        "leuprolide 22.5 mg",
        date="2025-01-10",
        resource_type="MedicationAdministration",
        status="completed",
    )
    psa = [
        observation(f"psa{i}", "2857-1", "PSA", value=v, unit="ng/mL", date=d)
        for i, (v, d) in enumerate(
            [(12.0, "2025-01-05"), (1.0, "2025-04-01"), (3.5, "2025-08-01"), (5.2, "2025-10-01")]
        )
    ]
    assert "not-responding" in fired(prostate, adt, *psa)
    assert "not-responding" not in fired(prostate, adt, *psa[:3])


def test_markers_before_treatment_do_not_count() -> None:
    cea = [
        observation(f"cea{i}", "2039-6", "CEA", value=v, unit="ng/mL", date=d)
        for i, (v, d) in enumerate([(5.0, "2025-05-01"), (8.0, "2025-06-01"), (12.0, "2025-06-20")])
    ]
    assert "not-responding" not in fired(CRC, FOLFOX, *cea)


def test_pregnancy_hcg_does_not_fire() -> None:
    pregnancy = condition(
        "c9", "Z34.01", "Encounter for supervision of normal first pregnancy, first trimester"
    )
    hcg = [
        observation(f"h{i}", "21198-7", "hCG beta", value=v, unit="mIU/mL", date=d)
        for i, (v, d) in enumerate([(50.0, "2025-08-01"), (400.0, "2025-08-10"), (3000.0, "2025-08-20")])
    ]
    assert "not-responding" not in fired(CRC, FOLFOX, pregnancy, *hcg)


def test_stopped_for_no_response_fires() -> None:
    stopped = medication(
        "m2",
        "pembrolizumab 200 mg",
        status="stopped",
        date="2025-08-01",
        reason=("266721009", "No response to treatment"),
    )
    assert "not-responding" in fired(CRC, stopped)


def test_enlarging_effusion_is_not_tumour_progression() -> None:
    ct = report(
        "r1",
        "IMPRESSION: Enlarging right pleural effusion. Otherwise no change.\n",
        kind="imaging",
        date="2026-01-10",
        title="CT chest",
    )
    assert "not-responding" not in fired(CRC, FOLFOX, ct)


def test_bone_scan_flare_after_starting_hormone_therapy_does_not_fire() -> None:
    prostate = condition("c1", "C61", "Malignant neoplasm of prostate", onset="2025-06-01")
    adt = medication(
        "m1",
        "leuprolide 22.5 mg",
        date="2025-12-01",
        resource_type="MedicationAdministration",
        status="completed",
    )
    scan = report(
        "r1",
        "IMPRESSION: Increased intensity of osseous lesions and two new lesions. "
        "In the setting of recently started androgen deprivation this likely represents a flare response.\n",
        kind="imaging",
        date="2026-01-15",
        title="Bone scan",
    )
    assert "not-responding" not in fired(prostate, adt, scan)


def _size(oid: str, mm: float, day: str, site: str = "Liver structure", unit: str = "mm") -> dict:
    size = observation(oid, "21889-1", "Tumor size", value=mm, unit=unit, date=day)
    size["bodySite"] = {"text": site}
    return size


def test_size_growth_boundaries_twenty_percent_and_five_mm_over_the_nadir() -> None:
    # FOLFOX from 2025-07-01; nadir 30 mm on treatment.
    nadir = _size("s1", 30, "2025-10-01")
    assert "not-responding" in fired(CRC, FOLFOX, nadir, _size("s2", 36, "2026-01-20"))  # +20%, +6 mm
    assert "not-responding" not in fired(CRC, FOLFOX, nadir, _size("s2", 35.9, "2026-01-20"))  # +19.7%
    small = _size("s1", 10, "2025-10-01")
    assert "not-responding" in fired(CRC, FOLFOX, small, _size("s2", 15, "2026-01-20"))  # +50%, exactly 5 mm
    assert "not-responding" not in fired(CRC, FOLFOX, small, _size("s2", 14.9, "2026-01-20"))  # 4.9 mm


def test_size_baseline_counts_within_eight_weeks_before_the_first_dose() -> None:
    latest = _size("s2", 3.6, "2026-01-20", unit="cm")
    assert "not-responding" in fired(CRC, FOLFOX, _size("s1", 30, "2025-05-06"), latest)  # 56 days before
    assert "not-responding" not in fired(CRC, FOLFOX, _size("s1", 30, "2025-05-05"), latest)  # 57 days before


def test_sizes_of_different_lesions_and_unknown_units_are_not_compared() -> None:
    assert "not-responding" not in fired(
        CRC,
        FOLFOX,
        _size("s1", 20, "2025-10-01", site="Liver structure"),
        _size("s2", 40, "2026-01-20", site="Right lung structure"),
    )
    assert "not-responding" not in fired(
        CRC, FOLFOX, _size("s1", 20, "2025-10-01"), _size("s2", 40, "2026-01-20", unit="{lesion}")
    )


def _ct(text: str) -> dict:
    return report("ct1", f"IMPRESSION: {text}\n", kind="imaging", date="2026-01-20", title="CT abdomen")


def test_stated_size_comparisons_at_the_recist_thresholds() -> None:
    assert "not-responding" in fired(
        CRC, FOLFOX, _ct("Hepatic metastasis now measures 3.6 x 2.0 cm, previously 3.0 x 2.2 cm.")
    )
    assert "not-responding" not in fired(
        CRC, FOLFOX, _ct("Hepatic metastasis now measures 3.5 x 2.0 cm, previously 3.0 x 2.2 cm.")
    )
    assert "not-responding" in fired(CRC, FOLFOX, _ct("The liver lesion grew from 2.5 to 3.0 cm."))


def test_stated_numbers_that_are_not_an_earlier_size_do_not_fire() -> None:
    assert "not-responding" not in fired(CRC, FOLFOX, _ct("Liver mass 3.1 cm, was 1 week ago biopsied."))
    assert "not-responding" not in fired(CRC, FOLFOX, _ct("Liver mass 3.1 cm, unchanged from 2019."))
    assert "not-responding" not in fired(
        CRC, FOLFOX, _ct("Pleural effusion increased from 1.0 cm to 3.0 cm.")
    )


@pytest.mark.parametrize(
    ("text", "raised"),
    [
        ("Findings may represent flare phenomenon.", True),
        ("Increased uptake, likely flare.", True),
        ("Pseudoprogression cannot be excluded.", True),
        ("Flare is not excluded.", True),
        ("More than 15 months after starting androgen deprivation, so flare is not a consideration.", False),
        ("Progression rather than pseudoprogression.", False),
        ("No flare.", False),
        ("New liver lesions. No bone flare; the uptake is new disease.", False),
    ],
)
def test_pseudoprogression_counts_only_when_the_report_leaves_it_open(text: str, raised: bool) -> None:
    assert pseudoprogression_raised(text) is raised


@pytest.mark.parametrize(
    ("sentence", "phrase", "clause"),
    [
        (
            "Progression of osseous metastatic disease with four new lesions since 08/03/2025.",
            "Progression",
            "progression of osseous metastatic disease",
        ),
        ("The enlarging liver lesion now measures 3 cm.", "enlarging", "enlarging liver lesion"),
        (
            "New enhancing bladder wall masses at the dome.",
            "New enhancing",
            "new enhancing bladder wall masses",
        ),
        ("Enlarging pleural effusion.", "Enlarging", None),
        ("Progression; the nodes are stable.", "Progression", None),
    ],
)
def test_a_weak_word_is_quoted_with_the_tumor_it_is_about(
    sentence: str, phrase: str, clause: str | None
) -> None:
    assert tumor_clause(sentence, phrase) == clause

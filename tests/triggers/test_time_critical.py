from datetime import date

from tests.fhirmaps.builders import SNOMED, condition, medication, report
from tests.triggers.engine_helpers import AS_OF, run

RECENT = "2026-02-25"  # a few days before AS_OF: the urgent condition is current


def test_aml_not_in_remission_is_time_critical_and_rare() -> None:
    result = run(condition("c1", "C92.00", "Acute myeloblastic leukemia, not having achieved remission"))
    assert result.time_critical is not None
    assert result.time_critical.advice.startswith("Start induction without waiting for an outside opinion")
    assert result.time_critical.conditions == ["acute myeloid leukemia not in remission"]
    assert "rare-cancer" in result.triggers
    assert all(f.urgency == "expedite" for f in result.findings)


def test_aml_in_remission_is_not_time_critical() -> None:
    assert run(condition("c1", "C92.01", "Acute myeloblastic leukemia, in remission")).time_critical is None


def test_dlbcl_by_snomed_is_time_critical_not_rare() -> None:
    result = run(condition("c1", "109969005", "Diffuse large B-cell lymphoma", system=SNOMED))
    assert result.time_critical is not None
    assert "rare-cancer" not in result.triggers


def test_history_of_dlbcl_in_remission_is_not_time_critical() -> None:
    assert (
        run(
            condition(
                "c1", "C83.30", "Diffuse large B-cell lymphoma", clinical="remission", onset="2015-01-01"
            )
        ).time_critical
        is None
    )
    assert run(condition("c2", "Z85.72", "Personal history of other lymphomas")).time_critical is None


def test_cord_compression_with_cancer_and_not_when_negated() -> None:
    prostate = condition("c1", "C61", "Malignant neoplasm of prostate")
    mri = report(
        "r1",
        "IMPRESSION: Epidural disease at T10 with spinal cord compression.\n",
        kind="imaging",
        title="MRI spine",
        date=RECENT,
    )
    assert run(prostate, mri).time_critical is not None
    negative = report(
        "r2",
        "INDICATION: Rule out cord compression.\nIMPRESSION: Osseous metastases. No cord compression.\n",
        kind="imaging",
        title="MRI spine",
        date=RECENT,
    )
    assert run(prostate, negative).time_critical is None


def test_svc_syndrome_code_with_cancer() -> None:
    lung = condition(
        "c1",
        "C34.11",
        "Malignant neoplasm of upper lobe, right bronchus or lung",
        text="Small cell lung carcinoma",
    )
    svc = condition("c2", "I87.1", "Compression of vein", text="Superior vena cava syndrome", onset=RECENT)
    assert run(lung, svc).time_critical is not None


def test_epidural_disease_needs_compression() -> None:
    prostate = condition("c1", "C61", "Malignant neoplasm of prostate")
    no_compression = report(
        "r1",
        "IMPRESSION: Small focus of epidural disease at T10 without cord compression.\n",
        kind="imaging",
        title="MRI spine",
        date=RECENT,
    )
    assert run(prostate, no_compression).time_critical is None
    compressed = report(
        "r2",
        "IMPRESSION: Epidural tumor at T10 with effacement of the thecal sac and compression of the cord.\n",
        kind="imaging",
        title="MRI",
        date=RECENT,
    )
    assert run(prostate, compressed).time_critical is not None


def test_cord_compression_is_current_for_30_days_from_the_report() -> None:
    prostate = condition("c1", "C61", "Malignant neoplasm of prostate")
    text = "IMPRESSION: Epidural disease at T10 with spinal cord compression.\n"
    inside = report("r1", text, kind="imaging", title="MRI spine", date="2026-01-30")  # 30 days before AS_OF
    outside = report("r1", text, kind="imaging", title="MRI spine", date="2026-01-29")  # 31 days
    assert run(prostate, inside).time_critical is not None
    assert run(prostate, outside).time_critical is None


def test_acute_leukemia_is_current_for_90_days_from_diagnosis() -> None:
    inside = condition(
        "c1", "C92.00", "Acute myeloblastic leukemia, not having achieved remission", onset="2025-12-01"
    )  # 90 days
    outside = condition(
        "c1", "C92.00", "Acute myeloblastic leukemia, not having achieved remission", onset="2025-11-30"
    )  # 91 days
    assert run(inside).time_critical is not None
    assert run(outside).time_critical is None


def test_acute_leukemia_stops_being_time_critical_14_days_into_treatment() -> None:
    aml = condition(
        "c1", "C92.00", "Acute myeloblastic leukemia, not having achieved remission", onset="2026-02-01"
    )
    started_14 = medication("m1", "cytarabine", date=str(date.fromordinal(AS_OF.toordinal() - 14)))
    started_15 = medication("m1", "cytarabine", date=str(date.fromordinal(AS_OF.toordinal() - 15)))
    assert run(aml, started_14).time_critical is not None
    assert run(aml, started_15).time_critical is None
    assert "rare-cancer" in run(aml, started_15).triggers  # still a rare cancer, no longer an emergency


def test_improved_disease_status_ends_the_emergency() -> None:
    aml = condition(
        "c1", "C92.00", "Acute myeloblastic leukemia, not having achieved remission", onset="2026-02-01"
    )
    improved = {
        "resourceType": "Observation",
        "id": "ds1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "97509-4"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-02-20",
        "valueCodeableConcept": {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "268910001",
                    "display": "Patient's condition improved",
                }
            ]
        },
    }
    assert run(aml, improved).time_critical is None

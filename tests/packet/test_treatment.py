"""The packet's treatment lists hold cancer treatment only: surgery, radiotherapy, systemic therapy,
an active-surveillance plan; not ports, diagnostic procedures, visits or the referral itself."""

from __future__ import annotations

from datetime import date

from fhirmaps.read import read_records
from smartapp.packet.treatment import proposed_treatment, treatment_so_far
from tests.fhirmaps.builders import condition, medication, patient, procedure, service_request


def _record(*resources: dict):  # type: ignore[no-untyped-def]
    [record] = read_records(
        [patient(), condition("c1", "C18.7", "Malignant neoplasm of sigmoid colon"), *resources],
        as_of=date(2026, 3, 1),
    )
    return record


def test_done_treatment_leaves_out_ports_biopsies_and_visits() -> None:
    record = _record(
        procedure("pr1", "Right hemicolectomy", date="2025-07-01"),
        procedure("pr2", "Port-a-cath placement", date="2025-07-20"),
        procedure("pr3", "Surveillance colonoscopy", date="2026-01-10"),
        procedure("pr4", "CT-guided liver biopsy", date="2025-06-10"),
        medication("m1", "oxaliplatin 85 mg/m2", status="completed", date="2025-08-01"),
    )
    assert [line.text for line in treatment_so_far(record)] == ["Right hemicolectomy", "oxaliplatin 85 mg/m2"]


def test_proposed_treatment_leaves_out_the_referral_and_consults() -> None:
    record = _record(
        service_request("s1", "Low anterior resection"),
        service_request("s2", "Referral for second opinion at a sarcoma center"),
        service_request("s3", "Radiation oncology consult"),
        service_request("s4", "Stereotactic body radiation therapy (SBRT) to liver"),
    )
    assert [line.text for line in proposed_treatment(record)] == [
        "Low anterior resection",
        "Stereotactic body radiation therapy (SBRT) to liver",
    ]


def test_definitive_surgery_beside_a_biopsy_counts_and_an_excisional_biopsy_does_not() -> None:
    record = _record(
        service_request("s1", "Left breast lumpectomy with sentinel lymph node biopsy"),
        service_request("s2", "Excisional biopsy of left axillary node"),
        service_request("s3", "Adjuvant endocrine therapy (aromatase inhibitor)"),
        service_request("s4", "GI multidisciplinary tumor board presentation"),
    )
    assert [line.text for line in proposed_treatment(record)] == [
        "Left breast lumpectomy with sentinel lymph node biopsy",
        "Adjuvant endocrine therapy (aromatase inhibitor)",
    ]

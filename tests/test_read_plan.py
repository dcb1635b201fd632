"""What SecondLook asks an EHR for, pinned as literals: the scope strings of a launch, the searches
of the record loader and the CDS prefetch templates. All three come from one read plan; these
values are written out by hand so that a change to any of them is a deliberate edit here."""

from __future__ import annotations

from datetime import date

from fhirmaps.read import MAPPED_TYPES
from launch.discovery import SmartConfiguration
from launch.registry import Registration
from launch.scopes import requested_scopes
from smartapp.cds.discovery import PREFETCH, REQUIRED_KEYS, service_description
from smartapp.chart_reader import build_searches
from smartapp.read_plan import READ_PLAN, SCOPE_READS

TODAY = date(2026, 11, 25)
PAGED = {"patient": "p1", "_count": "100"}

READS_V2 = [
    "Patient.r",
    "Condition.rs",
    "DiagnosticReport.rs",
    "DocumentReference.rs",
    "Binary.r",
    "Observation.rs",
    "Procedure.rs",
    "MedicationRequest.rs",
    "MedicationAdministration.rs",
    "ServiceRequest.rs",
    "CarePlan.rs",
    "Coverage.rs",
    "Specimen.rs",
    "AllergyIntolerance.rs",
    "MedicationStatement.rs",
    "Practitioner.r",
    "PractitionerRole.rs",
    "Organization.r",
]
READS_V1 = [f"{scope.split('.')[0]}.read" for scope in READS_V2]


def scopes(*, standalone: bool = False, user_level: bool = False, **fields: object) -> list[str]:
    registration = Registration.model_validate({"iss": "https://e.example.org", "client_id": "c", **fields})
    config = SmartConfiguration(fhir_base="https://e.example.org", token_endpoint="https://e.example.org/t")
    return requested_scopes(
        registration, config, standalone, reads=SCOPE_READS, user_level=user_level
    ).split()


def test_ehr_launch_scopes_v2() -> None:
    assert scopes() == [
        "launch",
        "openid",
        "fhirUser",
        "online_access",
        *(f"patient/{s}" for s in READS_V2),
    ]
    assert scopes(write_back=True)[-2:] == ["patient/ServiceRequest.c", "patient/DocumentReference.c"]
    assert scopes(standalone=True)[:2] == ["launch/patient", "openid"]


def test_ehr_launch_scopes_v1_with_write_back() -> None:
    assert scopes(scope_syntax="v1", write_back=True) == [
        "launch",
        "openid",
        "fhirUser",
        "online_access",
        *(f"patient/{s}" for s in READS_V1),
        "patient/ServiceRequest.write",
        "patient/DocumentReference.write",
    ]


def test_user_level_sign_in_scopes() -> None:
    identity = ["openid", "fhirUser", "online_access"]
    assert scopes(standalone=True, user_level=True) == [*identity, *(f"user/{s}" for s in READS_V2)]
    assert scopes(standalone=True, user_level=True, scope_syntax="v1") == [
        *identity,
        *(f"user/{s}" for s in READS_V1),
    ]


def _searches(today: date | None, categories: dict[str, list[str]] | None = None) -> list[tuple]:
    return [(s.resource_type, s.params, s.label) for s in build_searches("p1", today, categories)]


# What the loader searches, in plan order, with or without date windows: a type with windows is
# searched whole first, its windows (launch.fetch.SearchSpec.parts) read only when the first page
# shows more pages; CDS Hooks reads without windows.
WHOLE_SEARCHES = [
    ("Patient", {"_id": "p1"}, "patient demographics"),
    ("Condition", PAGED, "conditions"),
    ("DiagnosticReport", PAGED, "diagnostic reports"),
    ("DocumentReference", PAGED, "clinical documents"),
    ("Observation", PAGED, "observations"),
    ("Procedure", PAGED, "procedures"),
    ("MedicationRequest", PAGED, "medication orders"),
    ("MedicationAdministration", PAGED, "medication administrations"),
    ("ServiceRequest", PAGED, "orders and referrals"),
    ("CarePlan", PAGED, "care plans"),
    ("Coverage", {"patient": "p1"}, "insurance coverage"),
    ("Specimen", PAGED, "specimens"),
    ("AllergyIntolerance", PAGED, "allergies"),
    ("MedicationStatement", PAGED, "medication statements"),
]


def test_loader_searches_with_and_without_date_windows() -> None:
    assert _searches(TODAY) == WHOLE_SEARCHES
    assert _searches(None) == WHOLE_SEARCHES
    assert all(not spec.parts for spec in build_searches("p1", None))


def test_date_windows_are_the_parts_of_a_search() -> None:
    parts = {
        s.resource_type: [(p.resource_type, p.params, p.label) for p in s.parts]
        for s in build_searches("p1", TODAY)
    }
    assert parts["DiagnosticReport"] == [
        ("DiagnosticReport", PAGED | {"date": "ge2026-05-29"}, "diagnostic reports (last 180 days)"),
        ("DiagnosticReport", PAGED | {"date": ["ge2025-11-25", "lt2026-05-29"]}, "diagnostic reports"),
        ("DiagnosticReport", PAGED | {"date": ["ge2024-11-25", "lt2025-11-25"]}, "diagnostic reports"),
        ("DiagnosticReport", PAGED | {"date": "lt2024-11-25"}, "diagnostic reports (older)"),
        ("DiagnosticReport", PAGED | {"date:missing": "true"}, "diagnostic reports without a date"),
    ]
    assert parts["Observation"] == [
        ("Observation", PAGED | {"date": "ge2026-10-11"}, "observations (last 45 days)"),
        ("Observation", PAGED | {"date": ["ge2026-08-27", "lt2026-10-11"]}, "observations"),
        ("Observation", PAGED | {"date": ["ge2026-07-13", "lt2026-08-27"]}, "observations"),
        ("Observation", PAGED | {"date": ["ge2026-05-29", "lt2026-07-13"]}, "observations"),
        ("Observation", PAGED | {"date": ["ge2026-04-14", "lt2026-05-29"]}, "observations"),
        ("Observation", PAGED | {"date": ["ge2026-02-28", "lt2026-04-14"]}, "observations"),
        ("Observation", PAGED | {"date": ["ge2026-01-14", "lt2026-02-28"]}, "observations"),
        ("Observation", PAGED | {"date": ["ge2025-11-25", "lt2026-01-14"]}, "observations"),
        ("Observation", PAGED | {"date": ["ge2025-08-27", "lt2025-11-25"]}, "observations"),
        ("Observation", PAGED | {"date": ["ge2025-05-29", "lt2025-08-27"]}, "observations"),
        ("Observation", PAGED | {"date": ["ge2025-02-28", "lt2025-05-29"]}, "observations"),
        ("Observation", PAGED | {"date": ["ge2024-11-25", "lt2025-02-28"]}, "observations"),
        ("Observation", PAGED | {"date": ["ge2023-11-26", "lt2024-11-25"]}, "observations"),
        ("Observation", PAGED | {"date": "lt2023-11-26"}, "observations (older)"),
        ("Observation", PAGED | {"date:missing": "true"}, "observations without a date"),
    ]
    assert all(not spec for rtype, spec in parts.items() if rtype not in ("DiagnosticReport", "Observation"))


def test_required_categories_win_over_windows() -> None:
    categorized = _searches(TODAY, {"Observation": ["laboratory", "vital-signs"]})
    assert [s for s in categorized if s[0] == "Observation"] == [
        ("Observation", PAGED | {"category": "laboratory"}, "observations (laboratory)"),
        ("Observation", PAGED | {"category": "vital-signs"}, "observations (vital-signs)"),
    ]


def test_cds_prefetch_templates() -> None:
    patient = "{{context.patientId}}"
    expected = {
        "patient": ("Patient", f"Patient/{patient}"),
        "conditions": ("Condition", f"Condition?patient={patient}&_count=100"),
        "diagnosticReports": ("DiagnosticReport", f"DiagnosticReport?patient={patient}&_count=100"),
        "documents": ("DocumentReference", f"DocumentReference?patient={patient}&_count=100"),
        "observations": ("Observation", f"Observation?patient={patient}&_count=100"),
        "procedures": ("Procedure", f"Procedure?patient={patient}&_count=100"),
        "medicationRequests": ("MedicationRequest", f"MedicationRequest?patient={patient}&_count=100"),
        "medicationAdministrations": (
            "MedicationAdministration",
            f"MedicationAdministration?patient={patient}&_count=100",
        ),
        "serviceRequests": ("ServiceRequest", f"ServiceRequest?patient={patient}&_count=100"),
        "carePlans": ("CarePlan", f"CarePlan?patient={patient}&_count=100"),
        "coverage": ("Coverage", f"Coverage?patient={patient}"),
        "specimens": ("Specimen", f"Specimen?patient={patient}&_count=100"),
    }
    assert list(PREFETCH.items()) == list(expected.items())  # order too: the discovery document's
    assert service_description()["prefetch"] == {key: template for key, (_, template) in expected.items()}
    assert set(REQUIRED_KEYS) <= set(PREFETCH)


def test_every_type_the_plan_marks_mapped_is_read_by_the_record_mapping() -> None:
    # A type added to the plan is read into the PatientRecord by fhirmaps/read.py, or the plan says
    # that only the packet reads it (mapped=False); both ways the flag must be true.
    not_mapped = sorted(
        r.resource_type for r in READ_PLAN if r.mapped and r.resource_type not in MAPPED_TYPES
    )
    assert not not_mapped, f"in the read plan but not read by fhirmaps/read.py: {not_mapped}"
    stale = sorted(r.resource_type for r in READ_PLAN if not r.mapped and r.resource_type in MAPPED_TYPES)
    assert not stale, f"marked mapped=False in the read plan but read by fhirmaps/read.py: {stale}"

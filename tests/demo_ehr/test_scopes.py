"""Pure unit tests of the demo EHR's SMART scope grammar."""

from __future__ import annotations

from demo_ehr.scopes import Access, describe_scope, is_known_scope, parse_resource_scope


def test_v1_and_v2_permissions() -> None:
    v1 = parse_resource_scope("patient/Observation.read")
    assert v1 is not None and v1.permissions == frozenset("rs")
    write = parse_resource_scope("user/ServiceRequest.write")
    assert write is not None and write.permissions == frozenset("cud")
    wildcard = parse_resource_scope("patient/*.*")
    assert wildcard is not None and wildcard.covers("Binary", "d")
    v2 = parse_resource_scope("patient/DiagnosticReport.rs?category=http://loinc.org|LP7839-6")
    assert v2 is not None and v2.covers("DiagnosticReport", "s") and not v2.covers("DiagnosticReport", "c")


def test_malformed_scopes_are_unknown() -> None:
    assert parse_resource_scope("patient/Observation.sr") is None  # letters out of cruds order
    assert parse_resource_scope("patient/Observation.x") is None
    assert not is_known_scope("admin")
    assert is_known_scope("launch/patient") and is_known_scope("offline_access")
    assert is_known_scope("http://smarthealthit.org/fhir/scopes/patient/Observation.rs")


def test_patient_scopes_restrict_unless_user_scope_covers() -> None:
    patient_only = Access.from_scope("launch patient/*.rs", "p1")
    assert patient_only.allows("Condition", "s")
    assert patient_only.patient_restricted("Condition", "s")
    mixed = Access.from_scope("patient/*.rs user/Observation.rs", "p1")
    assert not mixed.patient_restricted("Observation", "r")
    assert mixed.patient_restricted("Condition", "r")
    assert not Access.from_scope("openid fhirUser", None).allows("Patient", "r")


def test_consent_page_wording() -> None:
    assert describe_scope("patient/Observation.rs") == "read, search Observation (this patient only)"
    assert (
        describe_scope("user/*.write") == "create, update, delete all record types (any patient you may see)"
    )
    assert describe_scope("offline_access") == "keep access after you sign out"

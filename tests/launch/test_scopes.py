from __future__ import annotations

from launch import scopes as launch_scopes
from launch.discovery import SmartConfiguration
from launch.registry import Registration
from launch.scopes import GrantedScopes

# What an app reads; SecondLook's own read plan is pinned in tests/test_read_plan.py.
READS = (("Patient", "r"), ("Condition", "rs"), ("Binary", "r"), ("Observation", "rs"))
DEFAULT_V2 = (
    "launch openid fhirUser online_access patient/Patient.r patient/Condition.rs patient/Binary.r "
    "patient/Observation.rs"
)


def config(*capabilities: str) -> SmartConfiguration:
    return SmartConfiguration(
        fhir_base="https://e.example.org",
        token_endpoint="https://e.example.org/t",
        capabilities=list(capabilities),
    )


def reg(**fields: object) -> Registration:
    return Registration.model_validate({"iss": "https://e.example.org", "client_id": "c", **fields})


def requested_scopes(
    registration: Registration, config: SmartConfiguration, standalone: bool, *, user_level: bool = False
) -> str:
    return launch_scopes.requested_scopes(
        registration, config, standalone, reads=READS, user_level=user_level
    )


def test_default_v2_request() -> None:
    assert requested_scopes(reg(), config("permission-v2"), standalone=False) == DEFAULT_V2


def test_write_back_adds_create_scopes() -> None:
    scopes = requested_scopes(reg(write_back=True), config(), standalone=False).split()
    assert scopes[-2:] == ["patient/ServiceRequest.c", "patient/DocumentReference.c"]


def test_standalone_asks_for_patient_context_instead_of_launch() -> None:
    scopes = requested_scopes(reg(), config(), standalone=True).split()
    assert "launch/patient" in scopes
    assert "launch" not in scopes


def test_v1_by_registration_and_auto() -> None:
    v1 = requested_scopes(reg(scope_syntax="v1", write_back=True), config("permission-v2"), standalone=False)
    assert "patient/Condition.read" in v1.split()
    assert "patient/Patient.read" in v1.split()
    assert "patient/ServiceRequest.write" in v1.split()
    assert ".rs" not in v1
    auto_v1 = requested_scopes(reg(scope_syntax="auto"), config("permission-v1"), standalone=False)
    assert "patient/Observation.read" in auto_v1.split()
    auto_v2 = requested_scopes(
        reg(scope_syntax="auto"), config("permission-v1", "permission-v2"), standalone=False
    )
    assert auto_v2 == DEFAULT_V2


def test_registration_override_is_used() -> None:
    assert (
        requested_scopes(reg(scopes="launch patient/*.rs"), config(), standalone=False)
        == "launch patient/*.rs"
    )


def test_v2_parsing() -> None:
    granted = GrantedScopes.parse(
        "launch openid patient/Condition.rs patient/Binary.r patient/ServiceRequest.c"
    )
    assert granted.can_read("Condition") and granted.can_search("Condition")
    assert granted.can_read("Binary") and not granted.can_search("Binary")
    assert granted.can_create("ServiceRequest") and not granted.can_read("ServiceRequest")
    assert not granted.can_create("Condition")
    assert granted.has("openid")


def test_v1_parsing() -> None:
    granted = GrantedScopes.parse("patient/Observation.read user/ServiceRequest.write patient/Coverage.*")
    assert granted.can_read("Observation") and granted.can_search("Observation")
    assert not granted.can_create("Observation")
    assert granted.can_create("ServiceRequest") and not granted.can_read("ServiceRequest")
    assert granted.can_read("Coverage") and granted.can_create("Coverage")


def test_wildcards_contexts_and_uri_form() -> None:
    assert GrantedScopes.parse("patient/*.read").can_search("Specimen")
    assert GrantedScopes.parse("user/*.rs").can_read("DocumentReference")
    assert GrantedScopes.parse("http://smarthealthit.org/fhir/scopes/patient/Condition.rs").can_read(
        "Condition"
    )
    # system/ scopes are for backend services, not for a user's launch.
    assert not GrantedScopes.parse("system/*.rs").can_read("Condition")
    # Out-of-order permission letters are not a valid v2 scope.
    assert not GrantedScopes.parse("patient/Condition.sr").can_read("Condition")


def test_granular_category_scopes() -> None:
    granted = GrantedScopes.parse(
        "patient/Observation.rs"
        "?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory "
        "patient/Condition.rs"
    )
    assert granted.can_search("Observation")
    assert granted.restrictions("Observation") == [
        "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
    ]
    assert granted.restrictions("Condition") == []


def test_denied_scopes_are_reported() -> None:
    requested = "launch openid patient/Condition.rs patient/Coverage.rs patient/CarePlan.rs"
    granted = GrantedScopes.parse("launch openid patient/Condition.rs")
    assert granted.not_granted(requested) == ["patient/Coverage.rs", "patient/CarePlan.rs"]
    assert granted.missing_reads(["Condition", "Coverage", "CarePlan"]) == ["Coverage", "CarePlan"]


def test_empty_grant() -> None:
    granted = GrantedScopes.parse(None)
    assert granted.missing_reads(["Patient"]) == ["Patient"]


def test_user_level_sign_in_asks_for_identity_and_user_reads_only() -> None:
    scopes = requested_scopes(reg(), config(), standalone=True, user_level=True).split()
    assert scopes[:3] == ["openid", "fhirUser", "online_access"]
    assert "user/Patient.r" in scopes and "user/Observation.rs" in scopes
    assert not [s for s in scopes if s.startswith(("patient/", "launch"))]
    v1 = requested_scopes(reg(scope_syntax="v1"), config(), standalone=True, user_level=True).split()
    assert "user/Condition.read" in v1 and not [s for s in v1 if s.startswith("patient/")]
    # A site's own scope string is re-levelled, not widened.
    custom = requested_scopes(
        reg(scopes="launch patient/Patient.r patient/Observation.rs"),
        config(),
        standalone=True,
        user_level=True,
    )
    assert custom == "openid fhirUser online_access user/Patient.r user/Observation.rs"


def test_user_can_read_needs_a_user_grant() -> None:
    assert GrantedScopes.parse("user/Patient.rs").user_can_read("Patient")
    assert GrantedScopes.parse("user/*.read").user_can_read("Patient")
    assert not GrantedScopes.parse("patient/Patient.rs").user_can_read("Patient")
    assert not GrantedScopes.parse("user/Patient.s").user_can_read("Patient")

"""Discovery document: one patient-view service whose prefetch matches the app's read plan."""

from __future__ import annotations

from smartapp.record_loader import PATIENT_SEARCHES
from tests.cds.conftest import EHR_ORIGIN, SERVICE, Stack


def test_discovery_lists_patient_view_with_prefetch(stack: Stack) -> None:
    response = stack.http.get(
        stack.url + "/cds-services", headers={"Authorization": f"Bearer {stack.token('/cds-services')}"}
    )
    assert response.status_code == 200
    services = response.json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [(SERVICE, "patient-view")]
    service = services[0]
    assert service["title"] and service["description"]
    prefetch = service["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    assert prefetch["conditions"].startswith("Condition?patient={{context.patientId}}")
    for key in (
        "diagnosticReports",
        "observations",
        "medicationRequests",
        "procedures",
        "serviceRequests",
        "carePlans",
    ):
        assert "patient={{context.patientId}}" in prefetch[key], key
    # Every resource type the app reads has a template, so prefetch and the launched app agree.
    templated = {template.split("?")[0].split("/")[0] for template in prefetch.values()}
    assert templated == {rtype for rtype, _, _ in PATIENT_SEARCHES}


def test_discovery_requires_a_jwt(stack: Stack) -> None:
    response = stack.http.get(stack.url + "/cds-services")
    assert response.status_code == 401
    assert response.content in (b"", b"{}")


def test_cors_only_for_configured_origins(stack: Stack) -> None:
    preflight = {
        "Origin": EHR_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    allowed = stack.http.options(stack.url + f"/cds-services/{SERVICE}", headers=preflight)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == EHR_ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    other = stack.http.options(
        stack.url + f"/cds-services/{SERVICE}", headers={**preflight, "Origin": "https://evil.test"}
    )
    assert "access-control-allow-origin" not in other.headers
    token = stack.token("/cds-services")
    get = stack.http.get(
        stack.url + "/cds-services", headers={"Authorization": f"Bearer {token}", "Origin": EHR_ORIGIN}
    )
    assert get.headers["access-control-allow-origin"] == EHR_ORIGIN


def test_every_search_of_the_read_plan_has_a_scope() -> None:
    from launch.scopes import READ_SCOPES
    from smartapp.record_loader import INTAKE_SEARCHES

    scoped = {rtype for rtype, permissions in READ_SCOPES if "s" in permissions or rtype == "Patient"}
    assert {rtype for rtype, _, _ in PATIENT_SEARCHES + INTAKE_SEARCHES} <= scoped
    # The referral's sender and payer are read by id, outside the patient's compartment.
    assert {"Practitioner", "PractitionerRole", "Organization"} <= {rtype for rtype, _ in READ_SCOPES}

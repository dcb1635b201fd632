"""Discovery document: one patient-view service with its prefetch templates (derived from the read
plan; the templates themselves are pinned in tests/test_read_plan.py)."""

from __future__ import annotations

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

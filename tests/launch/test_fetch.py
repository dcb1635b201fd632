from __future__ import annotations

from pytest_httpserver import HTTPServer

from launch.fetch import AttachmentRef, FetchedAttachment, Gap, SearchSpec, fetch_attachments, fetch_searches
from launch.fhir_client import FhirClient
from launch.scopes import GrantedScopes

from .fakes import bundle, outcome


async def test_one_failed_search_and_one_denied_type_keep_the_rest(
    httpserver: HTTPServer, client: FhirClient
) -> None:
    httpserver.expect_request("/fhir/Condition").respond_with_json(
        bundle([{"resourceType": "Condition", "id": "c1"}, {"resourceType": "Condition", "id": "c2"}])
    )
    httpserver.expect_request("/fhir/DiagnosticReport").respond_with_json(
        outcome("category not supported"), status=400
    )
    httpserver.expect_request("/fhir/Observation").respond_with_json(
        bundle([{"resourceType": "Observation", "id": "o1"}, {"resourceType": "Condition", "id": "c1"}])
    )
    granted = GrantedScopes.parse(
        "launch patient/Condition.rs patient/DiagnosticReport.rs patient/Observation.rs"
    )
    searches = [
        SearchSpec("Condition", {"patient": "p1"}, "conditions"),
        SearchSpec("DiagnosticReport", {"patient": "p1", "category": "LP7839-6"}, "pathology reports"),
        SearchSpec("Coverage", {"patient": "p1"}, "insurance"),
        SearchSpec("Observation", {"patient": "p1", "_include": "x"}, "labs"),
    ]
    result = await fetch_searches(client, searches, granted)
    assert sorted((r["resourceType"], r["id"]) for r in result.resources) == [
        ("Condition", "c1"),
        ("Condition", "c2"),
        ("Observation", "o1"),
    ]  # c1 from _include de-duplicated
    gaps = {gap.label: gap for gap in result.gaps}
    assert set(gaps) == {"pathology reports", "insurance"}
    assert gaps["insurance"].reason == "scope_not_granted" and gaps["insurance"].resource_type == "Coverage"
    assert gaps["pathology reports"].reason == "fetch_failed"
    assert "category not supported" in gaps["pathology reports"].message
    assert not any(request.path == "/fhir/Coverage" for request, _ in httpserver.log)
    assert [r["id"] for r in result.of_type("Observation")] == ["o1"]


async def test_attachments_fetched_concurrently_with_gaps(httpserver: HTTPServer, client: FhirClient) -> None:
    httpserver.expect_request("/fhir/Binary/b1").respond_with_data(b"report text", content_type="text/plain")
    httpserver.expect_request("/fhir/Binary/b2").respond_with_json(outcome("gone"), status=410)
    refs = [
        AttachmentRef("Binary/b1", "text/plain", "DiagnosticReport/d1"),
        AttachmentRef(httpserver.url_for("/fhir/Binary/b2"), "application/pdf", "DocumentReference/r1"),
        AttachmentRef("https://elsewhere.example.com/b3", "application/pdf", "DocumentReference/r2"),
    ]
    first, second, third = await fetch_attachments(client, refs)
    assert isinstance(first, FetchedAttachment)
    assert (first.url, first.content, first.content_type, first.label) == (
        "Binary/b1",
        b"report text",
        "text/plain",
        "DiagnosticReport/d1",
    )
    assert isinstance(second, Gap) and second.label == "DocumentReference/r1" and "gone" in second.message
    assert isinstance(third, Gap) and "different server" in third.message


async def test_id_search_becomes_a_read_when_only_read_was_granted(
    httpserver: HTTPServer, client: FhirClient
) -> None:
    httpserver.expect_request("/fhir/Patient/p1").respond_with_json({"resourceType": "Patient", "id": "p1"})
    httpserver.expect_request("/fhir/Patient/gone").respond_with_json(outcome("no such patient"), status=404)
    granted = GrantedScopes.parse("launch patient/Patient.r")
    result = await fetch_searches(client, [SearchSpec("Patient", {"_id": "p1"}, "demographics")], granted)
    assert result.resources == [{"resourceType": "Patient", "id": "p1"}] and result.gaps == []
    missing = await fetch_searches(client, [SearchSpec("Patient", {"_id": "gone"}, "demographics")], granted)
    assert missing.resources == [] and missing.gaps == []
    # Any other Patient search still needs the search permission.
    denied = await fetch_searches(client, [SearchSpec("Patient", {"name": "x"}, "by name")], granted)
    assert [gap.reason for gap in denied.gaps] == ["scope_not_granted"]
    assert [request.path for request, _ in httpserver.log] == ["/fhir/Patient/p1", "/fhir/Patient/gone"]


async def test_attachment_ref_label_is_optional(httpserver: HTTPServer, client: FhirClient) -> None:
    httpserver.expect_request("/fhir/Binary/b9").respond_with_data(b"x", content_type="application/pdf")
    (item,) = await fetch_attachments(
        client, [AttachmentRef(url="Binary/b9", content_type="application/pdf")]
    )
    assert isinstance(item, FetchedAttachment) and item.url == "Binary/b9" and item.label == ""


def windows(label: str) -> tuple[SearchSpec, ...]:
    return (
        SearchSpec("Observation", {"patient": "p1", "date": "ge2026-01-01"}, f"{label} (this year)"),
        SearchSpec("Observation", {"patient": "p1", "date": "lt2026-01-01"}, f"{label} (older)"),
    )


async def test_a_search_with_parts_reads_them_only_when_it_has_a_next_page(
    httpserver: HTTPServer, client: FhirClient
) -> None:
    """A long answer is read as its parts (one failing part is its own gap); a short one is one request."""
    next_url = httpserver.url_for("/fhir/Observation-page-2")
    httpserver.expect_request("/fhir/Observation", query_string="patient=p1").respond_with_json(
        bundle([{"resourceType": "Observation", "id": "new"}], next_url)
    )
    httpserver.expect_request(
        "/fhir/Observation", query_string="patient=p1&date=ge2026-01-01"
    ).respond_with_json(
        bundle([{"resourceType": "Observation", "id": "new"}, {"resourceType": "Observation", "id": "mid"}])
    )
    httpserver.expect_request(
        "/fhir/Observation", query_string="patient=p1&date=lt2026-01-01"
    ).respond_with_json(outcome("window refused"), status=400)
    httpserver.expect_request("/fhir/Condition").respond_with_json(
        bundle([{"resourceType": "Condition", "id": "c"}])
    )
    granted = GrantedScopes.parse("patient/Observation.rs patient/Condition.rs")
    searches = [
        SearchSpec("Observation", {"patient": "p1"}, "labs", parts=windows("labs")),
        SearchSpec("Condition", {"patient": "p1"}, "conditions", parts=windows("never read")),
    ]
    result = await fetch_searches(client, searches, granted)
    assert sorted(r["id"] for r in result.resources) == ["c", "mid", "new"]
    assert [(gap.label, gap.reason) for gap in result.gaps] == [("labs (older)", "fetch_failed")]
    paths = [request.path for request, _ in httpserver.log]
    assert "/fhir/Observation-page-2" not in paths
    assert paths.count("/fhir/Observation") == 3 and paths.count("/fhir/Condition") == 1


async def test_a_failed_first_page_of_a_search_with_parts_is_one_gap(
    httpserver: HTTPServer, client: FhirClient
) -> None:
    httpserver.expect_request("/fhir/Observation").respond_with_json(outcome("too busy"), status=400)
    granted = GrantedScopes.parse("patient/Observation.rs")
    spec = SearchSpec("Observation", {"patient": "p1"}, "labs", parts=windows("labs"))
    result = await fetch_searches(client, [spec], granted)
    assert result.resources == []
    assert [(gap.label, gap.reason) for gap in result.gaps] == [("labs", "fetch_failed")]
    assert len(httpserver.log) == 1

"""Attachments that are Binary reads on the FHIR server go many to a batch Bundle when the server's
CapabilityStatement offers `batch`; whatever a batch does not deliver is fetched on its own, so the
answer is the same as with single reads, and a server without batches gets single reads only."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from launch.fetch import AttachmentRef, FetchedAttachment, Gap, fetch_attachments
from launch.fhir_client import FhirClient, offers_batch

from .fakes import outcome

PDF = b"%PDF-1.4\n\xe2\xe3\xcf\xd3 pathology report"
TEXT = b"FINAL DIAGNOSIS: Invasive ductal carcinoma."
BINARIES = {"b1": ("text/plain", TEXT), "b2": ("application/pdf", PDF)}
WITH_BATCH = {
    "resourceType": "CapabilityStatement",
    "rest": [{"mode": "server", "interaction": [{"code": "batch"}, {"code": "history-system"}]}],
}


def binary(rid: str) -> dict[str, Any]:
    content_type, content = BINARIES[rid]
    data = base64.b64encode(content).decode()
    return {"resourceType": "Binary", "id": rid, "contentType": content_type, "data": data}


def answer_batch(request: Request) -> Response:
    """A server's batch: each GET Binary/<id> entry answered in order, 404 for unknown ids."""
    entries = []
    for entry in json.loads(request.data)["entry"]:
        rid = entry["request"]["url"].removeprefix("Binary/")
        if rid in BINARIES:
            entries.append({"resource": binary(rid), "response": {"status": "200 OK"}})
        else:
            entries.append({"resource": outcome("no such Binary"), "response": {"status": "404 Not Found"}})
    body = {"resourceType": "Bundle", "type": "batch-response", "entry": entries}
    return Response(json.dumps(body), content_type="application/fhir+json")


def serve_singles(httpserver: HTTPServer) -> None:
    for rid, (content_type, content) in BINARIES.items():
        httpserver.expect_request(f"/fhir/Binary/{rid}", method="GET").respond_with_data(
            content, content_type=content_type
        )
    httpserver.expect_request("/fhir/Binary/gone", method="GET").respond_with_json(
        outcome("gone"), status=410
    )


def offer_batch(httpserver: HTTPServer, batch: Callable[[Request], Response] = answer_batch) -> None:
    """A server whose CapabilityStatement offers batch, answering batches with `batch`, and each
    Binary on its own too."""
    httpserver.expect_request("/fhir/metadata").respond_with_json(WITH_BATCH)
    httpserver.expect_request("/fhir", method="POST").respond_with_handler(batch)
    serve_singles(httpserver)


def sent(httpserver: HTTPServer) -> list[tuple[str, str]]:
    return [(request.method, request.full_path.rstrip("?")) for request, _ in httpserver.log]


async def test_binary_reads_travel_in_one_batch_and_read_as_single_reads_would(
    httpserver: HTTPServer, client: FhirClient
) -> None:
    offer_batch(httpserver)
    httpserver.expect_request("/fhir/Binary/b1", query_string="_format=text").respond_with_data(
        TEXT, content_type="text/plain"
    )
    refs = [
        AttachmentRef("Binary/b1", "text/plain", "DiagnosticReport/d1"),
        AttachmentRef(httpserver.url_for("/fhir/Binary/b2"), "application/pdf", "DocumentReference/r1"),
        AttachmentRef("Binary/gone", "application/pdf", "DocumentReference/r2"),
        AttachmentRef("https://elsewhere.example.com/fhir/Binary/b1", "text/plain", "DocumentReference/r3"),
        AttachmentRef("Binary/b1?_format=text", "text/plain", "DocumentReference/r4"),
    ]
    first, second, third, fourth, fifth = await fetch_attachments(client, refs, batch_entries=10)
    assert isinstance(first, FetchedAttachment) and isinstance(second, FetchedAttachment)
    assert (first.url, first.content, first.content_type, first.label) == (
        "Binary/b1",
        TEXT,
        "text/plain",
        "DiagnosticReport/d1",
    )
    assert (second.url, second.content, second.content_type) == (refs[1].url, PDF, "application/pdf")
    # The entry that failed is asked for on its own: its gap reads as a single read's would.
    assert isinstance(third, Gap) and third.label == "DocumentReference/r2" and "gone" in third.message
    assert isinstance(fourth, Gap) and "different server" in fourth.message
    assert isinstance(fifth, FetchedAttachment) and fifth.content == TEXT  # not a plain read: on its own
    assert sorted(sent(httpserver)) == [
        ("GET", "/fhir/Binary/b1?_format=text"),
        ("GET", "/fhir/Binary/gone"),
        ("GET", "/fhir/metadata"),
        ("POST", "/fhir"),
    ]
    posted = next(json.loads(request.data) for request, _ in httpserver.log if request.method == "POST")
    assert posted["type"] == "batch"
    assert [entry["request"] for entry in posted["entry"]] == [
        {"method": "GET", "url": "Binary/b1"},
        {"method": "GET", "url": "Binary/b2"},
        {"method": "GET", "url": "Binary/gone"},
    ]
    assert all(request.headers["Authorization"] == "Bearer token-0" for request, _ in httpserver.log)


async def test_batches_hold_at_most_the_given_number_of_entries(
    httpserver: HTTPServer, client: FhirClient
) -> None:
    offer_batch(httpserver)
    refs = [AttachmentRef(f"Binary/{rid}", "text/plain") for rid in ("b1", "b2", "b1", "b2", "b1")]
    results = await fetch_attachments(client, refs, batch_entries=2)
    assert [r.content for r in results if isinstance(r, FetchedAttachment)] == [TEXT, PDF, TEXT, PDF, TEXT]
    # Two full batches; the fifth read alone is no batch.
    assert sorted(sent(httpserver)) == [
        ("GET", "/fhir/Binary/b1"),
        ("GET", "/fhir/metadata"),
        ("POST", "/fhir"),
        ("POST", "/fhir"),
    ]


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(
            ({"resourceType": "CapabilityStatement", "rest": [{"mode": "server"}]}, 200), id="no-batch"
        ),
        pytest.param((outcome("not found"), 404), id="404"),
        pytest.param((outcome("down"), 500), id="500"),
        pytest.param(({"resourceType": "Bundle"}, 200), id="not-a-capability-statement"),
    ],
)
async def test_a_server_that_does_not_offer_batch_gets_single_reads_and_one_metadata_read(
    metadata: tuple[dict[str, Any], int], httpserver: HTTPServer, client: FhirClient
) -> None:
    body, status = metadata
    httpserver.expect_request("/fhir/metadata").respond_with_json(body, status=status)
    serve_singles(httpserver)
    refs = [AttachmentRef("Binary/b1", "text/plain"), AttachmentRef("Binary/b2", "application/pdf")]
    for _ in range(2):
        results = await fetch_attachments(client, refs, batch_entries=10)
        assert [r.content for r in results if isinstance(r, FetchedAttachment)] == [TEXT, PDF]
    # metadata asked once, in one try (no retry of a 500), never a batch.
    assert sorted(sent(httpserver)) == [("GET", "/fhir/Binary/b1")] * 2 + [("GET", "/fhir/Binary/b2")] * 2 + [
        ("GET", "/fhir/metadata")
    ]


async def test_without_batch_entries_nothing_is_batched(httpserver: HTTPServer, client: FhirClient) -> None:
    serve_singles(httpserver)
    refs = [AttachmentRef("Binary/b1", "text/plain"), AttachmentRef("Binary/b2", "application/pdf")]
    results = await fetch_attachments(client, refs)
    assert [r.content for r in results if isinstance(r, FetchedAttachment)] == [TEXT, PDF]
    assert sorted(sent(httpserver)) == [("GET", "/fhir/Binary/b1"), ("GET", "/fhir/Binary/b2")]


async def test_a_refused_batch_falls_back_to_single_reads_and_is_not_sent_again(
    httpserver: HTTPServer, client: FhirClient
) -> None:
    httpserver.expect_request("/fhir/metadata").respond_with_json(WITH_BATCH)
    httpserver.expect_request("/fhir", method="POST").respond_with_json(
        outcome("no batches here"), status=405
    )
    serve_singles(httpserver)
    refs = [AttachmentRef("Binary/b1", "text/plain"), AttachmentRef("Binary/b2", "application/pdf")]
    for _ in range(2):
        results = await fetch_attachments(client, refs, batch_entries=10)
        assert [r.content for r in results if isinstance(r, FetchedAttachment)] == [TEXT, PDF]
    assert [method for method, _ in sent(httpserver)].count("POST") == 1


async def test_a_batch_that_fails_for_now_is_tried_again_next_time(
    httpserver: HTTPServer, client: FhirClient
) -> None:
    httpserver.expect_request("/fhir/metadata").respond_with_json(WITH_BATCH)
    httpserver.expect_request("/fhir", method="POST").respond_with_json(outcome("busy"), status=503)
    serve_singles(httpserver)
    refs = [AttachmentRef("Binary/b1", "text/plain"), AttachmentRef("Binary/b2", "application/pdf")]
    for _ in range(2):
        results = await fetch_attachments(client, refs, batch_entries=10)
        assert [r.content for r in results if isinstance(r, FetchedAttachment)] == [TEXT, PDF]
    assert [method for method, _ in sent(httpserver)].count("POST") == 4  # two tries, twice


def _drop_last(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return entries[:-1]


def _no_data(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    del entries[0]["resource"]["data"]
    return entries


def _bad_base64(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries[0]["resource"]["data"] = "QUJD*"  # "ABC", were the stray character skipped
    return entries


def _other_id(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries[0]["resource"]["id"] = "b2"
    return entries


def _outcome_with_200(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries[0]["resource"] = outcome("odd")
    return entries


def _failed_status(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries[0]["response"]["status"] = "404 Not Found"  # whatever the resource says
    return entries


def _no_status(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    del entries[0]["response"]
    return entries


@pytest.mark.parametrize(
    "spoil", [_drop_last, _no_data, _bad_base64, _other_id, _outcome_with_200, _failed_status, _no_status]
)
async def test_what_a_batch_answer_does_not_clearly_deliver_is_read_on_its_own(
    spoil: Any, httpserver: HTTPServer, client: FhirClient
) -> None:
    def answer(request: Request) -> Response:
        document = json.loads(answer_batch(request).get_data())
        document["entry"] = spoil(document["entry"])
        return Response(json.dumps(document), content_type="application/fhir+json")

    offer_batch(httpserver, answer)
    refs = [AttachmentRef("Binary/b1", "text/plain"), AttachmentRef("Binary/b2", "application/pdf")]
    results = await fetch_attachments(client, refs, batch_entries=10)
    assert [(r.content, r.content_type) for r in results if isinstance(r, FetchedAttachment)] == [
        (TEXT, "text/plain"),
        (PDF, "application/pdf"),
    ]
    assert ("GET", "/fhir/Binary/b1") in sent(httpserver)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("Binary/b1", "b1"),
        ("Binary/b-1.x", "b-1.x"),
        ("{base}/Binary/b1", "b1"),
        ("{base}/Binary/x/../b1", "b1"),
        ("{base}/../other/Binary/b1", None),
        ("Binary/b1?_format=json", None),
        ("Binary/b1/_history/2", None),
        ("Binary/", None),
        ("Binary/b%201", None),
        ("DocumentReference/b1", None),
        ("https://elsewhere.example.com/fhir/Binary/b1", None),
        ("/Binary/b1", None),  # the server's root, not the FHIR base
    ],
)
def test_binary_id_is_given_only_for_a_plain_read_under_the_base(
    url: str, expected: str | None, httpserver: HTTPServer, client: FhirClient
) -> None:
    assert client.binary_id(url.format(base=client.base_url)) == expected


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (WITH_BATCH, True),
        ({"resourceType": "CapabilityStatement", "rest": [{"interaction": [{"code": "batch"}]}]}, True),
        (
            {
                "resourceType": "CapabilityStatement",
                "rest": [{"mode": "client", "interaction": [{"code": "batch"}]}],
            },
            False,
        ),
        (
            {
                "resourceType": "CapabilityStatement",
                "rest": [{"mode": "server", "interaction": [{"code": "transaction"}]}],
            },
            False,
        ),
        ({"resourceType": "CapabilityStatement", "rest": {"interaction": [{"code": "batch"}]}}, False),
        ({"resourceType": "CapabilityStatement", "rest": [{"interaction": "batch"}]}, False),
        ({"resourceType": "OperationOutcome", "rest": [{"interaction": [{"code": "batch"}]}]}, False),
        ({}, False),
    ],
)
def test_offers_batch_reads_the_server_part_of_a_capability_statement(
    statement: dict[str, Any], expected: bool
) -> None:
    assert offers_batch(statement) is expected

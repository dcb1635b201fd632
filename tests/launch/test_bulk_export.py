"""Bulk Data $export against pytest-httpserver: kick-off, polling, manifests, downloads."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from launch.bulk_download import download_manifest
from launch.bulk_export import BulkExportClient, ExportProgress, ExportRequest, PollingPolicy
from launch.bulk_manifest import Manifest, iter_ndjson, parse_manifest, summarize_outcomes
from launch.errors import FatalFhirError, TemporaryFhirError
from launch.retry import RetryPolicy

from .fakes import RecordingSleep, StaticTokens, outcome


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def client(httpserver: HTTPServer, http: httpx2.AsyncClient, sleep: RecordingSleep) -> BulkExportClient:
    return BulkExportClient(
        httpserver.url_for("/fhir"),
        http,
        StaticTokens(),
        polling=PollingPolicy(first_delay=1.0, tries=2),
        retry=RetryPolicy(tries=2, base_delay=0.01, max_delay=1.0),
        sleep=sleep,
    )


def manifest(server: HTTPServer, *, ballot: bool, requires: bool) -> dict[str, Any]:
    errors = [{"type": "OperationOutcome", "url": server.url_for("/files/err.ndjson")}]
    document: dict[str, Any] = {
        "transactionTime": "2026-12-01T00:00:00Z",
        "requiresAccessToken": requires,
        "output": [{"type": "Patient", "url": server.url_for("/files/p.ndjson"), "count": 2}],
        ("outcome" if ballot else "error"): errors,
    }
    if not ballot:
        document["request"] = server.url_for("/fhir/Group/g1/$export")
    return document


async def test_kick_off_get_poll_progress_and_download(
    httpserver: HTTPServer, client: BulkExportClient, sleep: RecordingSleep, tmp_path: Path
) -> None:
    httpserver.expect_request("/fhir/Group/g1/$export").respond_with_data(
        "", status=202, headers={"Content-Location": "/status/1"}
    )
    answers = [
        Response("", status=202, headers={"X-Progress": "40% done", "Retry-After": "7"}),
        Response("", status=429, headers={"Retry-After": "3"}),
        Response(
            json.dumps(manifest(httpserver, ballot=False, requires=False)), content_type="application/json"
        ),
    ]
    httpserver.expect_request("/status/1").respond_with_handler(lambda _request: answers.pop(0))
    httpserver.expect_request("/files/p.ndjson").respond_with_data(
        gzip.compress(b'{"resourceType":"Patient","id":"a"}\n{"resourceType":"Patient","id":"b"}\n'),
        headers={"Content-Encoding": "gzip"},
    )
    issues = [outcome("no access") for _ in range(2)] + [outcome("too big")]
    httpserver.expect_request("/files/err.ndjson").respond_with_data("\n".join(json.dumps(i) for i in issues))

    request = ExportRequest(group_id="g1", types=["Patient", "Condition"], since="2026-01-01T00:00:00Z")
    status_url = await client.kick_off(request)
    kick = httpserver.log[0][0]
    assert kick.args["_type"] == "Patient,Condition" and kick.headers["Prefer"] == "respond-async"
    assert kick.headers["Accept"] == "application/fhir+json"
    seen: list[ExportProgress] = []
    result = await client.wait_for_manifest(status_url, seen.append)
    assert [p.text for p in seen] == ["40% done", None] and seen[1].rate_limited
    assert sleep.delays == [7.0, 3.0]
    assert result.shape == "2.0/3.0" and result.transaction_time == "2026-12-01T00:00:00Z"

    report = await download_manifest(client, result, tmp_path)
    assert report.failed == []
    assert [r["id"] for r in iter_ndjson(report.paths("output")[0])] == ["a", "b"]
    for request_made, _ in httpserver.log:
        if request_made.path.startswith("/files/"):
            assert "Authorization" not in request_made.headers  # requiresAccessToken: false
    counts = summarize_outcomes(iter_ndjson(report.paths("error")[0]))
    assert [(c.text, c.count) for c in counts] == [("no access", 2), ("too big", 1)]


async def test_post_kick_off_ballot_manifest_and_token_sent(
    httpserver: HTTPServer, client: BulkExportClient, tmp_path: Path
) -> None:
    httpserver.expect_request("/fhir/Patient/$export", method="POST").respond_with_data(
        "", status=202, headers={"Content-Location": httpserver.url_for("/status/2")}
    )
    httpserver.expect_request("/status/2").respond_with_json(manifest(httpserver, ballot=True, requires=True))
    httpserver.expect_request("/files/p.ndjson").respond_with_data('{"resourceType":"Patient","id":"a"}\n')
    httpserver.expect_request("/files/err.ndjson").respond_with_data("")
    request = ExportRequest(level="patient", patients=["Patient/a"], types=["Patient"])
    status_url = await client.kick_off(request)
    body = json.loads(httpserver.log[0][0].get_data())
    assert {"name": "patient", "valueReference": {"reference": "Patient/a"}} in body["parameter"]
    result = await client.wait_for_manifest(status_url)
    assert result.shape == "4.0-ballot" and len(result.errors) == 1
    await download_manifest(client, result, tmp_path)
    files = [r for r, _ in httpserver.log if r.path.startswith("/files/")]
    assert all(r.headers["Authorization"] == "Bearer token-0" for r in files)


async def test_kick_off_refusal_carries_operation_outcome(
    httpserver: HTTPServer, client: BulkExportClient
) -> None:
    httpserver.expect_request("/fhir/$export").respond_with_json(
        outcome("_typeFilter is not supported"), status=400
    )
    with pytest.raises(FatalFhirError, match="_typeFilter is not supported"):
        await client.kick_off(ExportRequest(level="system"))


async def test_5xx_while_polling_gives_up_after_bounded_tries(
    httpserver: HTTPServer, client: BulkExportClient
) -> None:
    httpserver.expect_request("/status/3").respond_with_json(outcome("database down"), status=500)
    with pytest.raises(TemporaryFhirError, match="database down"):
        await client.wait_for_manifest(httpserver.url_for("/status/3"))


async def test_cancel_sends_delete(httpserver: HTTPServer, client: BulkExportClient) -> None:
    httpserver.expect_request("/status/4", method="DELETE").respond_with_data("", status=202)
    await client.cancel(httpserver.url_for("/status/4"))
    assert httpserver.log[0][0].method == "DELETE"


async def test_resumes_with_range_after_failure(
    httpserver: HTTPServer, client: BulkExportClient, tmp_path: Path
) -> None:
    part = tmp_path / "output" / "Patient.000.part"
    part.parent.mkdir()
    part.write_bytes(b'{"resourceType":"Patient","id":"a"}\n')  # left by a download cut off mid-way
    httpserver.expect_request("/files/p.ndjson").respond_with_data(
        '{"resourceType":"Patient","id":"b"}\n', status=206, headers={"Content-Range": "bytes 36-71/72"}
    )
    httpserver.expect_request("/files/err.ndjson").respond_with_data("")
    result_doc = manifest(httpserver, ballot=False, requires=False)
    from launch.bulk_manifest import parse_manifest

    report = await download_manifest(
        client, parse_manifest(result_doc, httpserver.url_for("/status")), tmp_path
    )
    assert [r["id"] for r in iter_ndjson(report.paths("output")[0])] == ["a", "b"]
    ranged = [r for r, _ in httpserver.log if r.path == "/files/p.ndjson"][0]
    assert ranged.headers["Range"] == "bytes=36-"


def test_retry_after_date_and_epoch() -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    from launch.bulk_export import retry_after_seconds

    now = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
    assert retry_after_seconds("12", now) == 12.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    # bulk-data-server's 429 sends an absolute Unix time, in milliseconds first
    assert retry_after_seconds(str(int((now.timestamp() + 5) * 1000)), now) == pytest.approx(5.0)
    assert retry_after_seconds(str(int(now.timestamp() + 9)), now) == pytest.approx(9.0)


async def test_token_renewed_once_when_it_expires_mid_download(
    httpserver: HTTPServer, client: BulkExportClient, tmp_path: Path
) -> None:
    def file(request: Any) -> Response:
        if request.headers.get("Authorization") == "Bearer token-0":
            return Response("", status=401)
        return Response('{"resourceType":"Patient","id":"a"}\n')

    httpserver.expect_request("/files/p.ndjson").respond_with_handler(file)
    httpserver.expect_request("/files/err.ndjson").respond_with_data("")
    from launch.bulk_manifest import parse_manifest

    document = manifest(httpserver, ballot=False, requires=True)
    report = await download_manifest(client, parse_manifest(document, httpserver.url_for("/s")), tmp_path)
    assert report.failed == [] and len(report.paths("output")) == 1


def _page(server: HTTPServer, names: list[str], next_path: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "transactionTime": "2026-12-01T00:00:00Z",
        "request": server.url_for("/fhir/Group/g1/$export"),
        "requiresAccessToken": True,
        "outputOrganizedBy": "Patient",
        "output": [{"url": server.url_for(f"/files/{name}")} for name in names],
        "error": [],
    }
    if next_path:
        document["link"] = [{"relation": "next", "url": server.url_for(next_path)}]
    return document


async def test_partial_manifests_hand_over_files_while_the_export_runs(
    httpserver: HTTPServer, client: BulkExportClient
) -> None:
    """allowPartialManifests: each 202 with a manifest hands over every page so far; a page already
    read is not read again unless it was the last (it may have gained a `next` link)."""
    first = _page(httpserver, ["b1.ndjson"])
    answers = [
        Response("", status=202, headers={"Retry-After": "1"}),  # nothing written yet
        Response(json.dumps(first), status=202, content_type="application/json"),
        Response(
            json.dumps(_page(httpserver, ["b1.ndjson"], "/manifest/2")),
            status=202,
            content_type="application/json",
        ),
        Response(
            json.dumps(_page(httpserver, ["b1.ndjson"], "/manifest/2")), content_type="application/json"
        ),
    ]
    httpserver.expect_request("/status/9").respond_with_handler(lambda _request: answers.pop(0))
    second = [_page(httpserver, ["b2.ndjson"]), _page(httpserver, ["b2.ndjson"], "/manifest/3")]
    httpserver.expect_request("/manifest/2").respond_with_handler(
        lambda _request: Response(json.dumps(second.pop(0)), content_type="application/json")
    )
    httpserver.expect_request("/manifest/3").respond_with_json(_page(httpserver, ["b3.ndjson", "b4.ndjson"]))
    handed: list[list[str]] = []

    async def on_partial(partial: Manifest) -> None:
        assert partial.organized_by == "Patient"
        handed.append([f.url.rsplit("/", 1)[1] for f in partial.output])

    result = await client.wait_for_manifest(httpserver.url_for("/status/9"), on_partial=on_partial)
    assert handed == [["b1.ndjson"], ["b1.ndjson", "b2.ndjson"]]
    assert [f.url.rsplit("/", 1)[1] for f in result.output] == [
        "b1.ndjson",
        "b2.ndjson",
        "b3.ndjson",
        "b4.ndjson",
    ]
    assert result.organized_by == "Patient" and all(f.type == "mixed" for f in result.output)
    pages = [r.path for r, _ in httpserver.log if r.path.startswith("/manifest/")]
    assert pages == ["/manifest/2", "/manifest/2", "/manifest/3"]


async def test_unreadable_partial_manifest_is_ignored_until_the_export_completes(
    httpserver: HTTPServer, client: BulkExportClient
) -> None:
    answers = [
        Response('{"output": "not a manifest"}', status=202, content_type="application/json"),
        Response(json.dumps(_page(httpserver, ["b1.ndjson"])), content_type="application/json"),
    ]
    httpserver.expect_request("/status/10").respond_with_handler(lambda _request: answers.pop(0))
    handed: list[Manifest] = []

    async def on_partial(partial: Manifest) -> None:
        handed.append(partial)

    result = await client.wait_for_manifest(httpserver.url_for("/status/10"), on_partial=on_partial)
    assert handed == [] and len(result.output) == 1


def test_organized_export_parameters_by_get_and_post() -> None:
    get = ExportRequest(group_id="g1", organize_output_by="Patient", allow_partial_manifests=True)
    assert ("organizeOutputBy", "Patient") in get.query() and ("allowPartialManifests", "true") in get.query()
    post = ExportRequest(group_id="g1", patients=["Patient/a"], organize_output_by="Patient")
    entries = post.parameters()["parameter"]
    assert {"name": "organizeOutputBy", "valueString": "Patient"} in entries
    assert not any(e["name"] == "allowPartialManifests" for e in entries)
    assert ExportRequest(group_id="g1").query() == []


def test_continues_in_file_is_resolved_against_the_manifest() -> None:
    document = {
        "transactionTime": "2026-12-01T00:00:00Z",
        "requiresAccessToken": True,
        "outputOrganizedBy": "Patient",
        "output": [{"url": "f/1.ndjson", "continuesInFile": "f/2.ndjson"}, {"url": "f/2.ndjson"}],
        "error": [],
    }
    parsed = parse_manifest(document, "https://ehr.example/fhir/status/1")
    assert parsed.output[0].continues_in == "https://ehr.example/fhir/status/f/2.ndjson"
    assert parsed.output[1].continues_in is None and parsed.organized_by == "Patient"

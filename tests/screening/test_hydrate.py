"""Report texts behind attachment URLs in a Bulk export are fetched bucket by bucket, for patients
with cancer and for every pathology report, into a texts file beside the bucket that the bucket
task inlines; a failed fetch is counted and its report kept; the bucket file is never rewritten."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx2
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from launch.fhir_client import FhirClient
from smartapp.screening import hydrate
from smartapp.screening.errors import ATTACHMENT_FAILED, ErrorLog
from smartapp.screening.hydrate import hydrate_bucket, patients_with_cancer
from smartapp.screening.texts import inline_texts, read_texts, texts_path
from tests.fhirmaps.builders import condition
from tests.screening.export import note, report

TEXT = "FINAL DIAGNOSIS: Invasive ductal carcinoma. HER2 (IHC): 2+ (equivocal). ISH not performed."


class Token:
    async def token(self) -> str:
        return "system-token"

    async def reauthenticate(self, stale: str | None = None) -> str:
        return "system-token"


async def test_texts_are_inlined_for_patients_with_cancer_and_for_pathology_reports(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("/fhir")
    httpserver.expect_request("/fhir/Binary/b1").respond_with_data(TEXT, content_type="text/plain")
    httpserver.expect_request("/fhir/Binary/b4").respond_with_data(TEXT, content_type="text/plain")
    httpserver.expect_request("/fhir/Binary/broken").respond_with_data("oops", status=500)
    (tmp_path / "Condition.ndjson").write_text(
        "\n".join(
            json.dumps(c)
            for c in (
                condition("c1", "C50.912", "Malignant neoplasm of left female breast", pid="p1"),
                condition("c2", "I10", "Essential hypertension", pid="p2"),
            )
        )
        + "\n"
    )
    reports = [
        ("p1", json.dumps(report("r1", "p1", f"{base}/Binary/b1"))),
        ("p2", json.dumps(note("r2", "p2", f"{base}/Binary/b2"))),
        ("p1", "{not json"),
        ("p1", json.dumps(report("r3", "p1", f"{base}/Binary/broken"))),
        ("p2", json.dumps(report("r4", "p2", f"{base}/Binary/b4"))),  # a pathology report: fetched
    ]
    bucket = tmp_path / "bucket-0.ndjson"
    bucket.write_text("".join(f"{pid}\t{line}\n" for pid, line in reports))
    errors = ErrorLog()
    needs = frozenset(patients_with_cancer((tmp_path / "Condition.ndjson",)))
    assert needs == {"p1"}
    async with httpx2.AsyncClient() as http:
        fetched = await hydrate_bucket(FhirClient(base, http, Token()), bucket, needs, errors)
    assert fetched == 2 and errors.counts[ATTACHMENT_FAILED] >= 1
    assert bucket.read_text() == "".join(f"{pid}\t{line}\n" for pid, line in reports)  # untouched
    texts = read_texts(bucket)
    # p2 has no cancer: its note is not fetched, its pathology report is; "broken" failed.
    assert list(texts) == [("p1", f"{base}/Binary/b1"), ("p2", f"{base}/Binary/b4")]
    resources = [json.loads(line) for pid, line in reports if pid == "p1" and line.startswith('{"')]
    inline_texts(resources, "p1", texts)
    by_id = {r["id"]: r for r in resources}
    assert base64.b64decode(by_id["r1"]["presentedForm"][0]["data"]).decode() == TEXT
    assert by_id["r1"]["presentedForm"][0]["contentType"] == "text/plain"
    assert "data" not in by_id["r3"]["presentedForm"][0]
    assert not any(request.path.endswith("/b2") for request, _ in httpserver.log)
    assert all(request.headers["Authorization"] == "Bearer system-token" for request, _ in httpserver.log)


def answer_batch(request: Request) -> Response:
    """An EHR's batch of Binary reads: Binary/b<n> holds "text <n>"."""
    entries = []
    for entry in json.loads(request.data)["entry"]:
        rid = entry["request"]["url"].removeprefix("Binary/")
        data = base64.b64encode(f"text {rid[1:]}".encode()).decode()
        binary = {"resourceType": "Binary", "id": rid, "contentType": "text/plain", "data": data}
        entries.append({"resource": binary, "response": {"status": "200 OK"}})
    body = {"resourceType": "Bundle", "type": "batch-response", "entry": entries}
    return Response(json.dumps(body), content_type="application/fhir+json")


@pytest.mark.parametrize("batches", [False, True], ids=["single-reads", "batches"])
async def test_many_texts_keep_every_line_in_file_order(
    tmp_path: Path, httpserver: HTTPServer, batches: bool
) -> None:
    """Several windows of batches give the same texts file whether the EHR offers batch (one
    request per batch) or not (one per text)."""
    base = httpserver.url_for("/fhir")
    count = 300
    for n in range(count):
        httpserver.expect_request(f"/fhir/Binary/b{n}").respond_with_data(
            f"text {n}", content_type="text/plain"
        )
    if batches:
        capability = {
            "resourceType": "CapabilityStatement",
            "rest": [{"mode": "server", "interaction": [{"code": "batch"}]}],
        }
        httpserver.expect_request("/fhir/metadata").respond_with_json(capability)
        httpserver.expect_request("/fhir", method="POST").respond_with_handler(answer_batch)
    lines = [json.dumps(report(f"r{n}", "p1", f"{base}/Binary/b{n}")) for n in range(count)]
    lines.insert(150, "{not json")  # a malformed line in the middle keeps its place
    bucket = tmp_path / "bucket-0.ndjson"
    bucket.write_text("".join(f"p1\t{line}\n" for line in lines))
    errors = ErrorLog()
    async with httpx2.AsyncClient() as http:
        fetched = await hydrate_bucket(FhirClient(base, http, Token()), bucket, frozenset({"p1"}), errors)
    assert fetched == count and not errors.counts
    texts = read_texts(bucket)
    parsed = [json.loads(line) for i, line in enumerate(lines) if i != 150]
    inline_texts(parsed, "p1", texts)
    assert len(texts) == count
    assert all(
        base64.b64decode(r["presentedForm"][0]["data"]).decode() == f"text {n}" for n, r in enumerate(parsed)
    )
    posts = sum(request.method == "POST" for request, _ in httpserver.log)
    reads = sum("/Binary/" in request.path for request, _ in httpserver.log)
    assert (posts, reads) == ((-(-count // hydrate.BATCH), 0) if batches else (0, count))


async def test_report_lines_are_found_as_a_line_by_line_read_finds_them(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """The last line without a newline, a line of another type that names a "url" (an extension)
    and a patient without cancer are each handled as in a line-by-line read (the search itself,
    block edges included: tests/screening/test_search.py)."""
    base = httpserver.url_for("/fhir")
    for n in range(3):
        httpserver.expect_request(f"/fhir/Binary/b{n}").respond_with_data(
            f"text {n}", content_type="text/plain"
        )
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "subject": {"reference": "Patient/p1"},
        "extension": [{"url": f"{base}/Binary/b9", "valueString": "x"}],
    }
    rows = [
        ("p1", json.dumps(report("r0", "p1", f"{base}/Binary/b0"))),
        ("p1", json.dumps(observation)),
        ("p2", json.dumps(note("r9", "p2", f"{base}/Binary/b9"))),
        ("p1", json.dumps(report("r1", "p1", f"{base}/Binary/b1"))),
        ("p1", json.dumps(report("r2", "p1", f"{base}/Binary/b2"))),
    ]
    bucket = tmp_path / "bucket-0.ndjson"
    bucket.write_text("\n".join(f"{pid}\t{line}" for pid, line in rows))  # no final newline
    errors = ErrorLog()
    async with httpx2.AsyncClient() as http:
        fetched = await hydrate_bucket(FhirClient(base, http, Token()), bucket, frozenset({"p1"}), errors)
    assert fetched == 3 and not errors.counts
    assert sorted(read_texts(bucket)) == [("p1", f"{base}/Binary/b{n}") for n in range(3)]
    assert not any(request.path.endswith("/b9") for request, _ in httpserver.log)


async def test_nothing_to_fetch_leaves_no_texts_file(tmp_path: Path, httpserver: HTTPServer) -> None:
    base = httpserver.url_for("/fhir")
    bucket = tmp_path / "bucket-0.ndjson"
    bucket.write_text(f"p2\t{json.dumps(note('r9', 'p2', f'{base}/Binary/b9'))}\n")
    async with httpx2.AsyncClient() as http:
        fetched = await hydrate_bucket(FhirClient(base, http, Token()), bucket, frozenset({"p1"}), ErrorLog())
    assert fetched == 0 and not texts_path(bucket).exists() and read_texts(bucket) == {}
    assert not bucket.with_name("bucket-0.ndjson.texts-partial").exists()


async def test_a_file_of_patient_blocks_is_hydrated_from_its_own_conditions(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    """A file organized by patient: the texts of the reports of patients with a cancer Condition in
    the same file (before or after the report), and of every pathology report; no other report's."""
    base = httpserver.url_for("/fhir")
    for name in ("b1", "b3", "b4"):
        httpserver.expect_request(f"/fhir/Binary/{name}").respond_with_data(name, content_type="text/plain")

    def header(pid: str) -> str:
        reference = {"reference": f"Patient/{pid}"}
        return json.dumps(
            {"resourceType": "Parameters", "parameter": [{"name": "header", "valueReference": reference}]}
        )

    lines = [
        header("p1"),
        json.dumps(report("r1", "p1", f"{base}/Binary/b1")),  # before its cancer Condition
        json.dumps(condition("c1", "C50.912", "Malignant neoplasm of left female breast", pid="p1")),
        header("p2"),
        json.dumps(condition("c2", "I10", "Essential hypertension", pid="p2")),
        json.dumps(note("r2", "p2", f"{base}/Binary/b2")),  # no cancer, not pathology: not fetched
        json.dumps(report("r4", "p2", f"{base}/Binary/b4")),  # a pathology report: fetched
        header("p3"),
        json.dumps(condition("c3", "C18.9", "Malignant neoplasm of colon, unspecified", pid="p3")),
        json.dumps(report("r3", "p3", f"{base}/Binary/b3")),
    ]
    path = tmp_path / "mixed.000.ndjson"
    path.write_text("\n".join(lines) + "\n")
    errors = ErrorLog()
    async with httpx2.AsyncClient() as http:
        headers = await hydrate.hydrate_blocks(FhirClient(base, http, Token()), path, errors)
    # The block headers come back from the same read (byte offsets of the header lines).
    offsets = [sum(len(line) + 1 for line in lines[:n]) for n in (0, 3, 7)]
    assert headers == list(zip(offsets, ["p1", "p2", "p3"], strict=True))
    assert not errors.counts
    assert sorted(read_texts(path)) == [
        ("p1", f"{base}/Binary/b1"),
        ("p2", f"{base}/Binary/b4"),
        ("p3", f"{base}/Binary/b3"),
    ]
    assert not any(request.path.endswith("/b2") for request, _ in httpserver.log)
    # A resumed run finds the texts file of the same file and asks the EHR for nothing.
    requests = len(httpserver.log)
    async with httpx2.AsyncClient() as http:
        assert await hydrate.hydrate_blocks(FhirClient(base, http, Token()), path, errors) == headers
    assert len(httpserver.log) == requests and len(read_texts(path)) == 3

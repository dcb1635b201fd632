"""Report texts behind attachment URLs in a Bulk export are fetched and inlined, bucket by bucket,
for patients with cancer only; a failed fetch is counted and its report kept; every other line is
written back as it was read."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx2
from pytest_httpserver import HTTPServer

from launch.fhir_client import FhirClient
from smartapp.screening.errors import ATTACHMENT_FAILED, ErrorLog
from smartapp.screening.hydrate import hydrate_bucket, patients_with_cancer
from tests.fhirmaps.builders import condition
from tests.screening.export import report

TEXT = "FINAL DIAGNOSIS: Invasive ductal carcinoma. HER2 (IHC): 2+ (equivocal). ISH not performed."


class Token:
    async def token(self) -> str:
        return "system-token"

    async def reauthenticate(self, stale: str | None = None) -> str:
        return "system-token"


async def test_texts_are_inlined_for_patients_with_cancer_only(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    base = httpserver.url_for("/fhir")
    httpserver.expect_request("/fhir/Binary/b1").respond_with_data(TEXT, content_type="text/plain")
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
        ("p2", json.dumps(report("r2", "p2", f"{base}/Binary/b2"))),
        ("p1", "{not json"),
        ("p1", json.dumps(report("r3", "p1", f"{base}/Binary/broken"))),
    ]
    bucket = tmp_path / "bucket-0.ndjson"
    bucket.write_text("".join(f"{pid}\t{line}\n" for pid, line in reports))
    errors = ErrorLog()
    needs = frozenset(patients_with_cancer((tmp_path / "Condition.ndjson",)))
    assert needs == {"p1"}
    async with httpx2.AsyncClient() as http:
        fetched = await hydrate_bucket(FhirClient(base, http, Token()), bucket, needs, errors)
    keyed = [line.split("\t", 1) for line in bucket.read_text().splitlines()]
    assert [pid for pid, _ in keyed] == ["p1", "p2", "p1", "p1"]
    lines = [line for _, line in keyed]
    assert fetched == 1 and len(lines) == 4 and "{not json" in lines
    by_id = {r["id"]: r for r in (json.loads(line) for line in lines if line.startswith('{"'))}
    assert base64.b64decode(by_id["r1"]["presentedForm"][0]["data"]).decode() == TEXT
    assert "data" not in by_id["r2"]["presentedForm"][0]  # no cancer: not fetched
    assert "data" not in by_id["r3"]["presentedForm"][0] and errors.counts[ATTACHMENT_FAILED] >= 1
    # Nothing inlined: written back as it was read, byte for byte.
    assert lines[1] == json.dumps(report("r2", "p2", f"{base}/Binary/b2"))
    assert lines[3] == json.dumps(report("r3", "p1", f"{base}/Binary/broken"))
    assert not any(request.path.endswith("/b2") for request, _ in httpserver.log)
    assert all(request.headers["Authorization"] == "Bearer system-token" for request, _ in httpserver.log)


async def test_many_batches_keep_every_line_in_file_order(tmp_path: Path, httpserver: HTTPServer) -> None:
    base = httpserver.url_for("/fhir")
    count = 300  # several windows of batches
    for n in range(count):
        httpserver.expect_request(f"/fhir/Binary/b{n}").respond_with_data(
            f"text {n}", content_type="text/plain"
        )
    lines = [json.dumps(report(f"r{n}", "p1", f"{base}/Binary/b{n}")) for n in range(count)]
    lines.insert(150, "{not json")  # a malformed line in the middle keeps its place
    bucket = tmp_path / "bucket-0.ndjson"
    bucket.write_text("".join(f"p1\t{line}\n" for line in lines))
    errors = ErrorLog()
    async with httpx2.AsyncClient() as http:
        fetched = await hydrate_bucket(FhirClient(base, http, Token()), bucket, frozenset({"p1"}), errors)
    assert fetched == count and not errors.counts
    out = [line.split("\t", 1)[1] for line in bucket.read_text().splitlines()]
    assert out[150] == "{not json"
    parsed = [json.loads(line) for i, line in enumerate(out) if i != 150]
    assert [r["id"] for r in parsed] == [f"r{n}" for n in range(count)]
    assert all(
        base64.b64decode(r["presentedForm"][0]["data"]).decode() == f"text {n}" for n, r in enumerate(parsed)
    )

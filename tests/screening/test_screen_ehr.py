"""`secondlook screen --ehr ISS --group ID [--since auto]` against a Bulk Data server on pytest-httpserver:
Backend Services token, Group $export, polling, download, screening; then an incremental run."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from launch.registry import Registry
from smartapp.cli.main import main
from smartapp.db import create_sync_engine
from smartapp.screening.errors import ErrorLog
from smartapp.screening.hydrate import BucketHydrator
from smartapp.screening.inputs import InputError
from smartapp.worklist.tables import screening_runs, worklist_entries
from tests.fhirmaps.builders import condition
from tests.screening.export import named, report, write_export
from tests.support import app_cipher

# What a screen asks an export for (`_type`): the types the engine reads, without Binary (a report's
# text is fetched through its attachment URL) and without Claim, ExplanationOfBenefit, Immunization...
READ_TYPES = (
    "Appointment,CarePlan,Communication,Condition,Coverage,DiagnosticReport,DocumentReference,"
    "Encounter,FamilyMemberHistory,Medication,MedicationAdministration,MedicationRequest,"
    "MedicationStatement,Observation,Patient,Procedure,QuestionnaireResponse,ResearchSubject,"
    "ServiceRequest"
)


class BulkServer:
    """Serves smart-configuration, a token endpoint, Group/g1/$export and its files."""

    def __init__(self, server: HTTPServer, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.kickoffs: list[dict[str, Any]] = []
        self.jobs: dict[str, list[Path]] = {}
        # Answer a kick-off naming `_type` with this status: 400 from a server that cannot filter by
        # type, 403 from one whose token does not cover every type named; 0: accept it.
        self.refuse_types = 0
        server.expect_request("/fhir/.well-known/smart-configuration").respond_with_json(
            {
                "token_endpoint": server.url_for("/token"),
                "capabilities": ["client-confidential-asymmetric"],
                "grant_types_supported": ["client_credentials"],
                "code_challenge_methods_supported": ["S256"],
            }
        )
        server.expect_request("/token", method="POST").respond_with_json(
            {"access_token": "tok", "token_type": "bearer", "expires_in": 300, "scope": "system/*.rs"}
        )
        server.expect_request("/fhir/Group/g1/$export").respond_with_handler(self.kick_off)
        server.expect_request("/fhir/Group/g1").respond_with_json(
            {"resourceType": "Group", "id": "g1", "type": "person", "actual": True, "quantity": 4}
        )
        server.expect_request("/fhir/status/1").respond_with_handler(lambda r: self.manifest("1"))
        server.expect_request("/fhir/status/2").respond_with_handler(lambda r: self.manifest("2"))
        server.expect_request("/fhir/status/3").respond_with_handler(lambda r: self.manifest("3"))
        for name in ("full", "delta", "patients"):
            (folder / name).mkdir(parents=True, exist_ok=True)

    def refusal(self, request: Request) -> Response | None:
        """An OperationOutcome for a kick-off this server does not take, else None."""
        body = json.loads(request.data) if request.data else {}
        named = {entry["name"] for entry in body.get("parameter", [])}
        if not (self.refuse_types and ("_type" in request.args or "_type" in named)):
            return None
        self.kickoffs.append({"method": request.method, "args": dict(request.args), "body": body or None})
        if self.refuse_types == 403:
            issue = {
                "severity": "error",
                "code": "forbidden",
                "diagnostics": "The scopes do not allow Coverage",
            }
        else:
            issue = {"severity": "error", "code": "not-supported", "diagnostics": "_type is not supported"}
        body = json.dumps({"resourceType": "OperationOutcome", "issue": [issue]})
        return Response(body, status=self.refuse_types)

    def kick_off(self, request: Request) -> Response:
        assert request.headers.get("Authorization") == "Bearer tok"
        refused = self.refusal(request)
        if refused is not None:
            return refused
        body = json.loads(request.data) if request.data else None
        self.kickoffs.append({"method": request.method, "args": dict(request.args), "body": body})
        job = str(len(self.kickoffs))
        kind = "patients" if body else ("delta" if "_since" in request.args else "full")
        self.jobs[job] = sorted((self.folder / kind).glob("*.ndjson"))
        for path in self.jobs[job]:
            self.server.expect_request(f"/files/{job}/{path.name}").respond_with_data(path.read_bytes())
        return Response("", status=202, headers={"Content-Location": f"/fhir/status/{job}"})

    def manifest(self, job: str) -> Response:
        document = {
            "transactionTime": f"2026-12-0{job}T00:00:00Z",
            "requiresAccessToken": True,
            "request": "x",
            "output": [
                {"type": p.stem, "url": self.server.url_for(f"/files/{job}/{p.name}")} for p in self.jobs[job]
            ],
            "error": [],
        }
        return Response(json.dumps(document), status=200, content_type="application/json")


@pytest.fixture
def bulk(tmp_path: Path, httpserver: HTTPServer) -> BulkServer:
    """The Bulk Data server, serving the test export (tests/screening/export.py) as a full export."""
    server = BulkServer(httpserver, tmp_path / "served")
    write_export(server.folder / "full")
    return server


def test_group_export_then_incremental_run_rescreens_only_changed_patients_in_full(
    tmp_path: Path,
    bulk: BulkServer,
    registry: str,
    cluster: LocalCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    served = bulk.folder
    db = tmp_path / "wl.db"
    args = [
        "screen",
        "--ehr",
        registry,
        "--group",
        "g1",
        "--as-of",
        "2026-03-01",
        "--since",
        "auto",
        "--scheduler",
        cluster.scheduler_address,
        "--database-url",
        f"sqlite:///{db}",
    ]
    assert main(args) == 0, capsys.readouterr().err
    first = json.loads(capsys.readouterr().out)
    assert first["run"]["patients"] == 4
    # No earlier run: a full export of the types the engine reads, asked for in patient blocks
    # (this server ignores both and sends files by type, which are partitioned after the export).
    assert bulk.kickoffs[0]["args"] == {
        "_type": READ_TYPES,
        "organizeOutputBy": "Patient",
        "allowPartialManifests": "true",
    }
    # p-none's hypertension becomes a GIST; the delta holds only that Condition.
    gist = condition("c-none", "C49.A0", "Gastrointestinal stromal tumor", pid="p-none")
    (served / "delta" / "Condition.ndjson").write_text(json.dumps(gist) + "\n")
    write_export(served / "patients", none_gets_cancer=True)
    for path in (served / "patients").glob("*.ndjson"):  # the server answers with p-none's records only
        lines = [
            line for line in path.read_text().splitlines() if "p-none" in line or path.stem == "Medication"
        ]
        path.write_text("\n".join(lines) + "\n")
    assert main(args) == 0, capsys.readouterr().err
    second = json.loads(capsys.readouterr().out)
    assert bulk.kickoffs[1]["args"] == {"_since": "2026-12-01T00:00:00Z", "_type": READ_TYPES}
    assert bulk.kickoffs[2]["method"] == "POST"
    assert bulk.kickoffs[2]["body"]["parameter"] == [
        *({"name": "_type", "valueString": name} for name in READ_TYPES.split(",")),
        {"name": "patient", "valueReference": {"reference": "Patient/p-none"}},
    ]
    assert second["run"]["patients"] == 1
    with create_sync_engine(f"sqlite:///{db}", app_cipher(f"sqlite:///{db}")).connect() as conn:
        entries = {r.patient_id: r for r in conn.execute(select(worklist_entries))}
        runs = list(conn.execute(select(screening_runs).order_by(screening_runs.c.started_at)))
    assert (entries["p-none"].change, entries["p-none"].triggers) == ("changed", "rare-cancer")
    assert entries["p-rare"].change == "new" and entries["p-rare"].last_run_id == runs[0].id
    assert [(r.source, r.group_id, r.transaction_time) for r in runs] == [
        (registry, "g1", "2026-12-01T00:00:00Z"),
        (registry, "g1", "2026-12-02T00:00:00Z"),
    ]


def test_unregistered_ehr_is_a_one_line_error(
    registry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "screen",
                "--ehr",
                "https://unknown.example/fhir",
                "--group",
                "g1",
                "--database-url",
                f"sqlite:///{tmp_path / 'wl.db'}",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("secondlook screen:") and "not a registered EHR" in err and err.count("\n") == 1


def fact_references(out: dict[str, Any], patient: str) -> set[str]:
    """The resources a screened patient's findings cite as facts (`--format json` output)."""
    screened = next(p for p in out["patients"] if p["patient"] == patient)
    return {fact["reference"] for finding in screened["findings"] for fact in finding["facts"]}


def screen_args(registry: str, cluster: LocalCluster, db: Path, work: Path) -> list[str]:
    return [
        "screen",
        "--ehr",
        registry,
        "--group",
        "g1",
        "--as-of",
        "2026-03-01",
        "--scheduler",
        cluster.scheduler_address,
        "--database-url",
        f"sqlite:///{db}",
        "--work-dir",
        str(work),
    ]


def unavailable() -> Response:
    return Response("", status=503, headers={"Retry-After": "0"})


def test_an_interrupted_export_is_resumed_not_started_again(
    tmp_path: Path,
    bulk: BulkServer,
    registry: str,
    cluster: LocalCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ready = bulk.manifest
    bulk.manifest = lambda job: unavailable()  # type: ignore[method-assign]
    args = screen_args(registry, cluster, tmp_path / "wl.db", tmp_path / "work")
    assert main(args) == 2
    assert "The export is kept: run the same command again to resume it." in capsys.readouterr().err
    [kept] = (tmp_path / "work" / "secondlook-exports").iterdir()
    assert json.loads((kept / "full" / "export-job.json").read_text())["status_url"].endswith(
        "/fhir/status/1"
    )
    bulk.manifest = ready  # type: ignore[method-assign]
    assert main(args) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["run"]["patients"] == 4
    assert len(bulk.kickoffs) == 1  # the same export, picked up by its status URL
    assert not kept.exists()  # a finished screen leaves no export behind


def test_an_export_the_ehr_forgot_is_started_anew_without_its_old_files(
    tmp_path: Path,
    bulk: BulkServer,
    registry: str,
    cluster: LocalCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ready = bulk.manifest
    bulk.manifest = lambda job: unavailable()  # type: ignore[method-assign]
    args = screen_args(registry, cluster, tmp_path / "wl.db", tmp_path / "work")
    assert main(args) == 2
    [kept] = (tmp_path / "work" / "secondlook-exports").iterdir()
    stale = kept / "full" / "output" / "Condition.000.ndjson"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text('{"resourceType": "Condition", "id": "from-the-old-export"}\n')
    capsys.readouterr()
    bulk.manifest = lambda job: (  # type: ignore[method-assign]
        Response(json.dumps({"resourceType": "OperationOutcome"}), status=404) if job == "1" else ready(job)
    )
    assert main(args) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "the earlier export is no longer available" in captured.err
    assert json.loads(captured.out)["run"]["patients"] == 4
    assert len(bulk.kickoffs) == 2


def test_an_ehr_that_refuses_type_is_asked_again_without_and_that_export_resumes(
    tmp_path: Path,
    bulk: BulkServer,
    registry: str,
    cluster: LocalCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bulk.refuse_types = 400
    ready = bulk.manifest
    bulk.manifest = lambda job: unavailable()  # type: ignore[method-assign]
    args = screen_args(registry, cluster, tmp_path / "wl.db", tmp_path / "work")
    assert main(args) == 2
    err = capsys.readouterr().err
    refused = "start the bulk export: _type is not supported; asking again without"
    assert f"{refused} organizeOutputBy, allowPartialManifests\n" in err and f"{refused} _type\n" in err
    by_patient = {"organizeOutputBy": "Patient", "allowPartialManifests": "true"}
    assert [k["args"] for k in bulk.kickoffs] == [
        {"_type": READ_TYPES, **by_patient},
        {"_type": READ_TYPES},
        by_patient,  # accepted (and ignored: this server sends files by type)
    ]
    bulk.manifest = ready  # type: ignore[method-assign]
    assert main(args) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["run"]["patients"] == 4
    # The export without `_type` is picked up by its status URL: not refused again, not restarted.
    assert len(bulk.kickoffs) == 3


def test_an_ehr_whose_token_does_not_cover_every_type_is_asked_for_what_it_allows(
    tmp_path: Path,
    bulk: BulkServer,
    registry: str,
    cluster: LocalCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A registration whose backend scopes name fewer types than the engine reads: the EHR refuses
    # the `_type` list (403) and exports what the token allows when asked without it.
    bulk.refuse_types = 403
    assert main(screen_args(registry, cluster, tmp_path / "wl.db", tmp_path / "work")) == 0
    captured = capsys.readouterr()
    assert "The scopes do not allow Coverage; asking again without _type" in captured.err
    assert json.loads(captured.out)["run"]["patients"] == 4
    assert [k["args"] for k in bulk.kickoffs][-1] == {
        "organizeOutputBy": "Patient",
        "allowPartialManifests": "true",
    }


def test_an_export_that_fails_after_its_kick_off_is_reported_not_asked_for_again(
    tmp_path: Path,
    bulk: BulkServer,
    registry: str,
    cluster: LocalCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    issue = {"severity": "error", "code": "processing", "diagnostics": "Export job failed"}
    bulk.manifest = lambda job: Response(  # type: ignore[method-assign]
        json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}), status=400
    )
    assert main(screen_args(registry, cluster, tmp_path / "wl.db", tmp_path / "work")) == 2
    assert "Export job failed" in capsys.readouterr().err
    assert len(bulk.kickoffs) == 1  # a failed export is not a refused kick-off


PATHOLOGY_TEXT = (
    "FINAL DIAGNOSIS: Stomach, wedge resection: gastrointestinal stromal tumor, spindle cell type, "
    "5.5 cm, mitotic rate 7 per 5 mm2. Margins negative."
)


def serve_pathology_text(folder: Path, httpserver: HTTPServer) -> list[tuple[str, str]]:
    """p-rare's surgical pathology report written into the export `folder`, with its text only
    behind a Binary URL on `httpserver`; returns (path, Authorization header) of each fetch."""
    pathology = {
        "resourceType": "DiagnosticReport",
        "id": "dr-rare",
        "status": "final",
        "subject": {"reference": "Patient/p-rare"},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "LP7839-6"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "60567-5"}], "text": "Surgical pathology"},
        "effectiveDateTime": "2026-02-10",
        "presentedForm": [{"contentType": "text/plain", "url": httpserver.url_for("/fhir/Binary/path-rare")}],
    }
    (folder / "DiagnosticReport.ndjson").write_text(json.dumps(pathology) + "\n")
    fetched: list[tuple[str, str]] = []

    def binary(request: Request) -> Response:
        fetched.append((request.path, request.headers.get("Authorization", "")))
        return Response(PATHOLOGY_TEXT, content_type="text/plain")

    httpserver.expect_request("/fhir/Binary/path-rare").respond_with_handler(binary)
    return fetched


def serve_uncoded_pathology(folder: Path, httpserver: HTTPServer) -> list[str]:
    """p-path: a patient with no Condition at all, only a surgical pathology report whose text (a
    GIST) is behind a URL, as a new diagnosis reaches a chart before anyone codes it. Added to the
    export `folder`; returns the path of each fetch of that text."""
    with (folder / "Patient.ndjson").open("a") as out:
        out.write(json.dumps(named("p-path", "Dee", "Path")) + "\n")
    url = httpserver.url_for("/fhir/Binary/path-only")
    with (folder / "DiagnosticReport.ndjson").open("a") as out:
        out.write(json.dumps(report("dr-path", "p-path", url) | {"effectiveDateTime": "2026-02-12"}) + "\n")
    fetched: list[str] = []

    def binary(request: Request) -> Response:
        fetched.append(request.path)
        return Response(PATHOLOGY_TEXT, content_type="text/plain")

    httpserver.expect_request("/fhir/Binary/path-only").respond_with_handler(binary)
    return fetched


def test_a_pathology_report_is_fetched_for_a_patient_with_no_coded_cancer(
    tmp_path: Path,
    httpserver: HTTPServer,
    bulk: BulkServer,
    registry: str,
    cluster: LocalCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fetched = serve_uncoded_pathology(bulk.folder / "full", httpserver)
    assert main(screen_args(registry, cluster, tmp_path / "wl.db", tmp_path / "work")) == 0
    out = json.loads(capsys.readouterr().out)
    assert fetched == ["/fhir/Binary/path-only"]
    # The GIST is known from the report's text alone, and found as a rare cancer.
    assert "DiagnosticReport/dr-path" in fact_references(out, "Patient/p-path")


def test_report_texts_are_fetched_while_the_screen_runs_and_reach_the_engine(
    tmp_path: Path,
    httpserver: HTTPServer,
    bulk: BulkServer,
    registry: str,
    cluster: LocalCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fetched = serve_pathology_text(bulk.folder / "full", httpserver)
    args = screen_args(registry, cluster, tmp_path / "wl.db", tmp_path / "work")
    assert main(args) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert [authorization for _, authorization in fetched] == ["Bearer tok"] and bulk.kickoffs
    assert "attachment-failed" not in out["run"]["errors"]
    # The diagnosis read from the report's text (it has no other content) is among the facts.
    assert "DiagnosticReport/dr-rare" in fact_references(out, "Patient/p-rare")


def test_a_hydration_that_cannot_get_a_token_is_a_one_line_error(
    tmp_path: Path, httpserver: HTTPServer, registry: str
) -> None:
    registration = Registry.from_file(tmp_path / "ehrs.toml").get(registry)
    assert registration is not None
    httpserver.expect_request("/fhir/.well-known/smart-configuration").respond_with_data("", status=404)
    bucket = tmp_path / "bucket-0.ndjson"
    bucket.write_text(f"p1\t{json.dumps(report('r1', 'p1', f'{registry}/Binary/b1'))}\n")
    stream = BucketHydrator(registration, frozenset({"p1"})).stream([bucket], ErrorLog())
    with pytest.raises(
        InputError, match=r"^report texts from http://localhost:\d+/fhir could not be fetched: "
    ):
        next(stream)


def test_a_screen_that_ends_stops_its_hydration_mid_bucket(
    tmp_path: Path, httpserver: HTTPServer, bulk: BulkServer, registry: str
) -> None:
    # `bulk` serves discovery and the token endpoint.

    def slow(request: Request) -> Response:
        time.sleep(2.0)
        return Response("text", content_type="text/plain")

    httpserver.expect_request("/fhir/Binary/slow").respond_with_handler(slow)
    registration = Registry.from_file(tmp_path / "ehrs.toml").get(registry)
    assert registration is not None
    buckets = [tmp_path / f"bucket-{n}.ndjson" for n in range(2)]
    for bucket in buckets:
        bucket.write_text(f"p1\t{json.dumps(report('r1', 'p1', f'{registry}/Binary/slow'))}\n")
    stream = BucketHydrator(registration, frozenset({"p1"})).stream(buckets, ErrorLog())
    assert next(stream) == buckets[0]  # its text took the EHR 2 s
    began = time.monotonic()
    stream.close()  # the screen ends while the second bucket's text is on its way
    assert time.monotonic() - began < 1.0
    assert not any(t.name == "secondlook-hydrate" for t in threading.enumerate())

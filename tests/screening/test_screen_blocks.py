"""`secondlook screen --ehr` against a Bulk Data server that organizes its export by patient
(Bulk Data 3.0 `organizeOutputBy=Patient`) and lists files while it runs (`allowPartialManifests`):
the files are screened as they arrive, without the partition pass, and give the worklist what the
same export by type gives; a server that refuses the parameters is asked again without them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from launch.bulk_export import ExportProgress
from launch.bulk_manifest import ManifestFile
from launch.fhir_client import FhirClient
from launch.http import create_http_client
from smartapp.cli.main import main
from smartapp.db import create_sync_engine
from smartapp.screening import block_export, hydrate
from smartapp.screening.block_export import BlockExport, group_size
from smartapp.screening.blocks import complete_chains
from smartapp.worklist.tables import screening_runs
from tests.launch.fakes import StaticTokens
from tests.screening.export import write_export
from tests.screening.test_screen_ehr import (
    READ_TYPES,
    BulkServer,
    fact_references,
    screen_args,
    serve_pathology_text,
    serve_uncoded_pathology,
)
from tests.support import app_cipher


def _owner(resource: dict[str, Any]) -> str | None:
    if resource["resourceType"] == "Patient":
        return str(resource["id"])
    for key in ("subject", "patient"):
        reference = (resource.get(key) or {}).get("reference", "")
        if reference.startswith("Patient/"):
            return str(reference.removeprefix("Patient/"))
    return None


def _header(pid: str) -> str:
    return json.dumps(
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "header", "valueReference": {"reference": f"Patient/{pid}"}}],
        }
    )


def block_files(folder: Path) -> list[list[str]]:
    """The export of `folder` (one file per type) as three files of patient blocks: the first starts
    with a resource of no patient (before any header), the Medication is repeated in every block,
    and p-rare's block goes on from the second file into the third (its header repeated there)."""
    blocks: dict[str, list[str]] = {}
    loose: list[str] = []
    shared: list[str] = []
    malformed: list[str] = []
    for path in sorted(folder.glob("*.ndjson")):
        for line in path.read_text().splitlines():
            try:
                resource = json.loads(line)
            except ValueError:
                malformed.append(line)
                continue
            owner = _owner(resource)
            if resource["resourceType"] == "Medication":
                shared.append(line)
            elif owner is None:
                loose.append(line)
            else:
                blocks.setdefault(owner, []).append(line)
    for lines in blocks.values():
        lines.sort(key=lambda line: json.loads(line)["resourceType"] != "Patient")
    rare = blocks.pop("p-rare")
    first = loose + [line for pid in sorted(blocks) for line in [_header(pid), *blocks[pid], *shared]]
    second = [_header("p-rare"), *rare[:2]]
    third = [_header("p-rare"), *rare[2:], *shared, *malformed]
    return [first, second, third]


class BlockServer(BulkServer):
    """BulkServer that answers a kick-off with organizeOutputBy=Patient by files of patient blocks,
    listed in a partial manifest (202) before the complete one (200); or refuses such a kick-off."""

    def __init__(self, server: HTTPServer, folder: Path, refuse: bool = False, missing: int = 0) -> None:
        super().__init__(server, folder)
        self.refuse = refuse
        self.missing = missing  # this file (1, 2 or 3) answers 404
        self.polls: dict[str, int] = {}
        self.files: dict[str, list[str]] = {}

    def kick_off(self, request: Request) -> Response:
        if "organizeOutputBy" not in request.args:
            return super().kick_off(request)
        if self.refuse:
            self.kickoffs.append({"method": request.method, "args": dict(request.args), "body": None})
            issue = {"severity": "error", "code": "not-supported", "diagnostics": "organizeOutputBy"}
            return Response(json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}), status=400)
        response = super().kick_off(request)
        job = str(len(self.kickoffs))
        self.files[job] = []
        for index, lines in enumerate(block_files(self.folder / "full"), start=1):
            name = f"blocks-{index}.ndjson"
            served = self.server.expect_request(f"/files/{job}/{name}")
            if index == self.missing:
                served.respond_with_data("", status=404)
            else:
                served.respond_with_data("\n".join(lines) + "\n")
            self.files[job].append(self.server.url_for(f"/files/{job}/{name}"))
        return response

    def manifest(self, job: str) -> Response:
        if job not in self.files:
            return super().manifest(job)
        self.polls[job] = self.polls.get(job, 0) + 1
        one, two, three = self.files[job]
        output: list[dict[str, Any]] = [{"url": one}]
        if self.polls[job] > 1:
            output += [{"url": two, "continuesInFile": three}, {"url": three}]
        document = {
            "transactionTime": f"2026-12-0{job}T00:00:00Z",
            "requiresAccessToken": True,
            "request": "x",
            "outputOrganizedBy": "Patient",
            "output": output,
            "error": [],
        }
        status = 202 if self.polls[job] == 1 else 200
        return Response(
            json.dumps(document), status=status, content_type="application/json", headers={"Retry-After": "0"}
        )


def _screen(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(args) == 0, capsys.readouterr().err
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_an_export_by_patient_is_screened_as_it_arrives_and_matches_the_export_by_type(
    tmp_path: Path,
    httpserver: HTTPServer,
    registry: str,
    cluster: LocalCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    by_type_server = BulkServer(httpserver, tmp_path / "served")
    write_export(by_type_server.folder / "full")
    serve_pathology_text(by_type_server.folder / "full", httpserver)
    by_type = _screen(screen_args(registry, cluster, tmp_path / "a.db", tmp_path / "work-a"), capsys)
    httpserver.clear()

    server = BlockServer(httpserver, tmp_path / "served")
    fetched = serve_pathology_text(server.folder / "full", httpserver)
    db = tmp_path / "b.db"
    blocks = _screen(screen_args(registry, cluster, db, tmp_path / "work-b"), capsys)

    assert server.kickoffs[0]["args"] == {
        "_type": READ_TYPES,
        "organizeOutputBy": "Patient",
        "allowPartialManifests": "true",
    }
    assert server.polls == {"1": 2}  # one partial manifest, then the complete one
    assert [path for path, _ in fetched] == ["/fhir/Binary/path-rare"]  # the text of the patient with cancer
    # The same patients and findings as the export by type; p-rare's block read across two files.
    assert blocks["patients"] == by_type["patients"]
    assert blocks["run"]["patients"] == by_type["run"]["patients"] == 4
    assert "DiagnosticReport/dr-rare" in fact_references(blocks, "Patient/p-rare")
    errors = blocks["run"]["errors"]
    assert errors["malformed-line"] == 1 and errors["outside-block"] == 1  # the Observation of no patient
    assert errors["patient-not-in-export"] == 1  # p-ghost: a block without its Patient
    with create_sync_engine(f"sqlite:///{db}", app_cipher(f"sqlite:///{db}")).connect() as conn:
        run = conn.execute(select(screening_runs)).one()
    assert (run.status, run.transaction_time, run.patients_total) == ("finished", "2026-12-01T00:00:00Z", 4)


def test_a_server_that_refuses_organize_output_by_is_asked_for_the_export_by_type(
    tmp_path: Path,
    httpserver: HTTPServer,
    registry: str,
    cluster: LocalCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = BlockServer(httpserver, tmp_path / "served", refuse=True)
    write_export(server.folder / "full")
    out = _screen(screen_args(registry, cluster, tmp_path / "wl.db", tmp_path / "work"), capsys)
    assert [k["args"] for k in server.kickoffs] == [
        {"_type": READ_TYPES, "organizeOutputBy": "Patient", "allowPartialManifests": "true"},
        {"_type": READ_TYPES},
    ]
    assert out["run"]["patients"] == 4 and out["run"]["errors"]["no-patient-reference"] == 1


def test_an_export_by_patient_fetches_the_pathology_report_of_a_patient_with_no_coded_cancer(
    tmp_path: Path,
    httpserver: HTTPServer,
    registry: str,
    cluster: LocalCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = BlockServer(httpserver, tmp_path / "served")
    write_export(server.folder / "full")
    fetched = serve_uncoded_pathology(server.folder / "full", httpserver)
    out = _screen(screen_args(registry, cluster, tmp_path / "wl.db", tmp_path / "work"), capsys)
    assert server.files and fetched == ["/fhir/Binary/path-only"]
    assert "DiagnosticReport/dr-path" in fact_references(out, "Patient/p-path")


def _file(url: str, continues_in: str | None = None) -> ManifestFile:
    return ManifestFile(type="mixed", url=url, continues_in=continues_in)


def test_chains_wait_for_their_continuation_and_end_at_a_loop() -> None:
    a, b, c = _file("a", "b"), _file("b"), _file("c", "c")
    emitted: set[str] = set()
    paths = {"a": Path("a"), "b": Path("b"), "c": Path("c")}
    # b not listed yet, then not downloaded yet: a waits. c continues in itself (a server's
    # mistake): it has no start, and is given at the end.
    assert complete_chains((a, c), paths, emitted, final=False) == []
    assert complete_chains((a, c, b), {"a": Path("a"), "c": Path("c")}, emitted, final=False) == []
    assert complete_chains((a, c, b), paths, emitted, final=False) == [[Path("a"), Path("b")]]
    assert complete_chains((a, c, b), paths, emitted, final=True) == [[Path("c")]]
    assert complete_chains((a, c, b), paths, emitted, final=True) == []  # each file given once
    # At the end, a chain is given with the files that could be downloaded.
    assert complete_chains((_file("x", "y"), _file("y")), {"x": Path("x")}, set(), final=True) == [
        [Path("x")]
    ]


@pytest.mark.parametrize(
    ("answer", "status", "size"),
    [
        ({"resourceType": "Group", "id": "g1", "quantity": 7, "member": [{}]}, 200, 7),
        ({"resourceType": "Group", "id": "g1", "member": [{}, {}, {}]}, 200, 3),
        ({"resourceType": "Group", "id": "g1"}, 200, None),
        (
            {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "forbidden"}]},
            403,
            None,
        ),
    ],
)
async def test_the_progress_total_is_the_group_size_when_it_can_be_read(
    httpserver: HTTPServer, answer: dict[str, Any], status: int, size: int | None
) -> None:
    httpserver.expect_request("/fhir/Group/g1").respond_with_json(answer, status=status)
    async with create_http_client(timeout=5.0) as http:
        client = FhirClient(httpserver.url_for("/fhir"), http, StaticTokens())
        assert await group_size(client, "g1") == size


def test_a_downloaded_export_by_patient_is_screened_from_its_manifest_without_a_partition(
    tmp_path: Path, cluster: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    by_type = write_export(tmp_path / "by-type")
    folder = tmp_path / "by-patient"
    folder.mkdir()
    names = []
    for index, lines in enumerate(block_files(by_type), start=1):
        names.append(f"blocks-{index}.ndjson")
        (folder / names[-1]).write_text("\n".join(lines) + "\n")
    manifest = {
        "transactionTime": "2026-12-03T00:00:00Z",
        "requiresAccessToken": False,
        "outputOrganizedBy": "Patient",
        "output": [{"url": names[0]}, {"url": names[1], "continuesInFile": names[2]}, {"url": names[2]}],
        "error": [],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))

    def screen(target: Path, db: str) -> dict[str, Any]:
        args = ["screen", str(target), "--as-of", "2026-03-01", "--format", "json"]
        args += ["--scheduler", cluster.scheduler_address, "--database-url", f"sqlite:///{tmp_path / db}"]
        return _screen(args, capsys)

    typed = screen(by_type, "a.db")
    blocks = screen(folder / "manifest.json", "b.db")
    assert blocks["patients"] == typed["patients"]
    assert blocks["run"]["patients"] == 4 and blocks["run"]["errors"]["outside-block"] == 1
    assert "no-patient-reference" not in blocks["run"]["errors"]  # nothing went through a partition


def test_a_patient_in_two_unchained_files_is_reported_not_hidden(
    tmp_path: Path, cluster: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """p-rare's block goes on in a third file that the manifest does not chain (no continuesInFile):
    the two pieces are screened apart, and the run says so."""
    folder = tmp_path / "by-patient"
    folder.mkdir()
    names = []
    for index, lines in enumerate(block_files(write_export(tmp_path / "by-type")), start=1):
        names.append(f"blocks-{index}.ndjson")
        (folder / names[-1]).write_text("\n".join(lines) + "\n")
    manifest = {
        "transactionTime": "2026-12-03T00:00:00Z",
        "requiresAccessToken": False,
        "outputOrganizedBy": "Patient",
        "output": [{"url": name} for name in names],
        "error": [],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    args = ["screen", str(folder / "manifest.json"), "--as-of", "2026-03-01", "--format", "json"]
    args += ["--scheduler", cluster.scheduler_address, "--database-url", f"sqlite:///{tmp_path / 'wl.db'}"]
    out = _screen(args, capsys)
    assert out["run"]["errors"]["patient-in-two-blocks"] == 1


def test_a_file_that_cannot_be_downloaded_is_counted_once_and_the_others_are_screened(
    tmp_path: Path,
    httpserver: HTTPServer,
    registry: str,
    cluster: LocalCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The first file is listed by the partial manifest and again by the complete one; it answers
    404 both times. The patients of the other files are screened; the failure is counted once."""
    server = BlockServer(httpserver, tmp_path / "served", missing=1)
    write_export(server.folder / "full")
    out = _screen(screen_args(registry, cluster, tmp_path / "wl.db", tmp_path / "work"), capsys)
    assert out["run"]["errors"]["download-failed"] == 1
    assert out["run"]["patients"] == 1  # p-rare, whose block is in the second and third files
    assert [p["patient"] for p in out["patients"]] == ["Patient/p-rare"]


async def test_the_group_size_read_beside_the_export_sets_the_progress_total_when_it_comes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The Group is read while the kick-off is answered: its size is taken when the read ends,
    and a read that failed or was cancelled leaves the total unknown."""

    async def answer(size: int | None) -> int | None:
        await asyncio.sleep(0)
        return size

    async def broken() -> int | None:
        raise RuntimeError("not a FHIR failure")

    export = BlockExport(registration=None, group_id="g1", dest=tmp_path)  # type: ignore[arg-type]
    read = asyncio.create_task(answer(42))
    read.add_done_callback(export._sized)
    assert export.expected_patients is None  # not read yet
    await read
    await asyncio.sleep(0)  # done callbacks run on the next turn of the loop
    assert export.expected_patients == 42
    failed = BlockExport(registration=None, group_id="g1", dest=tmp_path)  # type: ignore[arg-type]
    task = asyncio.create_task(broken())
    task.add_done_callback(failed._sized)
    await asyncio.gather(task, return_exceptions=True)
    cancelled = BlockExport(registration=None, group_id="g1", dest=tmp_path)  # type: ignore[arg-type]
    task = asyncio.create_task(answer(7))
    task.add_done_callback(cancelled._sized)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    assert failed.expected_patients is None and cancelled.expected_patients is None
    assert not [record for record in caplog.records if record.levelname == "ERROR"]  # nothing raised


def test_the_hydration_warm_up_decides_a_condition_and_a_report(monkeypatch: pytest.MonkeyPatch) -> None:
    decided: list[str] = []
    monkeypatch.setattr(hydrate, "read_condition", lambda r: decided.append(r["resourceType"]) or (None, []))
    monkeypatch.setattr(hydrate, "classify", lambda r: decided.append(r["resourceType"]) or "note")
    hydrate.warm.__wrapped__()  # its body, whether or not this process warmed up already
    assert "Condition" in decided and {"DiagnosticReport", "DocumentReference"} & set(decided)


def test_the_first_answer_of_a_running_export_warms_the_hydration(monkeypatch: pytest.MonkeyPatch) -> None:
    warmed: list[int] = []
    monkeypatch.setattr(block_export, "warm", lambda: warmed.append(1))
    block_export._progress_then_warm(ExportProgress(polls=1, elapsed=0.0, text="10%"))
    assert warmed == [1]

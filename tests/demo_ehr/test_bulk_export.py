"""Bulk Data $export on the demo EHR, driven end to end by SecondLook's own Bulk client
(launch/backend_services.py, launch/bulk_export.py, launch/bulk_download.py) over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx2
import pytest
from demo_ehr.backend_auth import generate_backend_key, public_jwks
from demo_ehr.bulk_export import ExportManager
from demo_ehr.config import BackendClientConfig
from demo_ehr.fhir_responses import compact_json
from demo_ehr.groups import ONCOLOGY_CLINIC_ID, TUMOR_BOARD_ID, tumor_board_date
from demo_ehr.resource_store import ResourceStore
from demo_ehr.search import patient_reference

from launch.backend_services import BackendServicesClient
from launch.bulk_download import DownloadReport, download_manifest
from launch.bulk_export import BulkExportClient, ExportProgress, ExportRequest, PollingPolicy
from launch.bulk_manifest import Manifest, iter_ndjson
from launch.discovery import Discovery
from launch.errors import FatalFhirError
from launch.http import create_http_client
from launch.registry import Registration

from .conftest import REDIRECT_URI, RunningEhr, demo_config, run_demo_ehr
from .smart_flow import ehr_launch_token

BACKEND = "secondlook-backend"
KEY = generate_backend_key("ES384")


@pytest.fixture(scope="module")
def ehr() -> Iterator[RunningEhr]:
    clients = (BackendClientConfig(BACKEND, jwks=public_jwks(KEY)),)
    with run_demo_ehr(backend_clients=clients, synthetic_patients=30, export_seconds=1.0) as running:
        yield running


class RecordingSleep:
    """Really waits (the demo job takes its time) and remembers each wait the client chose."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(seconds)


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    client = create_http_client(timeout=10.0)
    yield client
    await client.aclose()


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def bulk(ehr: RunningEhr, http: httpx2.AsyncClient, sleep: RecordingSleep) -> BulkExportClient:
    registration = Registration.model_validate(
        {
            "iss": ehr.fhir_base,
            "client_id": "secondlook-demo",
            "backend_services": {"client_id": BACKEND, "keys": [{"jwk": KEY.as_dict(private=True)}]},
        }
    )
    tokens = BackendServicesClient(http, registration, Discovery(http))
    return BulkExportClient(ehr.fhir_base, http, tokens, polling=PollingPolicy(first_delay=0.2), sleep=sleep)


async def export(
    bulk: BulkExportClient, request: ExportRequest, dest: Path, progress: list[ExportProgress] | None = None
) -> tuple[Manifest, DownloadReport, dict[str, list[dict[str, Any]]]]:
    status_url = await bulk.kick_off(request)
    manifest = await bulk.wait_for_manifest(
        status_url, on_progress=progress.append if progress is not None else None
    )
    report = await download_manifest(bulk, manifest, dest)
    assert report.failed == []
    by_type: dict[str, list[dict[str, Any]]] = {}
    for file in report.files:
        if file.kind == "output":
            by_type.setdefault(file.type, []).extend(iter_ndjson(file.path))
    return manifest, report, by_type


def system_token(ehr: RunningEhr) -> str:
    registration = Registration.model_validate(
        {
            "iss": ehr.fhir_base,
            "client_id": "secondlook-demo",
            "backend_services": {"client_id": BACKEND, "keys": [{"jwk": KEY.as_dict(private=True)}]},
        }
    )

    async def fetch() -> str:
        async with httpx2.AsyncClient() as http:
            return await BackendServicesClient(http, registration, Discovery(http)).token()

    return asyncio.run(fetch())


def read_group(ehr: RunningEhr, token: str, group_id: str) -> dict[str, Any]:
    response = httpx2.get(f"{ehr.fhir_base}/Group/{group_id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    group: dict[str, Any] = response.json()
    return group


def members_of(group: dict[str, Any]) -> set[str]:
    return {member["entity"]["reference"].removeprefix("Patient/") for member in group["member"]}


async def test_group_export_end_to_end(
    ehr: RunningEhr, bulk: BulkExportClient, sleep: RecordingSleep, tmp_path: Path
) -> None:
    group = await asyncio.to_thread(read_group, ehr, await bulk.tokens.token(), ONCOLOGY_CLINIC_ID)
    members = members_of(group)
    assert len(members) == group["quantity"] >= 3
    progress: list[ExportProgress] = []
    manifest, report, by_type = await export(
        bulk, ExportRequest(level="group", group_id=ONCOLOGY_CLINIC_ID), tmp_path, progress
    )
    # Polled while running: 202 with X-Progress, and the client waited the server's Retry-After (1 s).
    assert progress and progress[0].text and "resources written" in progress[0].text
    assert sleep.waits and all(wait == 1.0 for wait in sleep.waits)
    assert manifest.requires_access_token is True
    assert manifest.transaction_time and manifest.errors == ()
    # Every file's count matches what it holds; Patients are exactly the group's members.
    counts = {file.type: file.count for file in manifest.output}
    assert counts == {rtype: len(items) for rtype, items in by_type.items()}
    assert {patient["id"] for patient in by_type["Patient"]} == members
    for rtype, items in by_type.items():
        for resource in items:
            assert resource["resourceType"] == rtype
            owner = patient_reference(resource)
            assert owner is None or owner in members, (rtype, resource["id"])
    assert "Binary" not in by_type and "Group" not in by_type
    assert {"Condition", "DiagnosticReport", "Observation", "DocumentReference"} <= set(by_type)
    assert all(path.suffix == ".ndjson" for path in report.paths("output"))


async def test_tumor_board_group_is_next_week_and_exportable(
    ehr: RunningEhr, bulk: BulkExportClient, tmp_path: Path
) -> None:
    token = await bulk.tokens.token()
    found = await asyncio.to_thread(
        lambda: httpx2.get(
            f"{ehr.fhir_base}/Group",
            params={"name": "tumor board"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    )
    assert found["total"] == 1
    board = found["entry"][0]["resource"]
    assert board["id"] == TUMOR_BOARD_ID
    board_day = date.fromisoformat(board["name"].removeprefix("Tumor board "))
    assert board_day == tumor_board_date(date.today())
    assert board_day.weekday() == 1  # a Tuesday
    assert 1 <= board["quantity"] <= 4
    _manifest, _report, by_type = await export(
        bulk, ExportRequest(level="group", group_id=TUMOR_BOARD_ID, types=["Patient"]), tmp_path
    )
    assert {patient["id"] for patient in by_type["Patient"]} == members_of(board)


async def test_type_filter(bulk: BulkExportClient, tmp_path: Path) -> None:
    request = ExportRequest(level="patient", types=["Patient", "Condition"])
    manifest, _report, by_type = await export(bulk, request, tmp_path)
    assert set(by_type) == {"Patient", "Condition"}
    assert manifest.output and {file.type for file in manifest.output} == {"Patient", "Condition"}


async def test_since_filters_on_last_updated(bulk: BulkExportClient, tmp_path: Path) -> None:
    _m, _r, everything = await export(
        bulk, ExportRequest(level="system", types=["Observation"]), tmp_path / "all"
    )
    stamps = sorted(item["meta"]["lastUpdated"] for item in everything["Observation"])
    since = stamps[len(stamps) // 2]
    _m, _r, recent = await export(
        bulk, ExportRequest(level="system", types=["Observation"], since=since), tmp_path / "since"
    )
    expected = {item["id"] for item in everything["Observation"] if item["meta"]["lastUpdated"] > since}
    assert expected and len(expected) < len(stamps)
    assert {item["id"] for item in recent["Observation"]} == expected


async def test_post_parameters_with_patient(ehr: RunningEhr, bulk: BulkExportClient, tmp_path: Path) -> None:
    group = await asyncio.to_thread(read_group, ehr, await bulk.tokens.token(), ONCOLOGY_CLINIC_ID)
    chosen = sorted(members_of(group))[:2]
    request = ExportRequest(
        level="group",
        group_id=ONCOLOGY_CLINIC_ID,
        types=["Patient", "Condition"],
        patients=[f"Patient/{pid}" for pid in chosen],
    )
    assert request.http_method == "POST"
    _manifest, _report, by_type = await export(bulk, request, tmp_path)
    assert sorted(patient["id"] for patient in by_type["Patient"]) == chosen
    assert {patient_reference(item) for item in by_type.get("Condition", [])} <= set(chosen)


async def test_unsupported_parameter_is_reported_in_the_error_file(
    bulk: BulkExportClient, tmp_path: Path
) -> None:
    request = ExportRequest(level="patient", types=["Patient"], type_filters=["Patient?gender=female"])
    manifest, report, _by_type = await export(bulk, request, tmp_path)
    assert len(manifest.errors) == 1
    outcomes = list(iter_ndjson(report.paths("error")[0]))
    assert "_typeFilter" in outcomes[0]["issue"][0]["diagnostics"]
    assert outcomes[0]["issue"][0]["severity"] == "information"


async def test_system_export_includes_directory_resources(bulk: BulkExportClient, tmp_path: Path) -> None:
    _manifest, _report, by_type = await export(bulk, ExportRequest(level="system"), tmp_path)
    assert "Patient" in by_type and ("Organization" in by_type or "Practitioner" in by_type)
    assert "Claim" in by_type and "ExplanationOfBenefit" in by_type  # the synthetic population's noise


async def test_cancel(bulk: BulkExportClient, http: httpx2.AsyncClient) -> None:
    status_url = await bulk.kick_off(ExportRequest(level="system"))
    await bulk.cancel(status_url)
    token = await bulk.tokens.token()
    after = await http.get(status_url, headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 404
    assert after.json()["resourceType"] == "OperationOutcome"
    with pytest.raises(FatalFhirError):
        await bulk.wait_for_manifest(status_url)


async def test_status_and_files_need_the_same_client(
    ehr: RunningEhr, bulk: BulkExportClient, tmp_path: Path
) -> None:
    manifest, _report, _by_type = await export(
        bulk, ExportRequest(level="patient", types=["Patient"]), tmp_path
    )
    url = manifest.output[0].url
    async with httpx2.AsyncClient() as plain:
        assert (await plain.get(url)).status_code == 401
        assert (await plain.get(url, headers={"Authorization": "Bearer not-a-token"})).status_code == 401


def test_patient_token_gets_403(ehr: RunningEhr) -> None:
    with httpx2.Client() as client:
        token = ehr_launch_token(client, ehr.base_url, ehr.fhir_base, REDIRECT_URI, "alpha")
        headers = {"Authorization": f"Bearer {token['access_token']}", "Prefer": "respond-async"}
        for path in ("$export", "Patient/$export", f"Group/{ONCOLOGY_CLINIC_ID}/$export"):
            response = client.get(f"{ehr.fhir_base}/{path}", headers=headers)
            assert response.status_code == 403, path
            body = response.json()
            assert body["resourceType"] == "OperationOutcome"
            assert "system-level token" in body["issue"][0]["diagnostics"]


def test_kick_off_refusals(ehr: RunningEhr) -> None:
    token = system_token(ehr)
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{ehr.fhir_base}/Group/{ONCOLOGY_CLINIC_ID}/$export"
    with httpx2.Client() as client:
        missing_prefer = client.get(url, headers=auth)
        assert missing_prefer.status_code == 400
        assert "respond-async" in missing_prefer.json()["issue"][0]["diagnostics"]
        headers = {**auth, "Prefer": "respond-async"}
        wrong_format = client.get(url, headers=headers, params={"_outputFormat": "text/csv"})
        assert wrong_format.status_code == 400
        bad_since = client.get(url, headers=headers, params={"_since": "last tuesday"})
        assert bad_since.status_code == 400
        unknown_group = client.get(f"{ehr.fhir_base}/Group/no-such-group/$export", headers=headers)
        assert unknown_group.status_code == 404
        unauthenticated = client.get(url, headers={"Prefer": "respond-async"})
        assert unauthenticated.status_code == 401
        for fmt in ("ndjson", "application/ndjson", "application/fhir+ndjson"):
            accepted = client.get(url, headers=headers, params={"_outputFormat": fmt, "_type": "Patient"})
            assert accepted.status_code == 202, fmt
            assert accepted.headers["content-location"].startswith(f"{ehr.fhir_base}/$export-status/")


def test_every_resource_has_last_updated(ehr: RunningEhr) -> None:
    token = system_token(ehr)
    with httpx2.Client() as client:
        page = client.get(
            f"{ehr.fhir_base}/Observation",
            headers={"Authorization": f"Bearer {token}"},
            params={"_count": 100},
        ).json()
    stamps = [entry["resource"]["meta"]["lastUpdated"] for entry in page["entry"]]
    assert len(stamps) == 100 and all(stamps)
    assert Counter(stamp.endswith("Z") for stamp in stamps)[True] == 100


def test_long_job_reports_progress() -> None:
    clients = (BackendClientConfig(BACKEND, jwks=public_jwks(KEY)),)
    with run_demo_ehr(backend_clients=clients, export_seconds=30.0, export_retry_after=7) as running:
        token = system_token(running)
        auth = {"Authorization": f"Bearer {token}"}
        with httpx2.Client() as client:
            kicked = client.get(f"{running.fhir_base}/$export", headers={**auth, "Prefer": "respond-async"})
            status = client.get(kicked.headers["content-location"], headers=auth)
            assert status.status_code == 202
            assert status.headers["retry-after"] == "7"
            assert "%" in status.headers["x-progress"] and len(status.headers["x-progress"]) < 100
            assert client.delete(kicked.headers["content-location"], headers=auth).status_code == 202
            assert client.get(kicked.headers["content-location"], headers=auth).status_code == 404


def test_stopping_the_ehr_removes_the_files_of_its_exports(tmp_path: Path) -> None:
    clients = (BackendClientConfig(BACKEND, jwks=public_jwks(KEY)),)
    exports = tmp_path / "exports"
    with run_demo_ehr(backend_clients=clients, export_seconds=0.1, export_dir=exports) as running:
        auth = {"Authorization": f"Bearer {system_token(running)}"}
        with httpx2.Client() as client:
            kicked = client.get(f"{running.fhir_base}/$export", headers={**auth, "Prefer": "respond-async"})
            deadline = time.monotonic() + 30
            while (status := client.get(kicked.headers["content-location"], headers=auth)).status_code == 202:
                assert time.monotonic() < deadline, "the export did not complete"
                time.sleep(0.1)
            assert status.status_code == 200
        assert list(exports.rglob("*.ndjson"))
    assert exports.is_dir()  # the folder the EHR was given stays, empty
    assert list(exports.iterdir()) == []


def test_closing_the_exports_removes_their_temporary_folder() -> None:
    manager = ExportManager(demo_config("http://127.0.0.1:9"), ResourceStore())
    (manager.root / "a-job").mkdir()
    (manager.root / "a-job" / "Patient.ndjson").write_bytes(b"{}\n")
    manager.close()
    assert not manager.root.exists()


def test_tumor_board_date_is_next_weeks_tuesday() -> None:
    assert tumor_board_date(date(2026, 12, 5)) == date(2026, 12, 8)  # Saturday -> next week's Tuesday
    assert tumor_board_date(date(2026, 12, 7)) == date(2026, 12, 15)  # Monday -> next week's Tuesday
    assert tumor_board_date(date(2026, 12, 8)).weekday() == 1


def test_capability_statement_declares_bulk_export(ehr: RunningEhr) -> None:
    body = httpx2.get(f"{ehr.fhir_base}/metadata").json()
    assert body["instantiates"] == ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"]
    rest = body["rest"][0]
    assert {op["name"] for op in rest["operation"]} == {"export"}
    by_type = {resource["type"]: resource for resource in rest["resource"]}
    assert by_type["Group"]["operation"][0]["definition"].endswith("group-export")
    assert by_type["Patient"]["operation"][0]["definition"].endswith("patient-export")


def test_an_export_line_is_one_line_of_utf8_json_even_with_a_huge_integer() -> None:
    for resource in (
        {"resourceType": "Patient", "id": "p1", "name": [{"text": "Zoë Ñandú"}]},
        {"resourceType": "Basic", "id": "b1", "extension": [{"valueInteger": 2**70}]},
    ):
        body = compact_json(resource)  # the export writes it followed by one newline
        assert b"\n" not in body and b"\r" not in body
        assert json.loads(body.decode("utf-8")) == resource
    assert "Zoë".encode() in compact_json({"resourceType": "Patient", "id": "p1", "name": [{"text": "Zoë"}]})

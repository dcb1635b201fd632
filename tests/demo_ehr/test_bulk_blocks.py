"""The demo EHR's Bulk Data 3.0 options: `organizeOutputBy=Patient` (files of patient resource
blocks) and `allowPartialManifests` (files listed while the export runs), read by SecondLook's own
Bulk client over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from demo_ehr.backend_auth import generate_backend_key, public_jwks
from demo_ehr.config import BackendClientConfig
from demo_ehr.groups import ONCOLOGY_CLINIC_ID
from demo_ehr.search import patient_reference

from launch.backend_services import BackendServicesClient
from launch.bulk_download import download_manifest
from launch.bulk_export import BulkExportClient, ExportRequest, PollingPolicy
from launch.bulk_manifest import Manifest, iter_ndjson, summarize_outcomes
from launch.discovery import Discovery
from launch.errors import FatalFhirError
from launch.http import create_http_client
from launch.registry import Registration

from .conftest import RunningEhr, run_demo_ehr

BACKEND = "secondlook-backend"
KEY = generate_backend_key("ES384")


@pytest.fixture(scope="module")
def ehr() -> Iterator[RunningEhr]:
    # Small files (one block each) and a job that stays "running" for 3 s after its files
    # are written, so polls see partial manifests.
    clients = (BackendClientConfig(BACKEND, jwks=public_jwks(KEY)),)
    with run_demo_ehr(
        backend_clients=clients,
        synthetic_patients=12,
        export_seconds=3.0,
        export_retry_after=1,
        export_block_file_bytes=2_000,
    ) as running:
        yield running


@pytest.fixture
async def bulk(ehr: RunningEhr) -> AsyncIterator[BulkExportClient]:
    registration = Registration.model_validate(
        {
            "iss": ehr.fhir_base,
            "client_id": "secondlook-demo",
            "backend_services": {"client_id": BACKEND, "keys": [{"jwk": KEY.as_dict(private=True)}]},
        }
    )
    async with create_http_client(timeout=10.0) as http:
        tokens = BackendServicesClient(http, registration, Discovery(http))
        yield BulkExportClient(ehr.fhir_base, http, tokens, polling=PollingPolicy(first_delay=0.2))


def blocks_of(path: Path) -> list[tuple[str, list[dict[str, Any]]]]:
    """(patient id of the header, resources after it) for each block of a file."""
    blocks: list[tuple[str, list[dict[str, Any]]]] = []
    for resource in iter_ndjson(path):
        if resource["resourceType"] == "Parameters":
            (parameter,) = resource["parameter"]
            assert parameter["name"] == "header"
            blocks.append((parameter["valueReference"]["reference"].removeprefix("Patient/"), []))
        else:
            assert blocks, f"{path.name} starts without a header"
            blocks[-1][1].append(resource)
    return blocks


async def test_group_export_by_patient_with_partial_manifests(bulk: BulkExportClient, tmp_path: Path) -> None:
    by_type = ExportRequest(level="group", group_id=ONCOLOGY_CLINIC_ID)
    plain = await bulk.wait_for_manifest(await bulk.kick_off(by_type))
    plain_files = await download_manifest(bulk, plain, tmp_path / "by-type")
    expected = {
        (r["resourceType"], r["id"]) for path in plain_files.paths("output") for r in iter_ndjson(path)
    }

    request = ExportRequest(
        level="group", group_id=ONCOLOGY_CLINIC_ID, organize_output_by="Patient", allow_partial_manifests=True
    )
    partials: list[Manifest] = []

    async def on_partial(manifest: Manifest) -> None:
        partials.append(manifest)
        # Files of a partial manifest are final: they can be downloaded while the export runs.
        report = await download_manifest(bulk, manifest, tmp_path / f"partial-{len(partials)}")
        assert report.failed == []

    manifest = await bulk.wait_for_manifest(await bulk.kick_off(request), on_partial=on_partial)
    assert partials, "no 202 carried a partial manifest"
    assert partials[0].organized_by == "Patient" and len(partials[0].output) >= 1
    # Later pages only add files: what a partial manifest listed is a prefix of the final one.
    for partial in partials:
        assert manifest.output[: len(partial.output)] == partial.output
    assert manifest.organized_by == "Patient" and len(manifest.output) > 1
    assert all(file.type == "mixed" and file.continues_in is None for file in manifest.output)

    report = await download_manifest(bulk, manifest, tmp_path / "blocks")
    assert report.failed == []
    seen: set[tuple[str, str]] = set()
    headers: list[str] = []
    for file, path in zip(manifest.output, report.paths("output"), strict=True):
        blocks = blocks_of(path)
        assert file.count == sum(len(items) for _, items in blocks)
        for patient_id, items in blocks:
            headers.append(patient_id)
            assert items[0] == {**items[0], "resourceType": "Patient", "id": patient_id}
            for resource in items[1:]:
                assert patient_reference(resource) == patient_id, resource["id"]
            seen |= {(r["resourceType"], r["id"]) for r in items}
    assert len(headers) == len(set(headers))  # no block split or repeated
    assert seen == expected  # the same resources as the export by type


async def test_system_export_by_patient_says_what_it_left_out(bulk: BulkExportClient, tmp_path: Path) -> None:
    request = ExportRequest(level="system", organize_output_by="Patient")
    manifest = await bulk.wait_for_manifest(await bulk.kick_off(request))
    report = await download_manifest(bulk, manifest, tmp_path)
    kept = [r for path in report.paths("output") for r in iter_ndjson(path)]
    assert not any(r["resourceType"] in ("Practitioner", "Organization") for r in kept)
    (issue,) = summarize_outcomes(r for path in report.paths("error") for r in iter_ndjson(path))
    assert issue.severity == "information" and "left out of this export organized by Patient" in issue.text


async def test_organize_by_another_type_is_refused(bulk: BulkExportClient) -> None:
    request = ExportRequest(level="group", group_id=ONCOLOGY_CLINIC_ID, organize_output_by="Encounter")
    with pytest.raises(FatalFhirError, match="organizeOutputBy 'Encounter' is not supported"):
        await bulk.kick_off(request)


async def test_manifest_page_not_made_yet_is_not_found(ehr: RunningEhr, bulk: BulkExportClient) -> None:
    token = await bulk.tokens.token()
    status_url = await bulk.kick_off(
        ExportRequest(level="group", group_id=ONCOLOGY_CLINIC_ID, allow_partial_manifests=True)
    )
    job = status_url.rsplit("/", 1)[1]
    answer = await asyncio.to_thread(
        httpx2.get, f"{ehr.fhir_base}/$export-manifest/{job}/5", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 404
    await bulk.cancel(status_url)

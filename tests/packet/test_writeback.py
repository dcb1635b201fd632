"""Write-back by conditional create: against the demo EHR (real server, real token) and against a
pytest-httpserver EHR that fails the first create with 503. A retry or a second press of "Send"
must never create a second ServiceRequest or DocumentReference."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from fhirmaps.record import PatientRecord
from launch.errors import FatalFhirError, FhirAuthError, FhirError, TemporaryFhirError
from launch.fhir_client import FhirClient
from launch.retry import RetryPolicy
from launch.scopes import GrantedScopes
from smartapp.findings import PatientResult
from smartapp.packet.delivery import Delivery
from smartapp.packet.draft import draft_packet
from smartapp.packet.model import Insurance, PatientInfo, ReferralPacket
from smartapp.packet.writeback import Filing, failure_words, send_blocker, send_packet
from tests.demo_ehr.conftest import REDIRECT_URI, run_demo_ehr
from tests.demo_ehr.smart_flow import FULL_SCOPE, ehr_launch_token
from tests.launch.fakes import RecordingSleep, StaticTokens

FIXTURES = Path(__file__).resolve().parents[2] / "demo" / "demo_ehr" / "fixtures" / "patients"
PDF = b"%PDF-1.7 test packet"
NOW = "2026-11-25T09:30:00+00:00"


def final_packet(patient: str = "Patient/p1") -> ReferralPacket:
    return ReferralPacket(
        created="2026-11-25T09:00:00+00:00",
        status="final",
        patient=PatientInfo(reference=patient),
        insurance=Insurance(available=False),
    )


class CountingEhr:
    """A FHIR server double: the very first create answers 503, later ones honour If-None-Exist."""

    def __init__(self) -> None:
        self.stored: dict[str, list[dict[str, Any]]] = {"ServiceRequest": [], "DocumentReference": []}
        self.creates = 0
        self.posts = 0

    def handle(self, request: Request) -> Response:
        self.posts += 1
        rtype = request.path.rsplit("/", 1)[-1]
        if self.posts == 1:
            return Response(
                json.dumps(
                    {
                        "resourceType": "OperationOutcome",
                        "issue": [{"severity": "error", "code": "transient", "diagnostics": "busy"}],
                    }
                ),
                status=503,
                content_type="application/fhir+json",
            )
        wanted = request.headers.get("If-None-Exist", "")
        system_value = wanted.removeprefix("identifier=")
        for resource in self.stored[rtype]:
            if any(f"{i['system']}|{i['value']}" == system_value for i in resource.get("identifier", [])):
                return self._answer(resource, 200)
        resource = dict(request.get_json(), id=f"{rtype.lower()}-{len(self.stored[rtype]) + 1}")
        self.stored[rtype].append(resource)
        self.creates += 1
        return self._answer(resource, 201)

    @staticmethod
    def _answer(resource: dict[str, Any], status: int) -> Response:
        location = f"/fhir/{resource['resourceType']}/{resource['id']}/_history/1"
        return Response(
            json.dumps(resource),
            status=status,
            content_type="application/fhir+json",
            headers={"Location": location},
        )


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


async def test_503_then_retry_creates_each_resource_once(
    httpserver: HTTPServer, http: httpx2.AsyncClient
) -> None:
    ehr = CountingEhr()
    httpserver.expect_request(
        re.compile(r"^/fhir/(ServiceRequest|DocumentReference)$"), method="POST"
    ).respond_with_handler(ehr.handle)
    sleep = RecordingSleep()
    client = FhirClient(
        httpserver.url_for("/fhir"),
        http,
        StaticTokens(),
        retry=RetryPolicy(tries=3, base_delay=0.01),
        sleep=sleep,
    )
    packet = final_packet()

    first = await send_packet(client, packet, PDF, now=NOW)
    assert ehr.posts == 3  # 503, then the ServiceRequest, then the DocumentReference
    assert sleep.delays  # the 503 was retried after a pause
    assert first["ServiceRequest"] == {
        "id": "servicerequest-1",
        "location": "/fhir/ServiceRequest/servicerequest-1/_history/1",
        "status": 201,
        "created": True,
    }
    assert first["DocumentReference"]["id"] == "documentreference-1"

    again = await send_packet(client, packet, PDF, now=NOW)
    assert ehr.creates == 2
    assert [len(v) for v in ehr.stored.values()] == [1, 1]
    assert again["ServiceRequest"]["status"] == 200 and not again["ServiceRequest"]["created"]
    assert again["ServiceRequest"]["id"] == first["ServiceRequest"]["id"]
    document = ehr.stored["DocumentReference"][0]
    assert document["context"]["related"] == [{"reference": "ServiceRequest/servicerequest-1"}]
    assert document["content"][0]["attachment"]["contentType"] == "application/pdf"


def test_send_is_blocked_without_create_scopes_or_before_final() -> None:
    read_only = GrantedScopes.parse("launch openid patient/ServiceRequest.rs patient/DocumentReference.rs")
    reason = send_blocker(read_only, final_packet())
    assert "did not grant" in reason and "ServiceRequest and DocumentReference" in reason
    writer = GrantedScopes.parse("patient/ServiceRequest.c patient/DocumentReference.c")
    assert send_blocker(writer, final_packet()) == ""
    assert "final" in send_blocker(writer, final_packet().model_copy(update={"status": "draft"}))


async def test_demo_ehr_write_back_is_idempotent(http: httpx2.AsyncClient) -> None:
    bundle = json.loads((FIXTURES / "02-her2-equivocal-no-ish.json").read_text())
    patient_id = next(
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    evaluation = PatientResult(patient=f"Patient/{patient_id}")
    packet = draft_packet(
        [bundle], PatientRecord(patient=f"Patient/{patient_id}"), evaluation, created="2026-11-25T09:00:00Z"
    )
    packet.status = "final"
    scope = FULL_SCOPE + " patient/DocumentReference.crs"
    with run_demo_ehr(patients_dir=FIXTURES) as ehr, httpx2.Client() as sync:
        token = ehr_launch_token(sync, ehr.base_url, ehr.fhir_base, REDIRECT_URI, patient_id, scope=scope)

        class Token(StaticTokens):
            async def token(self) -> str:
                return str(token["access_token"])

        client = FhirClient(ehr.fhir_base, http, Token())
        first = await send_packet(client, packet, PDF, now=NOW)
        second = await send_packet(client, packet, PDF, now=NOW)
        assert first["ServiceRequest"]["created"] and first["DocumentReference"]["created"]
        assert not second["ServiceRequest"]["created"] and not second["DocumentReference"]["created"]
        assert second["ServiceRequest"]["id"] == first["ServiceRequest"]["id"]
        assert second["DocumentReference"]["id"] == first["DocumentReference"]["id"]
        found = await client.search(
            "ServiceRequest", {"identifier": f"{packet.identifier_system}|{packet.id}"}
        )
        assert len(found.resources) == 1
        assert found.resources[0]["status"] == "active" and found.resources[0]["intent"] == "order"
        stored = await client.read("DocumentReference", first["DocumentReference"]["id"])
        assert stored["subject"]["reference"] == f"Patient/{patient_id}"


def attempt(delivered: bool, minute: int, detail: str = "") -> Delivery:
    at = datetime(2026, 11, 25, 14, minute, tzinfo=UTC)
    return Delivery(1, "https://ehr/fhir", "p1", "Practitioner/1", at, delivered, detail, "", "ehr")


def test_the_last_failure_shows_until_the_packet_is_filed() -> None:
    failed = Filing([attempt(False, 5, "The EHR refused the referral order (HTTP 422)")], [])
    assert failed.failure_line() == (
        "Not filed in the EHR: The EHR refused the referral order (HTTP 422), 2:05 PM UTC on 11/25/2026."
    )
    assert failed.to_json()["filed"] is False and failed.to_json()["failure"]["at"].startswith("2026-11-25")
    receipt = {"at": "2026-11-25T14:07:00+00:00", "ServiceRequest": {"created": False}}
    filed = Filing([attempt(False, 5, "x"), attempt(True, 7)], [receipt])
    assert filed.failure is None and filed.failure_line() == ""
    assert filed.filed_lines() == [
        "Filed in the EHR at 2:07 PM UTC on 11/25/2026 (already there; nothing duplicated)."
    ]
    # Filing again after it was filed, and that failing: the copy in the EHR stays; not "Not filed".
    refiled = Filing([attempt(True, 7), attempt(False, 9, "x")], [receipt])
    assert refiled.failure is None and [a["filed"] for a in refiled.to_json()["attempts"]] == [True, False]


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (
            FhirAuthError("The EHR answered HTTP 401 to create ServiceRequest.", status=401),
            "The EHR no longer accepts this launch's sign-in; relaunch SecondLook from the chart and "
            "file again",
        ),
        (
            FatalFhirError(
                "x", status=403, operation="create DocumentReference", details=("Not permitted.",)
            ),
            "The EHR did not allow SecondLook to file the referral letter (HTTP 403): Not permitted",
        ),
        (
            TemporaryFhirError("x", operation="create ServiceRequest"),
            "SecondLook could not reach the EHR to file the referral order, even after retrying",
        ),
        (
            TemporaryFhirError("x", status=429, operation="create ServiceRequest"),
            "The EHR had a problem on its side (HTTP 429) when SecondLook filed the referral order, even "
            "after retrying",
        ),
    ],
)
def test_a_failure_is_worded_for_the_clinician(error: FhirError, words: str) -> None:
    assert failure_words(error) == words

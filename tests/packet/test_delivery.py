"""Sending a final referral to the receiving center's FHIR endpoint (a second local FHIR server
with SMART Backend Services), and the ZIP download: through a real launch against the demo EHR."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from demo_ehr import DemoEhrConfig, create_demo_ehr
from demo_ehr.stack import demo_registry
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from launch.registry import Registration, Registry
from smartapp.web.app import create_app
from smartapp.wording import us_date
from tests.packet.test_routes import PATIENT, launch
from tests.support import Browser, free_port, serve_in_thread
from tests.web.conftest import Stack, app_settings

CENTER_NAME = "Lakeside Cancer Institute"
CENTER_TOKEN = "center-access-token"
BACKEND_CLIENT = "secondlook-referrals"
TODAY = us_date(datetime.now(UTC).date())
# The app's per-request timeout in the slow-center test (SECONDLOOK_FHIR_TIMEOUT_SECONDS), and how
# late that center answers.
TIMEOUT = 1.0
LATE = 1.6


@dataclass
class FakeCenter:
    """A receiving center's FHIR server: SMART configuration, a token endpoint that checks the
    signed client assertion against the app's key, and Bundle create honouring If-None-Exist."""

    server: HTTPServer
    app_key: ECKey
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # identifier -> Bundle
    posts: list[Request] = field(default_factory=list)
    failures: list[tuple[int, dict[str, Any], bool]] = field(
        default_factory=list
    )  # status, body, store first
    late: int = 0  # creates still to store but answer LATE seconds later (after the app's timeout)
    answered_late: int = 0

    @property
    def base(self) -> str:
        return self.server.url_for("/fhir")

    def install(self) -> None:
        config = {"token_endpoint": self.server.url_for("/auth/token"), "capabilities": ["permission-v2"]}
        self.server.expect_request("/fhir/.well-known/smart-configuration").respond_with_json(config)
        self.server.expect_request("/auth/token", method="POST").respond_with_handler(self._token)
        self.server.expect_request("/fhir/Bundle", method="POST").respond_with_handler(self._create)

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
        keys = KeySet.import_key_set({"keys": [self.app_key.as_dict(private=False)]})
        claims = jwt.decode(form["client_assertion"], keys, algorithms=["ES384"]).claims
        if claims["iss"] != BACKEND_CLIENT or form["scope"] != "system/Bundle.c":
            return Response(json.dumps({"error": "invalid_client"}), status=400)
        body = {
            "access_token": CENTER_TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": form["scope"],
        }
        return Response(json.dumps(body), content_type="application/json")

    def _create(self, request: Request) -> Response:
        self.posts.append(request)
        if request.headers.get("Authorization") != f"Bearer {CENTER_TOKEN}":
            return Response(status=401)
        bundle = json.loads(request.get_data())
        identifier = bundle["identifier"]["value"]
        condition = request.headers.get("If-None-Exist", "")
        if condition != f"identifier={bundle['identifier']['system']}|{identifier}":
            return Response("unexpected condition " + condition, status=400)
        if self.late:
            self.late -= 1
            self.stored.setdefault(identifier, bundle)
            time.sleep(LATE)  # the app stopped waiting meanwhile; this answer goes nowhere
            self.answered_late += 1
            return Response(status=201, headers={"Location": f"{self.base}/Bundle/b{len(self.stored)}"})
        if self.failures:
            status, body, store_first = self.failures.pop(0)
            if store_first:  # the center stored it, but the answer is lost
                self.stored[identifier] = bundle
            return Response(json.dumps(body), status=status, content_type="application/fhir+json")
        if identifier in self.stored:
            return Response(status=200, headers={"Location": f"{self.base}/Bundle/b1"})
        self.stored[identifier] = bundle
        return Response(status=201, headers={"Location": f"{self.base}/Bundle/b{len(self.stored)}"})


def outcome(text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": text}],
    }


def directory_file(tmp_path: Path, endpoint: str) -> Path:
    path = tmp_path / "centers.json"
    programs = [
        {"id": "ereferral", "name": "Second-opinion clinic", "review": "both", "fhir_endpoint": endpoint},
    ]
    document = {
        "source": "Test directory",
        "date": "2026-12-01",
        "centers": [
            {"id": "lakeside", "name": CENTER_NAME, "state": "MA", "programs": programs},
            {"id": "faxonly", "name": "Hilltop Oncology", "state": "MA", "programs": []},
        ],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.fixture
def center(httpserver: HTTPServer) -> FakeCenter:
    fake = FakeCenter(httpserver, ECKey.generate_key("P-384", parameters={"kid": "ref-1"}, private=True))
    fake.install()
    return fake


def run(
    tmp_path: Path, center: FakeCenter, *, register_center: bool = True, timeout: float | None = None
) -> Iterator[Stack]:
    ehr_port, app_port = free_port(), free_port()
    ehr_url, app_url = f"http://127.0.0.1:{ehr_port}", f"http://127.0.0.1:{app_port}"
    ehr = create_demo_ehr(
        DemoEhrConfig(
            base_url=ehr_url,
            app_launch_url=f"{app_url}/launch",
            app_standalone_url=f"{app_url}/standalone",
            redirect_uris=[f"{app_url}/callback"],
            include_large_patient=False,
            stories_on=date.today(),
        )
    )
    registrations = demo_registry(ehr_url).all()
    if register_center:
        registrations.append(
            Registration.model_validate(
                {
                    "iss": center.base,
                    "client_id": "secondlook",
                    "backend_services": {
                        "client_id": BACKEND_CLIENT,
                        "keys": [{"jwk": center.app_key.as_dict(private=True)}],
                        "scopes": "system/Bundle.c",
                    },
                }
            )
        )
    settings = app_settings(app_url, tmp_path).model_copy(
        update={"packet_directory": directory_file(tmp_path, center.base)}
        | ({"fhir_timeout_seconds": timeout} if timeout else {})
    )
    with (
        serve_in_thread(ehr, ehr_port),
        serve_in_thread(create_app(settings, Registry(registrations)), app_port),
    ):
        yield Stack(ehr_url, app_url, tmp_path, ehr_port)


@pytest.fixture
def stack(tmp_path: Path, center: FakeCenter) -> Iterator[Stack]:
    yield from run(tmp_path, center)


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


class Packet:
    def __init__(self, browser: Browser, stack: Stack) -> None:
        self.browser, self.stack = browser, stack
        self.sid = launch(browser, stack, PATIENT)
        self.api = f"{stack.app}/api/s/{self.sid}/packet"
        self.headers = {"X-CSRF-Token": browser.get(self.api).json()["csrf_token"]}

    def deliver(self) -> Any:
        return self.browser.request("POST", f"{self.api}/deliver", headers=self.headers)


def choose_center(packet: Packet, center: FakeCenter) -> None:
    """Finalize with the center chosen from the directory (the endpoint comes from there)."""
    state = packet.browser.get(packet.api).json()
    ready = dict(
        state["packet"],
        status="final",
        sender=dict(state["packet"]["sender"], name="Dr Ada Jones"),
        # As a client could write it: the endpoint sent with the destination is not used.
        destination={
            "center_id": "lakeside/ereferral",
            "name": CENTER_NAME,
            "fhir_endpoint": "http://x.invalid",
        },
        checklist=[dict(i, status="not-applicable") for i in state["packet"]["checklist"]],
    )
    saved = packet.browser.request(
        "PUT", packet.api, json={"version": state["version"], "packet": ready}, headers=packet.headers
    )
    assert saved.status_code == 200, saved.text[:300]


def test_a_final_referral_goes_to_the_center_once_and_is_marked_sent(
    stack: Stack, browser: Browser, center: FakeCenter
) -> None:
    packet = Packet(browser, stack)
    early = packet.deliver()
    assert early.status_code == 409
    assert early.json()["message"] == "Mark the packet final before sending it to the center."
    choose_center(packet, center)
    sent = packet.deliver()
    assert sent.status_code == 200, sent.text[:300]
    body = sent.json()
    assert body["created"] is True and body["delivery"]["delivered"] is True
    assert body["tracking"]["status"] == "sent"
    assert body["tracking"]["events"][0]["note"] == f"Sent electronically to {CENTER_NAME}"
    [document] = center.stored.values()
    assert document["type"] == "document"
    assert document["entry"][0]["resource"]["resourceType"] == "Composition"
    patient = next(e["resource"] for e in document["entry"] if e["resource"]["resourceType"] == "Patient")
    assert patient["name"][0]["family"] == "Caldwell"
    # Sent once: a second press is refused before anything reaches the center.
    again = packet.deliver()
    assert again.status_code == 409 and again.json()["message"] == "This referral is already sent."
    assert len(center.posts) == 1 and len(center.stored) == 1
    page = browser.get(f"{stack.app}/s/{packet.sid}/packet").text
    assert f"Sent to the center electronically {TODAY}; the center filed it." in page
    assert "Referral status: Sent" in page


def test_a_refused_send_leaves_the_referral_final_and_unsent_with_the_reason_and_a_retry(
    stack: Stack, browser: Browser, center: FakeCenter
) -> None:
    packet = Packet(browser, stack)
    choose_center(packet, center)
    center.failures.append((422, outcome("Referral rejected: no member id for the payer"), False))
    refused = packet.deliver()
    assert refused.status_code == 502
    error = refused.json()
    assert error["message"] == (
        "The receiving center refused the referral (HTTP 422): Referral rejected: no member id for the payer."
    )
    assert "stays final and not sent" in error["action"]
    state = browser.get(packet.api).json()
    assert state["status"] == "final" and state["tracking"]["status"] == "final"
    assert [d["delivered"] for d in state["deliveries"]] == [False]
    assert state["deliver"] == {"allowed": True, "reason": ""}
    page = browser.get(f"{stack.app}/s/{packet.sid}/packet").text
    assert f"Send again to {CENTER_NAME}" in page
    assert f"Not sent {TODAY}: The receiving center refused the referral (HTTP 422)" in page
    # The form path: the page says what happened instead of an error page.
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    center.failures.append((422, outcome("still missing"), False))
    answer = browser.request(
        "POST", f"{stack.app}/s/{packet.sid}/packet/deliver", data={"csrf": csrf.group(1)}
    )
    assert answer.status_code == 200
    assert "could not be sent to the receiving center. It stays final and not sent" in answer.text
    retried = packet.deliver()
    assert retried.status_code == 200 and retried.json()["tracking"]["status"] == "sent"
    assert len(center.stored) == 1
    assert [d["delivered"] for d in browser.get(packet.api).json()["deliveries"]] == [False, False, True]


def test_a_lost_answer_does_not_make_a_second_copy_at_the_center(
    stack: Stack, browser: Browser, center: FakeCenter
) -> None:
    packet = Packet(browser, stack)
    choose_center(packet, center)
    # The center stores the document, then its answer fails; the client's retry finds it there.
    center.failures.append((503, outcome("gateway timeout"), True))
    sent = packet.deliver()
    assert sent.status_code == 200, sent.text[:300]
    assert sent.json()["created"] is False
    assert len(center.posts) == 2 and len(center.stored) == 1


def test_a_center_slower_than_the_timeout_is_not_sent_and_a_retry_makes_no_second_copy(
    tmp_path: Path, center: FakeCenter, browser: Browser
) -> None:
    for stack in run(tmp_path, center, timeout=TIMEOUT):
        packet = Packet(browser, stack)
        choose_center(packet, center)
        # Every try of this send: the center stores the document, then answers after the app gave up.
        center.late = 3
        refused = packet.deliver()
        assert refused.status_code == 502
        assert refused.json()["message"] == (
            "The receiving center did not answer in time when SecondLook sent the referral, "
            "even after retrying."
        )
        assert len(center.posts) == 3  # the client's own retries, each timed out
        state = browser.get(packet.api).json()
        assert state["status"] == "final" and state["tracking"]["status"] == "final"
        assert [d["delivered"] for d in state["deliveries"]] == [False]
        assert state["deliver"] == {"allowed": True, "reason": ""}
        page = browser.get(f"{stack.app}/s/{packet.sid}/packet").text
        assert f"Send again to {CENTER_NAME}" in page
        assert f"Not sent {TODAY}: The receiving center did not answer" in page
        deadline = time.monotonic() + 10
        while center.answered_late < 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # the fake center serves one request at a time
        retried = packet.deliver()
        assert retried.status_code == 200, retried.text[:300]
        assert retried.json()["created"] is False and retried.json()["tracking"]["status"] == "sent"
        assert len(center.stored) == 1 and len(center.posts) == 4


def test_a_center_without_a_registered_endpoint_gets_nothing(
    tmp_path: Path, center: FakeCenter, browser: Browser
) -> None:
    for stack in run(tmp_path, center, register_center=False):
        packet = Packet(browser, stack)
        choose_center(packet, center)
        refused = packet.deliver()
        assert refused.status_code == 409
        assert "not registered with SecondLook, so no patient data is sent to it" in refused.json()["message"]
        assert center.posts == []
        state = browser.get(packet.api).json()
        assert state["deliver"]["allowed"] is False and state["deliveries"] == []


def test_the_zip_holds_the_letter_the_fhir_document_and_the_report_texts(
    stack: Stack, browser: Browser
) -> None:
    packet = Packet(browser, stack)
    draft = browser.get(f"{packet.api}.zip")
    assert draft.status_code == 200
    assert 'filename="referral-packet-DRAFT.zip"' in draft.headers["content-disposition"]
    state = browser.get(packet.api).json()
    attachments = state["packet"]["attachments"]
    assert attachments, "the demo patient's reports carry texts"
    with zipfile.ZipFile(io.BytesIO(draft.content)) as archive:
        names = archive.namelist()
        contents = archive.read("contents.txt").decode()
        assert contents.startswith("DRAFT - not a final referral.")
        assert names[:3] == ["contents.txt", "referral-letter.pdf", "referral-document.fhir.json"]
        assert archive.read("referral-letter.pdf").startswith(b"%PDF-")
        bundle = json.loads(archive.read("referral-document.fhir.json"))
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "document"
        reports = [n for n in names if n.startswith("reports/")]
        assert len(reports) == len(attachments)
        # Each report file is byte for byte the text the FHIR document carries for that report.
        forms = [
            form
            for entry in bundle["entry"]
            for form in [
                *(entry["resource"].get("presentedForm") or []),
                *(c["attachment"] for c in entry["resource"].get("content") or []),
            ]
        ]
        inline = {base64.b64decode(form["data"]) for form in forms if "data" in form}
        assert {archive.read(n) for n in reports} <= inline
        for attachment in attachments:
            assert attachment["title"] in contents

"""Filing in the EHR when the EHR fails: through a real launch against the demo EHR, served on
loopback behind a switch that makes its creates fail (HTTP 500, a 400 with an OperationOutcome,
or answers later than the app's timeout). A failed filing leaves the packet final and not filed,
with the reason in words, the time and a "File again" button; filing again after the EHR recovers
leaves exactly one ServiceRequest and one DocumentReference for the packet in the EHR."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.packet.test_routes import launch, run_stack
from tests.support import Browser
from tests.web.conftest import Stack

# The app's per-request timeout in these tests (SECONDLOOK_FHIR_TIMEOUT_SECONDS), and how late the
# slow EHR answers: later than the timeout.
TIMEOUT = 1.0
LATE = 1.6
WRITES = ("ServiceRequest", "DocumentReference")
WHEN = r"\d{1,2}:\d{2} (AM|PM) UTC on \d{2}/\d{2}/\d{4}"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def outcome(text: str) -> bytes:
    issue = {"severity": "error", "code": "processing", "diagnostics": text}
    return json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}).encode()


@dataclass
class Fault:
    """How the EHR answers a create while the fault is on: `status` with `body` at once, or
    (`late`) the real EHR's answer after LATE seconds, the resource stored, the answer too late."""

    status: int = 500
    body: bytes = b""
    late: bool = False


@dataclass
class FaultyWrites:
    """ASGI wrapper of the demo EHR: while `fault` is set, POSTs that create one of `types`
    get the fault; everything else (launch, reads, searches) reaches the EHR unchanged."""

    app: Any
    fault: Fault | None = None
    types: tuple[str, ...] = WRITES
    faulted: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rtype = str(scope.get("path", "")).removeprefix("/fhir/")
        fault = self.fault
        if scope["type"] != "http" or scope["method"] != "POST" or rtype not in self.types or fault is None:
            await self.app(scope, receive, send)
            return
        self.faulted.append(rtype)
        body = await read_body(receive)
        if fault.late:
            await asyncio.sleep(LATE)  # the app has given up on this answer by now

            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        headers = [(b"content-type", b"application/fhir+json")]
        await send({"type": "http.response.start", "status": fault.status, "headers": headers})
        await send({"type": "http.response.body", "body": fault.body})


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


@dataclass
class FilingStack:
    stack: Stack
    ehr: FaultyWrites

    def filed(self, rtype: str, packet_id: str) -> list[dict[str, Any]]:
        """The EHR's resources of `rtype` that carry the packet's identifier (the letter's is the
        packet's with "-pdf")."""
        store = self.ehr.app.state.demo_ehr.resources
        wanted = {packet_id, f"{packet_id}-pdf"}
        return [
            r
            for r in store.of_type(rtype)
            if any(i.get("value") in wanted for i in r.get("identifier") or [])
        ]


@pytest.fixture
def filing_stack(tmp_path: Path) -> Iterator[FilingStack]:
    faulty: list[FaultyWrites] = []

    def wrap(demo: Any) -> FaultyWrites:
        faulty.append(FaultyWrites(demo))
        return faulty[0]

    for stack in run_stack(
        tmp_path, write_back=True, wrap_ehr=wrap, settings={"fhir_timeout_seconds": TIMEOUT}
    ):
        yield FilingStack(stack, faulty[0])


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


class Packet:
    """The launch patient's packet, made final (a destination, a sender, every item resolved)."""

    def __init__(self, browser: Browser, stack: Stack) -> None:
        self.browser = browser
        self.sid = launch(browser, stack)
        self.page_url = f"{stack.app}/s/{self.sid}/packet"
        self.api = f"{stack.app}/api/s/{self.sid}/packet"
        state = browser.get(self.api).json()
        self.headers = {"X-CSRF-Token": state["csrf_token"]}
        self.id = state["packet"]["id"]
        ready = dict(
            state["packet"],
            status="final",
            sender=dict(state["packet"]["sender"], name="Dr Ada Jones"),
            destination={"center_id": "msk/msk-more-health", "name": "Memorial Sloan Kettering"},
            checklist=[dict(i, status="not-applicable") for i in state["packet"]["checklist"]],
        )
        saved = browser.request(
            "PUT", self.api, json={"version": state["version"], "packet": ready}, headers=self.headers
        )
        assert saved.status_code == 200, saved.text[:300]

    def file_by_api(self) -> Any:
        return self.browser.request("POST", f"{self.api}/send", headers=self.headers)

    def file_by_form(self) -> str:
        """Press the page's filing button ("File in the EHR" or "File again"); the page after it."""
        page = self.browser.get(self.page_url).text
        csrf = re.search(
            r'action="/s/[^"]+/packet/send">\s*<input type="hidden" name="csrf" value="([^"]+)"', page
        )
        assert csrf, "the filing form carries its CSRF token"
        answer = self.browser.request("POST", f"{self.page_url}/send", data={"csrf": csrf.group(1)})
        assert answer.status_code == 200, answer.text[:300]
        return answer.text

    def state(self) -> dict[str, Any]:
        return dict(self.browser.get(self.api).json())


def failure_on_page(page: str) -> str:
    match = re.search(r'data-testid="filing-failure">([^<]*)</p>', page)
    assert match, "the page shows the failed filing"
    return match.group(1).replace("&#39;", "'")


def assert_not_filed(packet: Packet, reason: str) -> None:
    """Final, not filed, the reason and time in words, on the page and in the API; 'File again'."""
    state = packet.state()
    assert state["status"] == "final" and state["tracking"]["status"] == "final"
    filing = state["filing"]
    assert filing["filed"] is False and state["receipts"] == []
    assert filing["failure"]["detail"] == reason
    assert re.fullmatch(f"Not filed in the EHR: {re.escape(reason)}, {WHEN}\\.", filing["failure"]["text"])
    assert [a["filed"] for a in filing["attempts"]] == [False] * len(filing["attempts"])
    page = packet.browser.get(packet.page_url).text
    assert failure_on_page(page) == filing["failure"]["text"]
    assert re.search(
        r'<button type="submit" name="send" value="1" aria-describedby="filing-failure">File again</button>',
        page,
    )
    for leak in ("Traceback", "Bearer", packet.id, "/fhir/"):
        assert leak not in filing["failure"]["text"]


def assert_filed_once(stack: FilingStack, packet: Packet) -> None:
    """Filed after recovering: the page says so, and the EHR holds one of each resource."""
    page = packet.file_by_form()
    assert "Filed in the EHR." in page  # the notice
    assert re.search(f'<p class="receipt">Filed in the EHR at {WHEN}', page)
    assert 'data-testid="filing-failure"' not in page
    assert re.search(r'name="send" value="1" >File in the EHR</button>', page)
    state = packet.state()
    assert state["filing"]["filed"] is True and state["filing"]["failure"] is None
    assert state["filing"]["attempts"][-1]["filed"] is True
    assert state["status"] == "final"
    for rtype in WRITES:
        assert len(stack.filed(rtype, packet.id)) == 1, rtype


def test_an_ehr_that_keeps_answering_500(filing_stack: FilingStack, browser: Browser) -> None:
    packet = Packet(browser, filing_stack.stack)
    filing_stack.ehr.fault = Fault(500, outcome("Database unavailable"))
    refused = packet.file_by_api()
    assert refused.status_code == 502
    error = refused.json()
    reason = (
        "The EHR had a problem on its side (HTTP 500) when SecondLook filed the referral order, even "
        "after retrying: Database unavailable"
    )
    assert error["error"] == "write_back_failed" and error["message"] == reason + "."
    assert "stays final and not filed" in error["action"]
    assert filing_stack.ehr.faulted == ["ServiceRequest"] * 3  # the client's own retries, then it gave up
    assert_not_filed(packet, reason)
    # The form: the packet page with the notice and the reason, not an error page.
    page = packet.file_by_form()
    assert "The packet could not be filed in the EHR. It stays final and not filed" in page
    assert failure_on_page(page).startswith(f"Not filed in the EHR: {reason}, ")
    assert len(packet.state()["filing"]["attempts"]) == 2
    filing_stack.ehr.fault = None
    assert_filed_once(filing_stack, packet)


def test_an_ehr_that_refuses_the_letter_with_an_operation_outcome(
    filing_stack: FilingStack, browser: Browser
) -> None:
    packet = Packet(browser, filing_stack.stack)
    # The order goes in; the letter is refused: a half-filed packet is not filed.
    filing_stack.ehr.types = ("DocumentReference",)
    filing_stack.ehr.fault = Fault(400, outcome("Attachment exceeds the 10 MB limit of this chart"))
    refused = packet.file_by_api()
    assert refused.status_code == 502
    reason = (
        "The EHR refused the referral letter (HTTP 400): Attachment exceeds the 10 MB limit of this chart"
    )
    assert refused.json()["message"] == reason + "."
    assert filing_stack.ehr.faulted == ["DocumentReference"]  # a 400 is not retried
    assert len(filing_stack.filed("ServiceRequest", packet.id)) == 1
    assert filing_stack.filed("DocumentReference", packet.id) == []
    assert_not_filed(packet, reason)
    filing_stack.ehr.fault = None
    assert_filed_once(filing_stack, packet)  # the order is found, not made again
    receipt = packet.state()["receipts"][-1]
    assert receipt["ServiceRequest"]["created"] is False and receipt["DocumentReference"]["created"] is True


def test_an_ehr_slower_than_the_timeout(filing_stack: FilingStack, browser: Browser) -> None:
    packet = Packet(browser, filing_stack.stack)
    # Each create is stored, but its answer comes after the app stopped waiting.
    filing_stack.ehr.fault = Fault(late=True)
    refused = packet.file_by_api()
    assert refused.status_code == 502
    reason = "The EHR did not answer in time when SecondLook filed the referral order, even after retrying"
    assert refused.json()["message"] == reason + "."
    assert_not_filed(packet, reason)
    filing_stack.ehr.fault = None
    assert_filed_once(filing_stack, packet)  # the late-stored order is found, not duplicated

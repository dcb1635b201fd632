"""The referral after "final", through a real EHR launch against the demo EHR: status changes
(valid and refused), CSRF, history, the outside opinion, a second referral after a decline, a
corrected version, the findings page's referral line, the worklist status and the FHIR Task."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from smartapp.wording import us_date
from smartapp.worklist.tables import worklist_entries
from tests.packet.test_routes import PATIENT, launch, run_stack
from tests.support import Browser
from tests.web.conftest import Stack
from tests.worklist.seed import engine_for, seed, statuses

CENTER = "Memorial Sloan Kettering"
TODAY = us_date(datetime.now(UTC).date())
OPINION = {
    "received": datetime.now(UTC).date().isoformat(),
    "center": CENTER,
    "agreement": "changes-plan",
    "summary": "HER2 FISH ratio 2.4: HER2-positive; recommend adding trastuzumab and pertuzumab.",
}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield from run_stack(tmp_path, write_back=False)


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


class Referral:
    """The launch's packet API, with the CSRF header the page's script would send."""

    def __init__(self, browser: Browser, stack: Stack, sid: str) -> None:
        self.browser, self.stack, self.sid = browser, stack, sid
        self.api = f"{stack.app}/api/s/{sid}/packet"
        self.state = browser.get(self.api).json()
        self.headers = {"X-CSRF-Token": self.state["csrf_token"]}

    def finalize(self, sender_reference: str | None = None) -> dict[str, Any]:
        state = self.browser.get(self.api).json()
        sender = dict(state["packet"]["sender"], name="Dr Ada Jones", reference=sender_reference)
        ready = dict(
            state["packet"],
            status="final",
            sender=sender,
            destination={"center_id": "msk/msk-more-health", "name": CENTER},
            checklist=[dict(i, status="not-applicable") for i in state["packet"]["checklist"]],
        )
        final = self.browser.request(
            "PUT", self.api, json={"version": state["version"], "packet": ready}, headers=self.headers
        )
        assert final.status_code == 200, final.text[:300]
        return dict(final.json())

    def status(self, status: str, note: str = "", **extra: str) -> Any:
        return self.browser.request(
            "POST", f"{self.api}/status", json={"status": status, "note": note, **extra}, headers=self.headers
        )

    def opinion(self, opinion: dict[str, str]) -> Any:
        return self.browser.request(
            "POST", f"{self.api}/opinion", json={"opinion": opinion}, headers=self.headers
        )

    def task(self) -> dict[str, Any]:
        document = self.browser.get(f"{self.api}/fhir").json()
        return next(e["resource"] for e in document["entry"] if e["resource"]["resourceType"] == "Task")


def test_status_follows_the_allowed_transitions_and_records_who_when_and_why(
    stack: Stack, browser: Browser
) -> None:
    referral = Referral(browser, stack, launch(browser, stack))
    early = referral.status("sent")
    assert (
        early.status_code == 409
        and early.json()["message"] == "Mark the packet final before tracking the referral."
    )
    assert referral.task()["status"] == "draft"
    referral.finalize(sender_reference="Practitioner/demo-oncologist")  # the signed-in user
    assert referral.task()["businessStatus"]["coding"][0]["code"] == "2.0"
    skipped = referral.status("accepted")
    assert skipped.status_code == 409
    assert skipped.json()["message"] == (
        "A referral that is final, not sent yet cannot become accepted. It can become: sent, cancelled."
    )
    assert referral.status("sent", "Faxed with the PDF").status_code == 200
    assert referral.status("received").status_code == 200
    accepted = referral.status("accepted", "Intake: slides requested from the originating lab")
    assert accepted.status_code == 200
    tracking = accepted.json()["tracking"]
    assert tracking["status"] == "accepted" and tracking["allowed"] == ["scheduled", "declined", "cancelled"]
    assert [(e["status"], e["note"]) for e in tracking["events"]] == [
        ("sent", "Faxed with the PDF"),
        ("received", ""),
        ("accepted", "Intake: slides requested from the originating lab"),
    ]
    assert all(
        e["who"] == "Practitioner/demo-oncologist" and e["who_name"] == "Dr Ada Jones" and e["at"]
        for e in tracking["events"]
    )
    page = browser.get(f"{stack.app}/s/{referral.sid}/packet").text
    assert (
        f"<li>Accepted {TODAY} by Dr Ada Jones: Intake: slides requested from the originating lab</li>"
        in page
    )
    backwards = referral.status("sent")
    assert backwards.status_code == 409 and "cannot become sent" in backwards.json()["message"]
    direct = referral.status("completed")
    assert direct.status_code == 409 and "Record the outside opinion" in direct.json()["message"]
    assert referral.status("teleported").status_code == 409

    task = referral.task()
    assert task["status"] == "accepted"
    assert task["businessStatus"]["coding"][0] == {
        "system": "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS",
        "code": "3.0",
        "display": "Accepted",
    }
    assert task["statusReason"]["text"] == "Intake: slides requested from the originating lab"
    assert task["lastModified"] == tracking["events"][-1]["at"]


def test_status_form_needs_csrf_and_shows_a_refusal_on_the_page(stack: Stack, browser: Browser) -> None:
    sid = launch(browser, stack)
    referral = Referral(browser, stack, sid)
    referral.finalize()
    url = f"{stack.app}/s/{sid}/packet/status"
    forged = browser.request("POST", url, data={"csrf": "forged", "status": "sent"})
    assert forged.status_code == 403
    assert browser.request("POST", url, data={"status": "sent"}).status_code == 403
    assert browser.get(referral.api).json()["tracking"]["status"] == "final"
    page = browser.request(
        "POST",
        url,
        data={
            "csrf": referral.state["csrf_token"],
            "status": "sent",
            "note": "Sent through the center's portal",
        },
    )
    assert page.status_code == 200 and "Referral status updated." in page.text
    # The demo user by name (its Practitioner), never the fhirUser id.
    assert f"<li>Sent {TODAY} by Jordan Reyes, MD: Sent through the center&#39;s portal</li>" in page.text
    section = page.text[page.text.index('data-testid="referral-tracking"') :]
    assert (
        "Referral status: Sent" in section and "Practitioner/" not in section[: section.index("</section>")]
    )
    refused = browser.request("POST", url, data={"csrf": referral.state["csrf_token"], "status": "scheduled"})
    assert refused.status_code == 409
    assert (
        "A referral that is sent cannot become scheduled. It can become: received by the center, accepted, "
        "declined, cancelled." in refused.text
    )
    assert browser.get(referral.api).json()["tracking"]["status"] == "sent"


def test_outside_opinion_is_stored_shown_and_exported(stack: Stack, browser: Browser) -> None:
    sid = launch(browser, stack)
    referral = Referral(browser, stack, sid)
    referral.finalize()
    early = referral.opinion(OPINION)
    assert early.status_code == 409 and "once the referral is sent" in early.json()["message"]
    for status in ("sent", "accepted", "scheduled"):
        assert referral.status(status).status_code == 200
    incomplete = referral.opinion({"received": OPINION["received"], "center": " ", "summary": ""})
    assert incomplete.status_code == 422
    assert incomplete.json()["missing"] == [
        "Center: required.",
        "Summary: required.",
        "Agreement: choose whether the opinion agrees, changes the diagnosis or changes the plan.",
    ]
    future = referral.opinion(dict(OPINION, received="2999-01-01"))
    assert future.status_code == 422
    assert future.json()["missing"] == [
        "Date received: the date the opinion was received cannot be in the future."
    ]
    recorded = referral.opinion(OPINION)
    assert recorded.status_code == 200
    tracking = recorded.json()["tracking"]
    assert tracking["status"] == "completed" and tracking["opinion"] == OPINION and tracking["allowed"] == []
    assert referral.opinion(OPINION).status_code == 409  # one opinion closes the referral

    page = browser.get(f"{stack.app}/s/{sid}/packet").text
    assert "Referral status: Opinion returned" in page
    assert f"From {CENTER}, received {TODAY}: <strong>Changes the plan</strong>." in page
    assert "recommend adding trastuzumab and pertuzumab" in page
    findings = browser.get(f"{stack.app}/s/{sid}/results").text
    assert f"Referral to {CENTER} sent {TODAY} — opinion returned {TODAY}: changes the plan</a>" in findings
    task = referral.task()
    assert task["status"] == "completed" and task["businessStatus"]["coding"][0]["code"] == "7.0"
    assert task["output"][0]["valueString"].startswith(
        f"Opinion from {CENTER} dated {OPINION['received']}: changes the plan. HER2 FISH ratio 2.4"
    )


def test_opinion_form_keeps_what_was_typed_when_refused(stack: Stack, browser: Browser) -> None:
    sid = launch(browser, stack)
    referral = Referral(browser, stack, sid)
    referral.finalize()
    referral.status("sent")
    form = {
        "csrf": referral.state["csrf_token"],
        "received": OPINION["received"],
        "center": CENTER,
        "summary": "Typed at length by the coordinator",
        "agreement": "",
    }
    page = browser.request("POST", f"{stack.app}/s/{sid}/packet/opinion", data=form)
    assert page.status_code == 422 and "The opinion was not recorded: Agreement: choose" in page.text
    assert "Typed at length by the coordinator</textarea>" in page.text
    done = browser.request("POST", f"{stack.app}/s/{sid}/packet/opinion", data=dict(form, agreement="agrees"))
    assert done.status_code == 200 and "Agrees with the local diagnosis and plan" in done.text


def test_a_second_referral_after_a_decline_keeps_the_first_readable(stack: Stack, browser: Browser) -> None:
    sid = launch(browser, stack)
    referral = Referral(browser, stack, sid)
    first = referral.finalize()["packet"]
    referral.status("sent")
    referral.status("declined", "Program excludes patients in active treatment")
    refused = browser.request(
        "POST", f"{referral.api}/status", json={"status": "sent"}, headers=referral.headers
    )
    assert "no longer changes. Start a new referral instead." in refused.json()["message"]

    page = browser.request(
        "POST", f"{stack.app}/s/{sid}/packet/new", data={"csrf": referral.state["csrf_token"], "amend": "0"}
    )
    assert page.status_code == 200 and "A new referral draft was started" in page.text
    assert (
        "Earlier referrals for this patient" in page.text and f"Referral to {CENTER}: Declined" in page.text
    )
    assert "Program excludes patients in active treatment" in page.text
    state = browser.get(referral.api).json()
    second = state["packet"]
    assert state["status"] == "draft" and second["id"] != first["id"] and second["follows"] == first["id"]
    assert second["destination"] is None and second["sender"]["name"] == "Dr Ada Jones"
    assert [r["summary"] for r in second["reasons"]] == [r["summary"] for r in first["reasons"]]
    assert [(e["packet"]["id"], e["tracking"]["status"]) for e in state["earlier"]] == [
        (first["id"], "declined")
    ]
    again = browser.request("POST", f"{referral.api}/new", json={"amend": False}, headers=referral.headers)
    assert again.status_code == 409 and "already has a draft referral" in again.json()["message"]


def test_amend_starts_a_corrected_version_that_replaces_the_final_one(stack: Stack, browser: Browser) -> None:
    referral = Referral(browser, stack, launch(browser, stack))
    first = referral.finalize()["packet"]
    referral.status("sent")
    amended = browser.request("POST", f"{referral.api}/new", json={"amend": True}, headers=referral.headers)
    assert amended.status_code == 201
    corrected = amended.json()["packet"]
    assert corrected["amends"] == first["id"] and corrected["destination"]["name"] == CENTER
    assert amended.json()["earlier"][0]["tracking"]["status"] == "sent"
    # The earlier referral's status still moves, named in the body.
    moved = referral.status("accepted", referral=first["id"])
    assert moved.status_code == 200 and moved.json()["earlier"][0]["tracking"]["status"] == "accepted"
    assert referral.status("accepted", referral="not-this-patients").status_code == 404
    document = browser.get(f"{referral.api}/fhir").json()
    request = next(
        e["resource"]
        for e in document["entry"]
        if e["resource"]["resourceType"] == "ServiceRequest"
        and e["resource"]["identifier"][0]["system"] == "urn:secondlook:referral-packet"
    )
    assert request["replaces"][0]["identifier"]["value"] == first["id"]


def test_findings_page_shows_the_referral_and_its_status(stack: Stack, browser: Browser) -> None:
    sid = launch(browser, stack)
    results = f"{stack.app}/s/{sid}/results"
    assert 'data-testid="referral-line"' not in browser.get(results, params={"page": "1"}).text
    referral = Referral(browser, stack, sid)
    assert (
        f"Referral (receiving center not chosen yet): draft started {TODAY}, not final yet"
        in browser.get(results).text
    )
    referral.finalize()
    referral.status("sent")
    referral.status("accepted")
    page = browser.get(results, params={"page": "1"}).text
    line = re.search(r'<p data-testid="referral-line"><a href="([^"]+)">([^<]+)</a></p>', page)
    assert line, page[:2000]
    assert line.group(1) == f"/s/{sid}/packet"
    assert line.group(2) == f"Referral to {CENTER} sent {TODAY} — accepted {TODAY}"


def test_worklist_status_follows_the_referral(stack: Stack, browser: Browser) -> None:
    sid = launch(browser, stack)
    seed(stack.data_dir, stack.iss)
    engine = engine_for(stack.data_dir)
    with engine.begin() as conn:
        conn.execute(
            update(worklist_entries).where(worklist_entries.c.patient_id == PATIENT).values(status="reviewed")
        )
    engine.dispose()
    referral = Referral(browser, stack, sid)  # drafts the packet
    assert statuses(stack.data_dir, stack.iss)[PATIENT] == "referral-drafted"
    referral.finalize()
    assert statuses(stack.data_dir, stack.iss)[PATIENT] == "referral-drafted"
    referral.status("sent")
    assert statuses(stack.data_dir, stack.iss)[PATIENT] == "referral-sent"
    referral.status("accepted")
    assert referral.opinion(OPINION).status_code == 200
    assert statuses(stack.data_dir, stack.iss)[PATIENT] == "opinion-returned"
    others = statuses(stack.data_dir, stack.iss)
    assert others["demo-gist"] == "reviewed" and others["demo-aml"] == "new"  # other patients untouched

"""The packet follows the clinician's decisions on findings, through a real launch: dismissed
findings are left out (and said so in the editor), added ones go in, and what changes after the
draft is offered — taking an offer keeps the editor's unsaved text."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pypdf
import pytest

from smartapp.wording import us_date
from tests.packet.test_routes import launch, run_stack
from tests.support import Browser
from tests.web.conftest import Stack

TODAY = us_date(datetime.now(UTC).date())
LABEL = "Biomarker work-up incomplete"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield from run_stack(tmp_path, write_back=False)


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def csrf(browser: Browser, stack: Stack, sid: str) -> dict[str, str]:
    """The launch's CSRF header for JSON writes, as the findings API hands it out."""
    return {"X-CSRF-Token": browser.get(f"{stack.app}/api/s/{sid}/findings").json()["csrf_token"]}


def dismiss(browser: Browser, stack: Stack, sid: str) -> int:
    done = browser.request(
        "POST",
        f"{stack.app}/api/s/{sid}/dismissals",
        json={"trigger": "incomplete-biomarker", "reason": "already-reviewed", "note": "Tumor board 11/20"},
        headers=csrf(browser, stack, sid),
    )
    assert done.status_code == 201, done.text[:300]
    return int(next(a["id"] for a in done.json()["decisions"] if a["kind"] == "dismiss"))


def editor_form(page: str) -> dict[str, str]:
    """The editor's fields as the browser would submit them (textareas and hidden inputs)."""
    form = page[page.index('class="packet-editor"') :]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    fields |= {m[0]: m[1] for m in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>([^<]*)</textarea>', form)}
    return fields


def test_a_finding_dismissed_before_the_draft_is_left_out_and_an_added_one_goes_in(
    stack: Stack, browser: Browser
) -> None:
    sid = launch(browser, stack)
    dismiss(browser, stack, sid)
    added = browser.request(
        "POST",
        f"{stack.app}/api/s/{sid}/clinician-findings",
        json={"trigger": "patient-request", "note": "Patient asked in clinic for an outside opinion."},
        headers=csrf(browser, stack, sid),
    )
    assert added.status_code == 201
    state = browser.get(f"{stack.app}/api/s/{sid}/packet").json()
    reasons = state["packet"]["reasons"]
    assert [r["trigger"] for r in reasons] == ["patient-request"]
    assert reasons[0]["summary"] == "Patient asked in clinic for an outside opinion."
    assert not any(q["trigger"] == "incomplete-biomarker" for q in state["packet"]["questions"])
    assert state["offers"]["add"] == [] and state["offers"]["remove"] == []
    assert state["offers"]["left_out"][0]["note"] == (
        f"Dismissed on {TODAY}: Already reviewed by a specialist or tumor board (Tumor board 11/20)."
    )
    page = browser.get(f"{stack.app}/s/{sid}/packet").text
    assert f"Left out as the clinician decided: {LABEL} (Dismissed on {TODAY}" in page
    pdf = pypdf.PdfReader(io.BytesIO(browser.get(f"{stack.app}/api/s/{sid}/packet.pdf").content))
    letter = " ".join((page.extract_text() or "") for page in pdf.pages)
    assert "Patient asked in clinic for an outside opinion." in letter
    assert "HER2" not in letter.split("Questions for the consultant")[1].split("Diagnosis summary")[0]


def test_changes_after_the_draft_are_offered_and_taking_one_keeps_typed_text(
    stack: Stack, browser: Browser
) -> None:
    sid = launch(browser, stack)
    api = f"{stack.app}/api/s/{sid}/packet"
    assert [r["trigger"] for r in browser.get(api).json()["packet"]["reasons"]] == ["incomplete-biomarker"]
    decision_id = dismiss(browser, stack, sid)
    state = browser.get(api).json()
    assert [o["key"] for o in state["offers"]["remove"]] == ["finding:incomplete-biomarker"]
    assert [r["trigger"] for r in state["packet"]["reasons"]] == [
        "incomplete-biomarker"
    ]  # not applied silently
    page = browser.get(f"{stack.app}/s/{sid}/packet").text
    assert f"{LABEL}: Dismissed on {TODAY}" in page
    fields = editor_form(page)
    fields |= {
        "cover_letter": "Typed before removing the reason.",
        "action": "offer:finding:incomplete-biomarker",
    }
    saved = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=fields)
    assert saved.status_code == 200
    state = browser.get(api).json()
    assert (
        state["packet"]["reasons"] == []
        and state["packet"]["cover_letter"] == "Typed before removing the reason."
    )
    assert not any(q["trigger"] == "incomplete-biomarker" for q in state["packet"]["questions"])
    # The clinician changes their mind: the finding is offered again, and added on request.
    assert (
        browser.request(
            "DELETE", f"{stack.app}/api/s/{sid}/decisions/{decision_id}", headers=csrf(browser, stack, sid)
        ).status_code
        == 200
    )
    state = browser.get(api).json()
    assert [o["key"] for o in state["offers"]["add"]] == ["finding:incomplete-biomarker"]
    page = browser.get(f"{stack.app}/s/{sid}/packet").text
    assert f"New since this draft: {LABEL}" in page
    fields = editor_form(page) | {"action": "offer:finding:incomplete-biomarker"}
    assert browser.request("POST", f"{stack.app}/s/{sid}/packet", data=fields).status_code == 200
    state = browser.get(api).json()
    assert [r["trigger"] for r in state["packet"]["reasons"]] == ["incomplete-biomarker"]
    assert any(q["trigger"] == "incomplete-biomarker" for q in state["packet"]["questions"])
    assert (
        state["offers"]["add"] == []
        and state["packet"]["cover_letter"] == "Typed before removing the reason."
    )
    # An offer that no longer applies changes nothing.
    stale = editor_form(browser.get(f"{stack.app}/s/{sid}/packet").text) | {
        "action": "offer:finding:rare-cancer"
    }
    assert browser.request("POST", f"{stack.app}/s/{sid}/packet", data=stale).status_code == 200
    assert [r["trigger"] for r in browser.get(api).json()["packet"]["reasons"]] == ["incomplete-biomarker"]

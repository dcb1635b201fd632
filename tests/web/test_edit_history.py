"""The editor's "Edit history" reads as a clinician would: people by name, the product's one time
format, the editor's labels for what changed; never a record id, an ISO timestamp or a field key."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smartapp.packet.model import ReferralPacket
from smartapp.packet.store import Edit
from smartapp.web.edit_history import FIELD_LABELS, history_lines, what_changed
from tests.packet.test_routes import launch, run_stack
from tests.support import Browser
from tests.web.conftest import Stack

AT = datetime(2026, 11, 25, 14, 5, tzinfo=UTC)
ME = "Practitioner/demo-oncologist"


def test_every_packet_field_has_a_label_in_words() -> None:
    assert set(ReferralPacket.model_fields) <= set(FIELD_LABELS)
    assert all("_" not in label for label in FIELD_LABELS.values())


def test_each_version_names_the_person_the_time_and_what_changed() -> None:
    history = [
        Edit(1, ME, AT, {"created": {"from": None, "to": "draft"}}),
        Edit(2, ME, AT, {"cover_letter": {}, "checklist": {}}),
        Edit(3, "Practitioner/other", AT, {"status": {"from": "draft", "to": "final"}, "destination": {}}),
        Edit(4, "unknown user", AT, {"summary_note": {}, "future_field": {}}),
    ]
    lines = history_lines(history, {ME: "Jordan Reyes, MD"}, ME)
    assert lines == [
        "Version 1, 2:05 PM UTC on 11/25/2026, by Jordan Reyes, MD: drafted.",
        "Version 2, 2:05 PM UTC on 11/25/2026, by Jordan Reyes, MD: cover letter and records checklist "
        "changed.",
        "Version 3, 2:05 PM UTC on 11/25/2026, by another user: receiving center changed; marked final.",
        "Version 4, 2:05 PM UTC on 11/25/2026, by another user: summary note and other details changed.",
    ]
    # Without a name: "you" for the signed-in user, and "a user" when the launch did not say who.
    assert "by you:" in history_lines(history[1:2], {}, ME)[0]
    assert "by a user:" in history_lines(history[1:2], {}, None)[0]
    assert what_changed({"status": {"from": "final", "to": "draft"}}) == "status changed"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield from run_stack(tmp_path, write_back=False)


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def history_section(page: str) -> list[str]:
    found = re.search(r'<ol data-testid="edit-history">(.*?)</ol>', page, re.S)
    assert found, "the page has an edit history"
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", found.group(1), re.S)]


def test_the_page_names_the_editor_and_never_shows_ids_or_field_keys(stack: Stack, browser: Browser) -> None:
    sid = launch(browser, stack)
    api = f"{stack.app}/api/s/{sid}/packet"
    state = browser.get(api).json()
    headers = {"X-CSRF-Token": state["csrf_token"]}
    name = state["packet"]["sender"]["name"]
    assert name and state["packet"]["sender"]["reference"] == ME  # the demo's signed-in clinician
    checklist = [dict(i, status="not-applicable") for i in state["packet"]["checklist"]]
    edited = dict(state["packet"], cover_letter="Dear colleague,", checklist=checklist)
    saved = browser.request("PUT", api, json={"version": 1, "packet": edited}, headers=headers)
    assert saved.status_code == 200, saved.text[:300]
    # The sender now names someone else: the editor is still named, from the launch's record.
    other = dict(edited, sender=dict(edited["sender"], name="Dr Ada Jones", reference=None))
    saved = browser.request("PUT", api, json={"version": 2, "packet": other}, headers=headers)
    assert saved.status_code == 200, saved.text[:300]

    lines = history_section(browser.get(f"{stack.app}/s/{sid}/packet").text)
    assert [line.split(",")[0] for line in lines] == ["Version 1", "Version 2", "Version 3"]
    assert lines[1].endswith(f"by {name}: cover letter and records checklist changed.")
    assert lines[2].endswith(f"by {name}: referring clinician changed.")
    moment = r"\d{1,2}:\d{2} [AP]M UTC on \d{2}/\d{2}/\d{4}"
    assert all(re.fullmatch(rf"Version \d, {moment}, by .+: .+\.", line) for line in lines), lines
    shown = " ".join(lines)
    for raw in ("Practitioner/", "cover_letter", "checklist,", "sender"):
        assert raw not in shown
    assert not re.search(r"\d{4}-\d{2}-\d{2}T", shown)

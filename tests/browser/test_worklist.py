"""The coordinator's worklist in Chromium: coordinator launch from the demo EHR's launch page,
filters by keyboard, axe-core, and opening a patient's findings after the coordinator sign-in."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LOAD_TIMEOUT_MS, authorize
from tests.browser.test_demo_flow import focus_is_visible, serious_violations, tab_until
from tests.web.conftest import Stack
from tests.worklist.seed import FLAGGED, seed

Shoot = Callable[[Page, str], Path]


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> Stack:
    seed(stack.data_dir, stack.iss)
    return stack


def rows(page: Page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=entry]", "rows => rows.map(r => r.dataset.patient)")


def coordinator_launch(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.ehr}/")
    page.get_by_role("button", name="Coordinator launch (referral worklist)").click()
    page.wait_for_url(re.compile(re.escape(stack.ehr) + r"/auth/authorize"))
    authorize(page)
    page.wait_for_url(re.compile(re.escape(stack.app) + r"/s/[A-Za-z0-9_-]+/worklist$"))


def test_coordinator_launch_filters_by_keyboard_and_passes_axe(
    seeded: Stack, page: Page, shoot: Shoot
) -> None:
    coordinator_launch(page, seeded)
    expect(page.get_by_role("heading", level=1)).to_have_count(1)
    assert set(rows(page)) == FLAGGED and rows(page)[0] == "demo-aml"
    problems = serious_violations(page)
    assert not problems, "axe-core on the worklist:\n" + "\n".join(problems)
    shoot(page, "-worklist")
    # Keyboard only: reach the urgency filter, choose Expedite, apply.
    page.locator("body").focus()
    assert tab_until(page, "document.activeElement.id === 'f-urgency'"), (
        "Tab never reached the urgency filter"
    )
    assert focus_is_visible(page)
    page.get_by_label("Urgency").select_option("expedite")
    assert tab_until(page, "document.activeElement.textContent.trim() === 'Apply filters'", limit=20)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"urgency=expedite"))
    assert set(rows(page)) == {"demo-aml", "demo-gist"}
    # The patient's name is a button reachable by Tab.
    assert tab_until(page, "document.activeElement.dataset.testid === 'open'"), "Tab never reached a patient"
    assert focus_is_visible(page)


def test_fits_800px_without_the_page_scrolling_sideways(seeded: Stack, page: Page) -> None:
    page.set_viewport_size({"width": 800, "height": 900})
    coordinator_launch(page, seeded)
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width


def test_signed_in_coordinator_opens_a_patients_findings(seeded: Stack, page: Page, shoot: Shoot) -> None:
    page.goto(f"{seeded.app}/standalone")
    page.get_by_role("button", name="Sign in to the worklist").click()
    page.wait_for_url(re.compile(re.escape(seeded.ehr) + r"/auth/authorize"))
    authorize(page)
    page.wait_for_url(re.compile(r"/worklist$"))
    page.locator("[data-testid=entry][data-patient=demo-aml] [data-testid=open]").click()
    page.wait_for_url(re.compile(re.escape(seeded.app) + r"/s/[A-Za-z0-9_-]+/$"))
    expect(page.locator("[data-testid=results]")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    expect(page.locator("[data-testid=time-critical]")).to_be_visible()
    expect(page.locator("[data-testid=finding][data-trigger=rare-cancer]").first).to_be_visible()
    problems = serious_violations(page)
    assert not problems, "axe-core on a patient opened from the worklist:\n" + "\n".join(problems)
    shoot(page, "-opened")
    page.get_by_test_id("back-to-worklist").click()
    page.wait_for_url(re.compile(r"/worklist$"))
    assert set(rows(page)) == FLAGGED

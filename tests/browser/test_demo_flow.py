"""The clinician's screen in a real Chromium: the whole demo flow from the EHR's launch page to a
referral draft, the same launch inside the EHR's cross-site iframe, two tabs on two patients,
keyboard use, narrow and touch viewports, print, and axe-core's accessibility rules (the packet editor's own
checks are in test_packet_editor.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Frame, Locator, Page, Response, expect

from tests.browser.conftest import (
    LOAD_TIMEOUT_MS,
    SCREENSHOTS,
    authorize,
    launch_from_ehr,
    patient_card,
    session_id,
)
from tests.web.conftest import FIXTURES, Stack, fixture_resources

Shoot = Callable[[Page, str], Path]
RARE_MULTI = "demo-gist"  # three findings with pathology evidence
# The whole-flow test dismisses and adds findings, which persist per patient: it has its own
# patient so that the other tests (sharing the module's stack) see the engine's findings only.
EDITED = "demo-osteosarcoma"
INDEX = {entry["patient_id"]: entry for entry in json.loads((FIXTURES / "index.json").read_text())}


def family_name(patient_id: str) -> str:
    patient = next(r for r in fixture_resources(patient_id) if r["resourceType"] == "Patient")
    return str(patient["name"][0]["family"])


def open_link(page: Page, link: Locator) -> tuple[Page, Response | None]:
    """Follows a link as a click would, whether it opens in this tab or a new one."""
    if (link.get_attribute("target") or "") == "_blank":
        target = page.context.new_page()
        href = link.get_attribute("href") or ""
        return target, target.goto(
            href if "://" in href else re.sub(r"(https?://[^/]+).*", r"\1", page.url) + href
        )
    with page.expect_navigation() as navigation:
        link.click()
    return page, navigation.value


def active_triggers(page: Page) -> list[str]:
    """Trigger ids of the finding cards on screen that are not in the dismissed section."""
    return page.eval_on_selector_all(
        "[data-testid=results] [data-testid=finding]",
        "cards => cards.filter(c => !c.closest('[data-testid=dismissed]')).map(c => c.dataset.trigger)",
    )


def engine_triggers(page: Page | Frame) -> list[str]:
    """Trigger ids of the rule engine's findings on screen (not dismissed, not added by hand)."""
    return page.eval_on_selector_all(
        "[data-testid=results] [data-testid=finding]",
        "cards => cards.filter(c => !c.closest('[data-testid=dismissed]') && c.dataset.source !== "
        "'clinician')"
        ".map(c => c.dataset.trigger)",
    )


def serious_violations(page: Page) -> list[str]:
    results = Axe().run(page)
    assert results.response["testEngine"]["name"] == "axe-core", results.response.get("testEngine")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_whole_flow_from_ehr_launch_to_referral_draft(
    stack: Stack, page: Page, context: BrowserContext, shoot: Shoot
) -> None:
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    # The progress state is shown while the record loads: hold the page's data request until
    # the loading indicator has been seen, then let it through.
    held = []
    page.route(
        re.compile(re.escape(stack.app) + r"/s/.+"),
        lambda route: (
            held.append(route) if route.request.resource_type in ("fetch", "xhr") else route.continue_()
        ),
    )
    page.goto(f"{stack.ehr}/")
    patient_card(page, EDITED).get_by_role("button", name="Launch SecondLook").click()
    authorize(page)
    page.wait_for_url(re.compile(re.escape(stack.app) + r"/s/[A-Za-z0-9_-]+/$"))
    expect(page.locator("[data-testid=loading]")).to_be_visible()
    shoot(page, "-loading")
    assert held, "the loading state was not waiting for a data request"
    for route in held:
        route.continue_()
    page.unroute(re.compile(re.escape(stack.app) + r"/s/.+"))
    expect(page.locator("[data-testid=results]")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    expect(page.locator("[data-testid=loading]")).to_be_hidden()
    sid = session_id(page.url)

    banner = page.locator("[data-testid=patient-banner]")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(family_name(EDITED))
    assert sorted(engine_triggers(page)) == sorted(INDEX[EDITED]["triggers"])
    expect(page.locator("[data-testid=time-critical]")).to_have_count(0)
    shoot(page, "-findings")

    # Evidence: the quoted source text, and a link to the document with that text highlighted.
    evidence = page.locator("[data-testid=finding] [data-testid=evidence]").first
    quoted = " ".join(evidence.locator("mark").first.inner_text().split())
    assert quoted
    link = evidence.locator("a[data-testid=open-source]")
    assert re.fullmatch(
        rf"(.*)/s/{sid}/source/[A-Za-z]+/[A-Za-z0-9.-]+([?#].*)?", link.get_attribute("href") or ""
    )
    viewer, response = open_link(page, link)
    assert response is not None and response.status == 200
    highlights = viewer.locator("mark[data-testid=evidence-highlight]")
    expect(highlights.first).to_be_visible()
    assert quoted in [" ".join(t.split()) for t in highlights.all_inner_texts()]
    shoot(viewer, "-source")
    if viewer is not page:
        viewer.close()
    else:
        page.go_back()
        expect(page.locator("[data-testid=results]")).to_be_visible()

    # Dismiss the first finding with a reason: it moves to the dismissed section, and stays there.
    card = page.locator("[data-testid=results] [data-testid=finding]").first
    trigger = card.get_attribute("data-trigger")
    dismiss = card.locator("details[data-testid=dismiss]")
    dismiss.locator("summary").click()
    reason = dismiss.locator("select[name=reason]")
    option = reason.locator("option:not([value=''])").first
    reason_value, reason_label = option.get_attribute("value") or "", option.inner_text().strip()
    reason.select_option(reason_value)
    dismiss.locator("textarea[name=note]").fill("Reviewed at tumour board; not applicable.")
    dismiss.get_by_role("button", name="Dismiss").click()
    dismissed = page.locator("section[data-testid=dismissed]")
    expect(dismissed.locator(f"[data-trigger='{trigger}']")).to_have_count(1, timeout=LOAD_TIMEOUT_MS)
    assert trigger not in active_triggers(page)
    assert reason_label in dismissed.inner_text() or reason_value in dismissed.inner_text()
    page.reload()
    expect(page.locator("[data-testid=results]")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    expect(page.locator(f"section[data-testid=dismissed] [data-trigger='{trigger}']")).to_have_count(1)
    assert trigger not in active_triggers(page)

    # A clinician's own finding is added as a card marked as theirs.
    add = page.locator("form[data-testid=add-finding]")
    chosen = add.locator("select[name=trigger] option:not([value=''])").last.get_attribute("value") or ""
    add.locator("select[name=trigger]").select_option(chosen)
    add.locator("textarea[name=note]").fill("Patient asked about a sarcoma centre.")
    add.get_by_role("button", name="Add finding").click()
    expect(
        page.locator(f"[data-testid=finding][data-source=clinician][data-trigger='{chosen}']")
    ).to_have_count(1, timeout=LOAD_TIMEOUT_MS)
    shoot(page, "-after-edits")

    # Draft referral opens the packet editor for this launch's patient.
    editor, response = open_link(page, page.locator("a[data-testid=draft-referral]"))
    assert response is not None and response.status == 200
    assert re.search(rf"/s/{sid}/packet$", editor.url), editor.url
    expect(editor.locator("h1")).to_be_visible()
    assert editor.locator("h1").first.inner_text().strip()
    shoot(editor, "-packet")

    # Every asset comes from the app (or the EHR for its own pages): no CDN, no outside host.
    outside = [u for u in requested if not u.startswith((stack.app + "/", stack.ehr + "/", "data:", "blob:"))]
    assert not outside, outside


def test_launch_inside_the_ehr_iframe_on_another_site(
    stack: Stack, page: Page, context: BrowserContext, shoot: Shoot
) -> None:
    patient_id = RARE_MULTI
    page.set_viewport_size({"width": 860, "height": 900})  # the EHR's frame is then about 820 px wide
    page.goto(f"{stack.ehr}/chart/{patient_id}")
    frame = page.frame_locator("iframe[title=SecondLook]")
    authorize(frame)
    results = frame.locator("[data-testid=results]")
    expect(results).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    app_frame = next(f for f in page.frames if f.url.startswith(stack.app))
    assert re.search(r"/s/[A-Za-z0-9_-]+/$", app_frame.url)
    assert page.url.startswith(stack.ehr) and not stack.app.startswith(stack.ehr)
    assert sorted(engine_triggers(app_frame)) == sorted(INDEX[patient_id]["triggers"])
    frame_width = app_frame.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert frame_width[1] < 860 and frame_width[0] <= frame_width[1], frame_width
    # The session cookie lives in the EHR site's partition (CHIPS), so the frame keeps it when
    # third-party cookies are blocked; Chromium accepts Secure cookies on http loopback.
    session_cookies = [c for c in context.cookies(stack.app) if c["name"].startswith("sl_s_")]
    assert session_cookies and all(c["secure"] and c["sameSite"] == "None" for c in session_cookies)
    assert {c.get("partitionKey") for c in session_cookies} == {"http://127.0.0.1"}
    # A second page load in the frame (e.g. after dismissing) still carries the cookie.
    app_frame.goto(app_frame.url)
    expect(frame.locator("[data-testid=results]")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    shoot(page, "-iframe")


def test_two_tabs_on_two_patients_never_mix(stack: Stack, context: BrowserContext, shoot: Shoot) -> None:
    first, second = "demo-her2-ihc2", "demo-aml"  # one routine, one time-critical
    tab1, tab2 = context.new_page(), context.new_page()
    launch_from_ehr(tab1, stack, first)
    launch_from_ehr(tab2, stack, second)
    for _ in range(2):
        for tab, patient_id in ((tab1, first), (tab2, second)):
            expect(tab.locator("[data-testid=patient-banner]")).to_contain_text(family_name(patient_id))
            assert sorted(engine_triggers(tab)) == sorted(INDEX[patient_id]["triggers"])
            expect(tab.locator("[data-testid=time-critical]")).to_have_count(
                1 if INDEX[patient_id]["time_critical"] else 0
            )
        for tab in (tab1, tab2):
            tab.reload()
            expect(tab.locator("[data-testid=results]")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    shoot(tab1, "-tab1")
    shoot(tab2, "-tab2")


def test_banner_absent_when_the_ehr_shows_its_own(stack: Stack, page: Page) -> None:
    launch_from_ehr(page, stack, RARE_MULTI, banner=False)
    expect(page.locator("[data-testid=finding]").first).to_be_visible()
    expect(page.locator("[data-testid=patient-banner]")).to_have_count(0)
    assert family_name(RARE_MULTI) not in page.locator("[data-testid=results]").inner_text()


def test_refused_scope_is_listed_as_a_data_gap(stack: Stack, page: Page) -> None:
    launch_from_ehr(page, stack, RARE_MULTI, uncheck=("patient/DiagnosticReport.rs",))
    gaps = page.locator("[data-testid=gaps]")
    expect(gaps).to_be_visible()
    assert re.search(r"diagnostic ?report", gaps.inner_text(), re.IGNORECASE)


def tab_until(page: Page, predicate: str, limit: int = 150) -> bool:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(predicate):
            return True
    return False


def focus_is_visible(page: Page) -> bool:
    return bool(
        page.evaluate("""() => {
        const el = document.activeElement;
        const s = getComputedStyle(el);
        const outlined = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
        return el.matches(':focus-visible') && (outlined || s.boxShadow !== 'none');
    }""")
    )


def test_keyboard_reaches_dismiss_and_draft_referral(stack: Stack, page: Page, shoot: Shoot) -> None:
    launch_from_ehr(page, stack, RARE_MULTI)
    page.locator("body").focus()
    assert tab_until(page, "!!document.activeElement.closest('details[data-testid=dismiss]')"), (
        "Tab never reached a Dismiss control"
    )
    assert focus_is_visible(page), "the focused Dismiss control has no visible focus indicator"
    shoot(page, "-dismiss-focus")
    page.keyboard.press("Enter")  # opens the <details>; its form is next in tab order
    assert tab_until(page, "document.activeElement.matches('select[name=reason]')", limit=5)
    assert tab_until(page, "document.activeElement.matches('a[data-testid=draft-referral]')"), (
        "Tab never reached the Draft referral link"
    )
    assert focus_is_visible(page), "the focused Draft referral link has no visible focus indicator"


def assert_no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"page scrolls sideways: scrollWidth {width[0]} > innerWidth {width[1]}"


def test_fits_800px_and_a_touch_tablet(
    stack: Stack, page: Page, chromium_tablet: BrowserContext, shoot: Shoot
) -> None:
    page.set_viewport_size({"width": 800, "height": 900})
    launch_from_ehr(page, stack, RARE_MULTI)
    assert_no_horizontal_scroll(page)
    shoot(page, "-800px")
    tablet = chromium_tablet.new_page()
    launch_from_ehr(tablet, stack, RARE_MULTI)
    assert tablet.evaluate("matchMedia('(pointer: coarse)').matches")
    assert_no_horizontal_scroll(tablet)
    dismiss = tablet.locator("details[data-testid=dismiss]").first
    dismiss.locator("summary").tap()
    expect(dismiss).to_have_attribute("open", "")
    expect(dismiss.get_by_role("button", name="Dismiss")).to_be_visible()
    shoot(tablet, "-tablet")


def test_print_hides_interactive_controls(stack: Stack, page: Page, request) -> None:  # type: ignore[no-untyped-def]
    launch_from_ehr(page, stack, RARE_MULTI)
    page.emulate_media(media="print")
    expect(page.locator("[data-testid=finding]").first).to_be_visible()
    for selector in (
        "details[data-testid=dismiss]",
        "form[data-testid=add-finding]",
        "a[data-testid=draft-referral]",
    ):
        expect(page.locator(selector).first).to_be_hidden()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.pdf(path=str(SCREENSHOTS / f"{request.node.name}.pdf"))


def test_no_serious_accessibility_violations(stack: Stack, page: Page) -> None:
    launch_from_ehr(page, stack, RARE_MULTI)
    problems = serious_violations(page)
    assert not problems, "axe-core on the findings page:\n" + "\n".join(problems)
    viewer, _ = open_link(page, page.locator("[data-testid=evidence] a[data-testid=open-source]").first)
    expect(viewer.locator("mark[data-testid=evidence-highlight]").first).to_be_visible()
    problems = serious_violations(viewer)
    assert not problems, "axe-core on the source viewer:\n" + "\n".join(problems)

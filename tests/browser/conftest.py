"""Real-browser fixtures: Debian's Chromium driven by Playwright, the demo stack with the app on
another site than the EHR, and a screenshot of every page a test leaves open under
test-results/screenshots/ (CI keeps that folder)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.web.conftest import Stack, start_stack

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package, installed by scripts/browser
# Without the background-networking flags Chromium keeps calling Google's hosts, which this
# machine's closed network refuses; Playwright itself gives every launch a new temporary profile.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
# The first evaluation in a process loads the NLP pipeline; later launches take well under a second.
LOAD_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Module scope, not session: the sync API runs its own event loop, which must be gone before
    # the asyncio tests of other modules run.
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's Chromium is missing: run scripts/browser (scripts/test does)")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """EHR on 127.0.0.1, app on localhost: different origin and different site, as in production,
    so the iframe test exercises third-party (partitioned) cookies."""
    yield from start_stack(tmp_path_factory.mktemp("stack"), app_host="localhost")


def screenshot_path(request: pytest.FixtureRequest, suffix: str = "") -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    return SCREENSHOTS / f"{name}{suffix}.png"


@pytest.fixture
def shoot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """`shoot(page, "-800px")` saves a full-page screenshot named after the test."""

    def take(page: Page, suffix: str = "") -> Path:
        path = screenshot_path(request, suffix)
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def close_with_screenshots(context: BrowserContext, request: pytest.FixtureRequest) -> None:
    for index, page in enumerate(context.pages):
        if not page.is_closed():
            try:
                page.screenshot(path=str(screenshot_path(request, f"-end{index}")), full_page=True)
            except Exception:  # noqa: BLE001, S110 - a screenshot must never hide the test's own result
                pass
    context.close()


@pytest.fixture
def context(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    ctx = chromium.new_context(viewport={"width": 1200, "height": 900})
    ctx.set_default_timeout(LOAD_TIMEOUT_MS)
    yield ctx
    close_with_screenshots(ctx, request)


@pytest.fixture
def chromium_tablet(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    """A 1024 × 768 touch tablet (landscape), the other device clinicians open the app on."""
    ctx = chromium.new_context(
        viewport={"width": 1024, "height": 768}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    ctx.set_default_timeout(LOAD_TIMEOUT_MS)
    yield ctx
    close_with_screenshots(ctx, request)


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def patient_card(page: Page, patient_id: str):  # type: ignore[no-untyped-def]
    """The demo EHR launch page's card for one patient (it shows the id in a <code>)."""
    return page.locator("article.card").filter(
        has=page.locator("code", has_text=re.compile(rf"^{re.escape(patient_id)}$"))
    )


def authorize(page_or_frame, *, uncheck: tuple[str, ...] = ()) -> None:  # type: ignore[no-untyped-def]
    """On the demo EHR's consent screen: untick the given scopes, then Allow."""
    for scope in uncheck:
        page_or_frame.locator(f"input[name=scope][value='{scope}']").uncheck()
    page_or_frame.get_by_role("button", name="Allow").click()


def launch_from_ehr(
    page: Page, stack: Stack, patient_id: str, *, banner: bool = True, uncheck: tuple[str, ...] = ()
) -> str:
    """Demo EHR launch page → "Launch SecondLook" → consent → Allow → results on screen.
    Returns the launch session id from the app's URL."""
    page.goto(f"{stack.ehr}/")
    card = patient_card(page, patient_id)
    if not banner:
        card.get_by_label("App shows the patient banner").uncheck()
    card.get_by_role("button", name="Launch SecondLook").click()
    page.wait_for_url(re.compile(re.escape(stack.ehr) + r"/auth/authorize"))
    authorize(page, uncheck=uncheck)
    page.wait_for_url(re.compile(re.escape(stack.app) + r"/s/[A-Za-z0-9_-]+/$"))
    expect(page.locator("[data-testid=results]")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    return session_id(page.url)


def session_id(url: str) -> str:
    match = re.search(r"/s/([A-Za-z0-9_-]+)/", url)
    assert match, url
    return match.group(1)

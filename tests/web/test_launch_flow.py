"""Full SMART launches against the demo EHR over real HTTP: EHR launch, standalone launch,
consent with denied scopes, refusal, two tabs, restart, and token refresh."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

from demo_ehr.stack import demo_registry

from smartapp.web.app import create_app
from tests.support import Browser, free_port, serve_in_thread
from tests.web.conftest import Stack, app_settings, demo_patient_ids, fixture_resources, start_stack

ALLOW = ("decision", "allow")
DENY = ("decision", "deny")


def ehr_launch(
    browser: Browser,
    stack: Stack,
    patient_id: str,
    *,
    uncheck: set[str] = frozenset(),
    button: tuple[str, str] = ALLOW,
    banner: bool = True,
):
    consent = browser.get(
        f"{stack.ehr}/launch",
        params={"patient": patient_id, "need_patient_banner": "true" if banner else "false"},
    )
    assert consent.status_code == 200, consent.text[:500]
    assert str(consent.request.url).startswith(f"{stack.ehr}/auth/authorize")
    return browser.submit(consent, button=button, uncheck=uncheck)


def session_id(response) -> str:
    match = re.search(r"/s/([A-Za-z0-9_-]+)/$", str(response.request.url))
    assert match, str(response.request.url)
    return match.group(1)


def test_ehr_launch_reaches_patient_page_with_counts(stack: Stack, browser: Browser) -> None:
    patient_id = demo_patient_ids()[0]
    page = ehr_launch(browser, stack, patient_id)
    assert page.status_code == 200
    sid = session_id(page)
    resources = fixture_resources(patient_id)
    api = browser.get(f"{stack.app}/api/s/{sid}/record").json()
    assert api["patient"] == f"Patient/{patient_id}"
    assert api["counts"]["Condition"] == sum(r["resourceType"] == "Condition" for r in resources)
    assert api["counts"]["DiagnosticReport"] == sum(
        r["resourceType"] == "DiagnosticReport" for r in resources
    )
    pathology = sum(
        1
        for r in resources
        if r["resourceType"] == "DiagnosticReport"
        and any(c.get("code") == "LP7839-6" for cat in r.get("category", []) for c in cat.get("coding", []))
    )
    assert api["counts"]["DiagnosticReportByCategory"].get("Pathology", 0) >= pathology > 0
    assert api["gaps"] == []
    assert api["need_patient_banner"] is True
    assert 'data-testid="loading"' in page.text  # the shell shows progress at once
    results = browser.get(f"{stack.app}/s/{sid}/results")
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    banner = results.text.split('data-testid="patient-banner"', 1)[1].split("</section>", 1)[0]
    assert patient["name"][0]["family"] in banner  # banner shown when need_patient_banner


def test_session_cookie_and_headers_work_inside_an_ehr_iframe(stack: Stack, browser: Browser) -> None:
    page = ehr_launch(browser, stack, demo_patient_ids()[0])
    callback = next(r for r in browser.history if r.request.url.path == "/callback")
    cookie = next(h for h in callback.headers.get_list("set-cookie") if h.startswith("sl_s_"))
    for attribute in ("HttpOnly", "Secure", "SameSite=none", "Partitioned", "Path=/"):
        assert attribute.lower() in cookie.lower(), cookie
    assert callback.status_code == 303 and "code=" not in callback.headers["location"]
    csp = page.headers["content-security-policy"]
    assert f"frame-ancestors 'self' {stack.ehr}" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "no-store" in page.headers["cache-control"]


def test_banner_hidden_when_ehr_says_no_banner(stack: Stack, browser: Browser) -> None:
    patient_id = demo_patient_ids()[0]
    page = ehr_launch(browser, stack, patient_id, banner=False)
    results = browser.get(f"{stack.app}/s/{session_id(page)}/results")
    assert results.status_code == 200 and 'data-testid="results"' in results.text
    assert 'data-testid="patient-banner"' not in results.text
    assert browser.get(f"{stack.app}/api/s/{session_id(page)}/record").json()["need_patient_banner"] is False


def test_denied_scope_is_reported_not_hidden(stack: Stack, browser: Browser) -> None:
    page = ehr_launch(browser, stack, demo_patient_ids()[0], uncheck={"patient/DiagnosticReport.rs"})
    sid = session_id(page)
    api = browser.get(f"{stack.app}/api/s/{sid}/record").json()
    assert "patient/DiagnosticReport.rs" not in api["granted_scope"].split()
    assert api["counts"]["DiagnosticReport"] == 0
    gap = next(g for g in api["gaps"] if g["resource_type"] == "DiagnosticReport")
    assert gap["reason"] == "scope_not_granted"
    assert "DiagnosticReport" in gap["message"] or "diagnostic report" in gap["message"].lower()
    results = browser.get(f"{stack.app}/s/{sid}/results").text
    gaps = results.split('data-testid="gaps"', 1)[1]
    assert "DiagnosticReport" in gaps or "diagnostic report" in gaps.lower()


def test_user_denies_access(stack: Stack, browser: Browser) -> None:
    page = ehr_launch(browser, stack, demo_patient_ids()[0], button=DENY)
    assert page.status_code in (400, 403)
    assert "Access was not granted" in page.text
    assert "access_denied" in page.text
    assert "Traceback" not in page.text


def test_unregistered_issuer_is_refused_without_redirect(stack: Stack, browser: Browser) -> None:
    response = browser.get(
        f"{stack.app}/launch", params={"iss": "https://evil.example/fhir", "launch": "x"}, follow=False
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "https://evil.example/fhir" in response.text
    assert "not registered" in response.text
    assert "SECONDLOOK_EHR_CONFIG" in response.text
    assert [r.request.url.host for r in browser.history] == ["127.0.0.1"]


def test_launch_without_context_is_explained(stack: Stack, browser: Browser) -> None:
    response = browser.get(f"{stack.app}/launch", follow=False)
    assert response.status_code == 400 and "without launch context" in response.text


def test_state_mismatch_is_refused(stack: Stack, browser: Browser) -> None:
    response = browser.get(f"{stack.app}/callback", params={"code": "abc", "state": "forged"}, follow=False)
    assert response.status_code == 400
    assert "invalid_state" in response.text


def test_two_tabs_two_patients_never_mix(stack: Stack, browser: Browser) -> None:
    first, second = demo_patient_ids()[:2]
    sid1 = session_id(ehr_launch(browser, stack, first))
    sid2 = session_id(ehr_launch(browser, stack, second))
    assert sid1 != sid2
    assert browser.get(f"{stack.app}/api/s/{sid1}/record").json()["patient"] == f"Patient/{first}"
    assert browser.get(f"{stack.app}/api/s/{sid2}/record").json()["patient"] == f"Patient/{second}"
    # The handle alone opens nothing: another browser (no cookie for sid1) is refused.
    other = Browser()
    try:
        refused = other.get(f"{stack.app}/api/s/{sid1}/record")
        assert refused.status_code == 401
        assert refused.json()["error"] == "session_not_found"
        # A query-string patient is never trusted.
        own = browser.get(f"{stack.app}/api/s/{sid1}/record", params={"patient": second}).json()
        assert own["patient"] == f"Patient/{first}"
    finally:
        other.close()


def test_standalone_launch_with_patient_picker(stack: Stack, browser: Browser) -> None:
    start = browser.get(f"{stack.app}/standalone")
    assert start.status_code == 200 and "demo EHR" in start.text
    consent = browser.submit(start)
    assert str(consent.request.url).startswith(f"{stack.ehr}/auth/authorize")
    assert "launch/patient" in consent.text
    wanted = demo_patient_ids()[1]
    page = browser.submit(consent, button=ALLOW, values={"patient": wanted})
    sid = session_id(page)
    assert browser.get(f"{stack.app}/api/s/{sid}/record").json()["patient"] == f"Patient/{wanted}"


def test_sessions_survive_an_app_restart(tmp_path: Path, browser: Browser) -> None:
    stacks = start_stack(tmp_path)
    stack = next(stacks)
    try:
        sid = session_id(ehr_launch(browser, stack, demo_patient_ids()[0]))
        before = browser.get(f"{stack.app}/api/s/{sid}/record").json()
        # A second app process on the same database (and key file) serves the same launch.
        port = free_port()
        app = create_app(app_settings(f"http://127.0.0.1:{port}", tmp_path), demo_registry(stack.ehr))
        with serve_in_thread(app, port) as restarted:
            after = browser.get(f"{restarted}/api/s/{sid}/record").json()
        assert after == before
    finally:
        stacks.close()


def test_expired_access_token_is_refreshed(tmp_path: Path, browser: Browser) -> None:
    stacks = start_stack(tmp_path, access_token_ttl=2, rotate_refresh_tokens=False)
    stack = next(stacks)
    try:
        sid = session_id(ehr_launch(browser, stack, demo_patient_ids()[0]))
        time.sleep(2.5)
        response = browser.get(f"{stack.app}/api/s/{sid}/record")
        assert response.status_code == 200, response.text
        assert response.json()["counts"]["Condition"] > 0
        time.sleep(2.5)  # again: the refresh response had no new refresh token, the old one is kept
        assert browser.get(f"{stack.app}/api/s/{sid}/record").status_code == 200
    finally:
        stacks.close()


def test_healthz(stack: Stack, browser: Browser) -> None:
    assert browser.get(f"{stack.app}/healthz").json() == {"status": "ok"}


def test_no_tokens_or_launch_parameters_in_logs(stack: Stack, browser: Browser, caplog) -> None:
    caplog.set_level("DEBUG")
    page = ehr_launch(browser, stack, demo_patient_ids()[0])
    assert page.status_code == 200
    launch_request = next(
        r for r in browser.history if r.request.url.path == "/launch" and r.request.url.params.get("launch")
    )
    launch_id = launch_request.request.url.params["launch"]
    text = caplog.text
    assert launch_id not in text, [line for line in text.splitlines() if launch_id in line]
    assert not Counter(w for w in text.split() if w.lower().startswith("bearer"))


def test_launch_cookies_of_ended_and_oldest_launches_are_dropped(
    stack: Stack, browser: Browser, monkeypatch
) -> None:
    from smartapp.web.routes import launch as launch_routes

    monkeypatch.setattr(launch_routes, "MAX_LAUNCH_COOKIES", 3)
    app_host = stack.app.split("//", 1)[1].rsplit(":", 1)[0]
    browser.cookies.setdefault(app_host, {})["sl_s_endedlaunch"] = "secret-of-an-ended-launch"
    sids = [session_id(ehr_launch(browser, stack, demo_patient_ids()[0])) for _ in range(4)]
    kept = {name for name in browser.cookies[app_host] if name.startswith("sl_s_")}
    assert "sl_s_endedlaunch" not in kept
    assert kept == {f"sl_s_{sid}" for sid in sids[-3:]}  # the newest three; the oldest launch's cookie went
    assert browser.get(f"{stack.app}/api/s/{sids[-1]}/record").status_code == 200


def test_pages_outside_a_launch_carry_frame_ancestors_too(stack: Stack, browser: Browser) -> None:
    for path in ("/", "/launch", "/s/unknown-session/"):  # the index, an error page, an unknown session
        csp = browser.get(f"{stack.app}{path}").headers.get("content-security-policy", "")
        ancestors = (
            csp.split("frame-ancestors", 1)[1].split(";", 1)[0].split() if "frame-ancestors" in csp else []
        )
        assert "'self'" in ancestors and "*" not in ancestors, (path, csp)

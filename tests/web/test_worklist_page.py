"""The coordinator's worklist over real HTTP against the demo EHR: SMART sign-in without a
patient, authorization by fhirUser, filters, order, CSV, status changes, opening a patient with
the coordinator's own token, and the audit trail. Worklist rows are seeded straight into the
app's database, as the screening run leaves them."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from urllib.parse import urlencode

import httpx2
import pytest
from demo_ehr import DemoEhrConfig, create_demo_ehr
from demo_ehr.stack import demo_registry

from launch.registry import Registry
from smartapp.web.app import create_app
from tests.support import Browser, free_port, serve_in_thread
from tests.web.conftest import Stack, app_settings
from tests.web.test_launch_flow import ALLOW, ehr_launch, session_id
from tests.worklist.seed import FLAGGED, OTHER_SOURCE, audit_rows, clear_audit, seed, statuses

DEMO_USER = "Practitioner/demo-oncologist"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def worklist_sid(response: httpx2.Response) -> str:
    match = re.search(r"/s/([A-Za-z0-9_-]+)/worklist$", str(response.request.url))
    assert match, (str(response.request.url), response.status_code, response.text[:400])
    return match.group(1)


def coordinator_ehr_launch(
    browser: Browser, stack: Stack, practitioner: str | None = None
) -> httpx2.Response:
    """The demo EHR's coordinator launch: an EHR launch without patient context."""
    data = {"practitioner": practitioner} if practitioner else {}
    consent = browser.request(
        "POST", f"{stack.ehr}/coordinator-launch", content=urlencode(data), headers=FORM
    )
    assert str(consent.request.url).startswith(f"{stack.ehr}/auth/authorize"), consent.text[:300]
    return browser.submit(consent, button=ALLOW)


def coordinator_signin(browser: Browser, stack: Stack, uncheck: set[str] = frozenset()) -> httpx2.Response:
    """The app's standalone coordinator sign-in: openid fhirUser and user/ read scopes."""
    consent = browser.get(f"{stack.app}/worklist/signin", params={"iss": stack.iss})
    assert str(consent.request.url).startswith(f"{stack.ehr}/auth/authorize")
    assert "user/Patient.r" in consent.text and "launch" not in re.findall(
        r'value="(launch[^"]*)"', consent.text
    )
    return browser.submit(consent, button=ALLOW, uncheck=uncheck)


def listed(page: httpx2.Response) -> list[str]:
    return re.findall(r'data-testid="entry" data-patient="([^"]+)"', page.text)


def csrf_of(page: httpx2.Response) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert match
    return match.group(1)


def post(browser: Browser, url: str, data: dict[str, str], follow: bool = False) -> httpx2.Response:
    return browser.request("POST", url, content=urlencode(data), headers=FORM, follow=follow)


@pytest.fixture
def seeded(stack: Stack) -> Stack:
    seed(stack.data_dir, stack.iss)
    return stack


def test_ehr_launch_without_patient_lands_an_allowed_coordinator_on_the_worklist(
    seeded: Stack, browser: Browser
) -> None:
    page = coordinator_ehr_launch(browser, seeded)
    assert page.status_code == 200, page.text[:500]
    worklist_sid(page)
    assert page.text.count("<h1") == 1 and "Referral worklist" in page.text
    assert set(listed(page)) == FLAGGED  # the screened patient without findings is not listed
    assert "demo-pancreas" not in page.text  # another EHR's worklist
    assert '<th scope="col">Patient</th>' in page.text and "<caption>" in page.text
    assert 'for="f-trigger"' in page.text and 'id="f-trigger"' in page.text
    # Clinician-readable trigger labels, not ids.
    assert ">Rare cancer" in page.text or "Rare" in page.text.split('data-patient="demo-aml"', 1)[1][:2000]
    row = page.text.split('data-patient="demo-gist"', 1)[1].split("</tr>", 1)[0]
    assert "rare-cancer" not in row.replace('value="rare-cancer"', "")
    # Counts per status and the latest run's progress and errors by cause.
    counts = dict(re.findall(r'data-status="([a-z-]+)">(\d+)<', page.text))
    assert counts["total"] == str(len(FLAGGED))
    assert counts["new"] == "2" and counts["reviewed"] == "1" and counts["dismissed"] == "1"
    assert "40 of 100 patients screened" in page.text
    assert "malformed-ndjson-line: 2" in page.text and "validation: 3" in page.text
    assert "Observation.value" not in page.text  # example messages are not shown


def test_order_puts_time_critical_then_expedite_then_recent_first(seeded: Stack, browser: Browser) -> None:
    order = listed(coordinator_ehr_launch(browser, seeded))
    assert order[0] == "demo-aml"  # time-critical
    assert order[1] == "demo-gist"  # expedite
    # Routine: the latest run's patient before those last screened in the older run.
    assert order.index("demo-crc-metastatic") < order.index("demo-her2-ihc2")
    assert order.index("demo-crc-metastatic") < order.index("demo-formula")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"trigger": "rare-cancer"}, {"demo-aml", "demo-gist"}),
        ({"trigger": "discordant-findings"}, {"demo-gist"}),
        ({"urgency": "expedite"}, {"demo-aml", "demo-gist"}),
        ({"urgency": "routine"}, {"demo-crc-metastatic", "demo-her2-ihc2", "demo-formula"}),
        ({"time_critical": "yes"}, {"demo-aml"}),
        ({"time_critical": "no"}, FLAGGED - {"demo-aml"}),
        ({"group": "tumor-board-2026-12-08"}, {"demo-gist", "demo-crc-metastatic"}),
        ({"group": "Brustzentrum Süd"}, {"demo-her2-ihc2"}),
        ({"group": "Brustzentrum"}, set()),  # whole group ids only
        ({"status": "new"}, {"demo-aml", "demo-crc-metastatic"}),
        ({"status": "referral-drafted"}, {"demo-her2-ihc2"}),
        ({"change": "new"}, {"demo-aml", "demo-crc-metastatic"}),
        ({"change": "new-or-changed"}, {"demo-aml", "demo-crc-metastatic", "demo-gist"}),
        ({"urgency": "expedite", "group": "oncology-clinic", "time_critical": "no"}, {"demo-gist"}),
        ({"status": "not-a-status"}, FLAGGED),  # unknown values are ignored, not an error
    ],
)
def test_each_filter_narrows_the_list(
    seeded: Stack, browser: Browser, query: dict[str, str], expected: set[str]
) -> None:
    sid = worklist_sid(coordinator_ehr_launch(browser, seeded))
    page = browser.get(f"{seeded.app}/s/{sid}/worklist", params=query)
    assert page.status_code == 200
    assert set(listed(page)) == expected


def test_csv_export_keeps_filters_and_defuses_formulas(seeded: Stack, browser: Browser) -> None:
    sid = worklist_sid(coordinator_ehr_launch(browser, seeded))
    everything = browser.get(f"{seeded.app}/s/{sid}/worklist.csv")
    assert everything.status_code == 200 and everything.headers["content-type"].startswith("text/csv")
    assert "attachment" in everything.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(everything.text)))
    assert [r["patient_id"] for r in rows][:2] == ["demo-aml", "demo-gist"]
    assert {r["patient_id"] for r in rows} == FLAGGED
    formula = next(r for r in rows if r["patient_id"] == "demo-formula")
    assert formula["name"] == "'" + '=HYPERLINK("http://evil.example","x")'
    assert formula["groups"] == "'-2+3"
    gist = next(r for r in rows if r["patient_id"] == "demo-gist")
    assert "Rare" in gist["triggers"] and "rare-cancer" not in gist["triggers"]
    assert (
        gist["urgency"] == "expedite"
        and gist["status"] == "Reviewed"
        and gist["last_screened"] == "2026-12-04"
    )
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())
    narrowed = browser.get(f"{seeded.app}/s/{sid}/worklist.csv", params={"urgency": "expedite"})
    assert {r["patient_id"] for r in csv.DictReader(io.StringIO(narrowed.text))} == {"demo-aml", "demo-gist"}


def test_status_change_persists_and_needs_csrf(seeded: Stack, browser: Browser) -> None:
    page = coordinator_ehr_launch(browser, seeded)
    sid, token = worklist_sid(page), csrf_of(page)
    url = f"{seeded.app}/s/{sid}/worklist/status"
    for bad in ({}, {"csrf": "0" * 64}):
        refused = post(browser, url, {"patient": "demo-crc-metastatic", "status": "reviewed", **bad})
        assert refused.status_code == 403 and "csrf_failed" in refused.text
    assert statuses(seeded.data_dir, seeded.iss)["demo-crc-metastatic"] == "new"
    assert (
        post(browser, url, {"patient": "demo-crc-metastatic", "status": "bogus", "csrf": token}).status_code
        == 400
    )
    done = post(
        browser,
        url + "?status=new",
        {"patient": "demo-crc-metastatic", "status": "referral-sent", "csrf": token},
    )
    assert done.status_code == 303 and done.headers["location"] == f"/s/{sid}/worklist?status=new"
    assert statuses(seeded.data_dir, seeded.iss)["demo-crc-metastatic"] == "referral-sent"
    again = browser.get(f"{seeded.app}/s/{sid}/worklist", params={"status": "referral-sent"})
    assert listed(again) == ["demo-crc-metastatic"]
    # Another EHR's entry cannot be changed from here.
    other = post(browser, url, {"patient": "demo-pancreas", "status": "dismissed", "csrf": token})
    assert other.status_code == 404
    assert statuses(seeded.data_dir, OTHER_SOURCE)["demo-pancreas"] == "new"


def test_demo_coordinator_launch_refuses_malformed_practitioner_ids(seeded: Stack, browser: Browser) -> None:
    for bad in ("../Patient/x", "a b", "x" * 65):
        response = browser.request(
            "POST", f"{seeded.ehr}/coordinator-launch", content=urlencode({"practitioner": bad}), headers=FORM
        )
        assert response.status_code == 400, bad


def test_unlisted_fhir_user_gets_a_clear_403(seeded: Stack, browser: Browser) -> None:
    page = coordinator_ehr_launch(browser, seeded, practitioner="someone-else")
    assert page.status_code == 403
    assert "Your account is not authorized for the referral worklist of this EHR" in page.text
    assert "Practitioner/someone-else" in page.text and "worklist_users" in page.text
    assert "demo-aml" not in page.text and "Ana Leukos" not in page.text
    sid = worklist_sid(page)
    # The refused session (and its tokens) is gone.
    assert browser.get(f"{seeded.app}/s/{sid}/worklist.csv").status_code == 401
    assert browser.get(f"{seeded.app}/s/{sid}/").status_code == 401
    denied = [r for r in audit_rows(seeded.data_dir) if r["actor"] == "Practitioner/someone-else"]
    assert len(denied) == 1 and denied[0]["detail"] == "denied" and denied[0]["patient_id"] is None


def test_patient_context_launch_cannot_open_the_worklist(seeded: Stack, browser: Browser) -> None:
    sid = session_id(ehr_launch(browser, seeded, "demo-gist"))
    page = browser.get(f"{seeded.app}/s/{sid}/worklist")
    assert page.status_code == 403 and "worklist_patient_launch" in page.text
    assert "Ana Leukos" not in page.text
    assert browser.get(f"{seeded.app}/s/{sid}/worklist.csv").status_code == 403
    opened = post(browser, f"{seeded.app}/s/{sid}/worklist/open", {"patient": "demo-aml", "csrf": "x"})
    assert opened.status_code == 403
    # The launch still shows its own patient only.
    assert browser.get(f"{seeded.app}/api/s/{sid}/record").json()["patient"] == "Patient/demo-gist"


def test_worklist_without_a_session_leads_to_the_coordinator_sign_in(seeded: Stack, browser: Browser) -> None:
    page = browser.get(f"{seeded.app}/worklist")
    assert page.status_code == 200 and page.request.url.path == "/standalone"
    assert 'action="/worklist/signin"' in page.text and "Sign in to the worklist" in page.text


def test_worklist_needs_the_session_cookie(seeded: Stack, browser: Browser) -> None:
    sid = worklist_sid(coordinator_ehr_launch(browser, seeded))
    stranger = Browser()
    try:
        assert stranger.get(f"{seeded.app}/s/{sid}/worklist").status_code == 401
        assert stranger.get(f"{seeded.app}/s/{sid}/worklist.csv").status_code == 401
    finally:
        stranger.close()


def test_patient_opened_from_the_worklist_shows_its_findings(seeded: Stack, browser: Browser) -> None:
    page = coordinator_signin(browser, seeded)
    sid, token = worklist_sid(page), csrf_of(page)
    opened = post(
        browser, f"{seeded.app}/s/{sid}/worklist/open", {"patient": "demo-aml", "csrf": token}, follow=True
    )
    assert opened.status_code == 200 and str(opened.request.url) == f"{seeded.app}/s/{sid}/"
    assert 'data-testid="back-to-worklist"' in opened.text
    assert "demo-aml" not in str(opened.request.url)
    results = browser.get(f"{seeded.app}/s/{sid}/results")
    assert results.status_code == 200
    assert 'data-testid="time-critical"' in results.text and 'data-trigger="rare-cancer"' in results.text
    assert browser.get(f"{seeded.app}/api/s/{sid}/record").json()["patient"] == "Patient/demo-aml"
    # A second patient in the same session: its own findings, never the first one's.
    post(browser, f"{seeded.app}/s/{sid}/worklist/open", {"patient": "demo-gist", "csrf": token})
    assert browser.get(f"{seeded.app}/api/s/{sid}/record").json()["patient"] == "Patient/demo-gist"
    gist = browser.get(f"{seeded.app}/s/{sid}/results")
    assert (
        'data-trigger="discordant-findings"' in gist.text and 'data-testid="time-critical"' not in gist.text
    )
    # The worklist is still reachable from the same session.
    assert set(listed(browser.get(f"{seeded.app}/s/{sid}/worklist"))) == FLAGGED


def test_opening_a_patient_not_on_this_ehrs_worklist_is_404(seeded: Stack, browser: Browser) -> None:
    page = coordinator_signin(browser, seeded)
    sid, token = worklist_sid(page), csrf_of(page)
    for patient in ("demo-pancreas", "demo-osteosarcoma", "../Patient/demo-aml"):
        refused = post(browser, f"{seeded.app}/s/{sid}/worklist/open", {"patient": patient, "csrf": token})
        assert refused.status_code in (404, 422), patient
    assert (
        post(
            browser, f"{seeded.app}/s/{sid}/worklist/open", {"patient": "demo-pancreas", "csrf": token}
        ).status_code
        == 404
    )
    # Nothing was selected: the session still has no patient.
    assert browser.get(f"{seeded.app}/s/{sid}/", follow=False).status_code == 303
    refused = post(browser, f"{seeded.app}/s/{sid}/worklist/open", {"patient": "demo-aml"})
    assert refused.status_code == 403 and "csrf_failed" in refused.text


def test_ehr_refusing_the_coordinators_own_token_gets_a_specific_message(
    seeded: Stack, browser: Browser
) -> None:
    # The EHR launch asked for patient-level scopes and got no patient: the EHR refuses other patients.
    page = coordinator_ehr_launch(browser, seeded)
    sid, token = worklist_sid(page), csrf_of(page)
    refused = post(browser, f"{seeded.app}/s/{sid}/worklist/open", {"patient": "demo-aml", "csrf": token})
    assert refused.status_code == 403
    assert "The EHR did not let your account open this patient" in refused.text
    assert "ehr_denied_patient" in refused.text
    assert browser.get(f"{seeded.app}/s/{sid}/", follow=False).status_code == 303  # nothing selected
    rows = [r for r in audit_rows(seeded.data_dir) if r["action"] == "open-patient"]
    assert rows[-1]["patient_id"] == "demo-aml" and rows[-1]["detail"].startswith("refused by the EHR")
    # The next step: the user-level sign-in, after which the same patient opens.
    link = re.search(r'data-testid="error-next" href="([^"]+)"', refused.text)
    assert link and link.group(1).startswith("/worklist/signin?iss=")
    consent = browser.get(seeded.app + link.group(1).replace("&amp;", "&"))
    again = browser.submit(consent, button=ALLOW)
    sid2, token2 = worklist_sid(again), csrf_of(again)
    assert sid2 != sid
    opened = post(browser, f"{seeded.app}/s/{sid2}/worklist/open", {"patient": "demo-aml", "csrf": token2})
    assert opened.status_code == 303
    assert browser.get(f"{seeded.app}/api/s/{sid2}/record").json()["patient"] == "Patient/demo-aml"


def test_every_action_is_audited(seeded: Stack, browser: Browser) -> None:
    page = coordinator_signin(browser, seeded)
    sid, token = worklist_sid(page), csrf_of(page)
    clear_audit(seeded.data_dir)
    browser.get(f"{seeded.app}/s/{sid}/worklist", params={"urgency": "expedite"})
    browser.get(f"{seeded.app}/s/{sid}/worklist.csv")
    post(
        browser,
        f"{seeded.app}/s/{sid}/worklist/status",
        {"patient": "demo-gist", "status": "dismissed", "csrf": token},
    )
    post(browser, f"{seeded.app}/s/{sid}/worklist/open", {"patient": "demo-aml", "csrf": token})
    rows = audit_rows(seeded.data_dir)
    assert [(r["action"], r["patient_id"]) for r in rows] == [
        ("view-worklist", None),
        ("export-csv", None),
        ("set-status", "demo-gist"),
        ("open-patient", "demo-aml"),
    ]
    assert {r["actor"] for r in rows} == {DEMO_USER} and {r["iss"] for r in rows} == {seeded.iss}
    assert rows[0]["detail"] == "urgency=expedite"
    assert rows[2]["detail"] == "reviewed -> dismissed"
    # No names in the audit trail.
    assert not any("Gustav" in str(r["detail"]) or "Ana" in str(r["detail"]) for r in rows)


def test_removing_a_user_from_the_registry_ends_their_worklist_access(
    seeded: Stack, browser: Browser
) -> None:
    page = coordinator_signin(browser, seeded)
    sid, token = worklist_sid(page), csrf_of(page)
    post(browser, f"{seeded.app}/s/{sid}/worklist/open", {"patient": "demo-aml", "csrf": token})
    assert browser.get(f"{seeded.app}/api/s/{sid}/record").json()["patient"] == "Patient/demo-aml"
    # The same database behind an app whose registry no longer lists the user.
    registration = (
        demo_registry(seeded.ehr)
        .all()[0]
        .model_copy(update={"worklist_users": ["Practitioner/someone-else"]})
    )
    port = free_port()
    app = create_app(app_settings(f"http://127.0.0.1:{port}", seeded.data_dir), Registry([registration]))
    with serve_in_thread(app, port) as restarted:
        # Before the worklist is visited again, the patient pages already drop the opened patient.
        assert browser.get(f"{restarted}/api/s/{sid}/record").status_code == 409
        assert browser.get(f"{restarted}/s/{sid}/", follow=False).status_code == 303  # no patient any more
        assert browser.get(f"{restarted}/s/{sid}/worklist").status_code == 403
        assert browser.get(f"{restarted}/s/{sid}/worklist").status_code == 401  # the session was ended


def test_launch_without_patient_at_an_ehr_without_worklist_says_no_patient(
    tmp_path: Path, browser: Browser
) -> None:
    ehr_port, app_port = free_port(), free_port()
    ehr_url, app_url = f"http://127.0.0.1:{ehr_port}", f"http://127.0.0.1:{app_port}"
    ehr = create_demo_ehr(
        DemoEhrConfig(
            base_url=ehr_url,
            app_launch_url=f"{app_url}/launch",
            redirect_uris=[f"{app_url}/callback"],
            include_large_patient=False,
        )
    )
    registration = demo_registry(ehr_url).all()[0].model_copy(update={"worklist_users": []})
    app = create_app(app_settings(app_url, tmp_path), Registry([registration]))
    with serve_in_thread(ehr, ehr_port), serve_in_thread(app, app_port):
        stack = Stack(ehr_url, app_url, tmp_path, ehr_port)
        page = coordinator_ehr_launch(browser, stack)
        assert page.status_code == 409 and "No patient was selected" in page.text
        assert "referral worklist" not in page.text
        assert 'action="/worklist/signin"' not in browser.get(f"{app_url}/standalone").text

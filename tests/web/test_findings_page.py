"""The findings screen over HTTP: cards per the demo chart's expected triggers, evidence opening
the source document with the exact text highlighted, dismiss / add / withdraw with CSRF, and the
JSON API bound to the launch."""

from __future__ import annotations

import json
import re

import pytest

from tests.support import Browser, parse_forms
from tests.web.conftest import FIXTURES, Stack
from tests.web.test_launch_flow import ehr_launch, session_id

INDEX = {e["patient_id"]: e for e in json.loads((FIXTURES / "index.json").read_text())}


def launched(browser: Browser, stack: Stack, patient_id: str) -> tuple[str, str]:
    sid = session_id(ehr_launch(browser, stack, patient_id))
    results = browser.get(f"{stack.app}/s/{sid}/results")
    assert results.status_code == 200, results.text[:300]
    return sid, results.text


def cards(html: str) -> list[str]:
    return re.findall(r'data-testid="finding" data-trigger="([a-z-]+)" data-source="rules"', html)


@pytest.mark.parametrize("patient_id", ["demo-gist", "demo-her2-ihc2", "demo-lung-mscc", "demo-benign-adh"])
def test_cards_match_the_charts_expected_findings(stack: Stack, browser: Browser, patient_id: str) -> None:
    _sid, html = launched(browser, stack, patient_id)
    expected = INDEX[patient_id]
    assert sorted(cards(html)) == sorted(expected["triggers"])
    assert ('data-testid="time-critical"' in html) is expected["time_critical"]
    if expected["time_critical"]:
        # The banner comes before any finding card and says not to delay treatment.
        assert html.index('data-testid="time-critical"') < html.index('id="findings"')
        assert "Do not delay treatment" in html


def test_evidence_opens_the_source_with_the_exact_text_highlighted(stack: Stack, browser: Browser) -> None:
    sid, html = launched(browser, stack, "demo-gist")
    links = re.findall(r'data-testid="open-source" href="([^"]+)"', html)
    report_links = [link.replace("&amp;", "&") for link in links if "/source/DiagnosticReport/" in link]
    assert report_links, "a pathology report is cited as evidence"
    source = browser.get(f"{stack.app}{report_links[0]}")
    assert source.status_code == 200
    highlighted = re.search(
        r'<mark data-testid="evidence-highlight" id="evidence">(.*?)</mark>', source.text, re.S
    )
    assert highlighted, "the evidence text is highlighted inside the full report"
    findings = browser.get(f"{stack.app}/api/s/{sid}/findings").json()["patients"][0]["findings"]
    cited = {e["text"] for f in findings for e in f["evidence"]}
    assert " ".join(highlighted.group(1).split()) in {" ".join(c.split()) for c in cited}
    assert "FINAL DIAGNOSIS" in source.text or "DIAGNOSIS" in source.text  # the whole report, not a snippet
    # No evidence text travels in the URL.
    assert all(len(link) < 200 and "text=" not in link for link in report_links)


def test_attachment_is_served_as_stored_in_a_sandbox(stack: Stack, browser: Browser) -> None:
    sid, html = launched(browser, stack, "demo-gist")
    link = re.findall(r'data-testid="open-source" href="(/s/[^"?]+/source/DiagnosticReport/[^"?]+)', html)[0]
    page = browser.get(f"{stack.app}{link}")
    attachment = re.search(r'href="(/s/[^"]+/attachment/0)"', page.text)
    assert attachment
    response = browser.get(f"{stack.app}{attachment.group(1)}")
    assert response.status_code == 200
    assert response.headers["content-security-policy"].startswith("sandbox")
    assert response.headers["content-type"].split(";")[0] in ("text/plain", "text/html", "application/pdf")


def test_dismiss_with_reason_moves_the_finding_and_persists(stack: Stack, browser: Browser) -> None:
    sid, html = launched(browser, stack, "demo-gist")
    forms = parse_forms(html)
    dismiss = next(f for f in forms if f.action.endswith("/findings/rare-cancer/dismiss"))
    data = dict(dismiss.fields) | {"reason": "already-reviewed", "note": "Seen at sarcoma board"}
    response = browser.request("POST", f"{stack.app}{dismiss.action}", data=data, follow=False)
    assert response.status_code == 303
    after = browser.get(f"{stack.app}/s/{sid}/results").text
    assert "rare-cancer" not in cards(after)
    dismissed = after.split('data-testid="dismissed"', 1)[1]
    assert "Seen at sarcoma board" in dismissed and "Already reviewed" in dismissed
    api = browser.get(f"{stack.app}/api/s/{sid}/findings").json()["patients"][0]
    rare = next(f for f in api["findings"] if f["trigger"] == "rare-cancer")
    assert rare["dismissed"]["reason"] == "already-reviewed"
    # A new launch for the same patient still shows the dismissal.
    _sid2, again = launched(browser, stack, "demo-gist")
    assert "rare-cancer" not in cards(again)


def test_forms_refuse_a_missing_or_forged_csrf_token(stack: Stack, browser: Browser) -> None:
    sid, html = launched(browser, stack, "demo-gist")
    url = f"{stack.app}/s/{sid}/findings/rare-cancer/dismiss"
    for token in ("", "0" * 64):
        response = browser.request("POST", url, data={"csrf": token, "reason": "not-relevant"}, follow=False)
        assert response.status_code == 403
        assert "could not be accepted" in response.text
    assert "rare-cancer" in cards(browser.get(f"{stack.app}/s/{sid}/results").text)


def test_add_and_remove_a_clinician_finding(stack: Stack, browser: Browser) -> None:
    sid, html = launched(browser, stack, "demo-her2-ihc2")
    add = next(f for f in parse_forms(html) if f.action.endswith("/findings/add"))
    data = dict(add.fields) | {"trigger": "patient-request", "note": "Patient asked about MSK review"}
    assert browser.request("POST", f"{stack.app}{add.action}", data=data, follow=False).status_code == 303
    after = browser.get(f"{stack.app}/s/{sid}/results").text
    assert 'data-trigger="patient-request" data-source="clinician"' in after
    assert "Patient asked about MSK review" in after
    api = browser.get(f"{stack.app}/api/s/{sid}/findings").json()["patients"][0]
    added = api["clinician_findings"]
    assert [a["trigger"] for a in added] == ["patient-request"]
    token = {"X-CSRF-Token": browser.get(f"{stack.app}/api/s/{sid}/findings").json()["csrf_token"]}
    url = f"{stack.app}/api/s/{sid}/decisions/{added[0]['id']}"
    assert browser.request("DELETE", url).status_code == 403  # no token: refused, nothing withdrawn
    removed = browser.request("DELETE", url, headers=token).json()
    assert removed["decisions"] == []


def test_unknown_trigger_and_missing_reason_are_explained(stack: Stack, browser: Browser) -> None:
    sid, _ = launched(browser, stack, "demo-gist")
    token = {"X-CSRF-Token": browser.get(f"{stack.app}/api/s/{sid}/findings").json()["csrf_token"]}
    bad = browser.request(
        "POST",
        f"{stack.app}/api/s/{sid}/clinician-findings",
        json={"trigger": "made-up", "note": "x"},
        headers=token,
    )
    assert bad.status_code == 400 and bad.json()["error"] == "unknown_trigger"
    other = browser.request(
        "POST",
        f"{stack.app}/api/s/{sid}/dismissals",
        json={"trigger": "rare-cancer", "reason": "other"},
        headers=token,
    )
    assert other.status_code == 400 and other.json()["error"] == "note_required"


def test_json_writes_refuse_a_missing_or_forged_csrf_header(stack: Stack, browser: Browser) -> None:
    sid, _ = launched(browser, stack, "demo-gist")
    dismissal = {"trigger": "rare-cancer", "reason": "not-relevant"}
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        for path, body in (
            ("dismissals", dismissal),
            ("clinician-findings", {"trigger": "patient-request", "note": "Asked in clinic"}),
        ):
            refused = browser.request("POST", f"{stack.app}/api/s/{sid}/{path}", json=body, headers=headers)
            assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
    findings = browser.get(f"{stack.app}/api/s/{sid}/findings").json()["patients"][0]
    assert findings["clinician_findings"] == []
    assert all(f["dismissed"] is None for f in findings["findings"])


def test_source_outside_the_record_is_not_found(stack: Stack, browser: Browser) -> None:
    sid, _ = launched(browser, stack, "demo-gist")
    response = browser.get(f"{stack.app}/s/{sid}/source/DiagnosticReport/not-there")
    assert response.status_code == 404 and "is not part of this patient" in response.text


def test_openapi_documents_the_json_api(stack: Stack, browser: Browser) -> None:
    paths = browser.get(f"{stack.app}/api/openapi.json").json()["paths"]
    for path in (
        "/api/s/{sid}/findings",
        "/api/s/{sid}/record",
        "/api/s/{sid}/dismissals",
        "/api/s/{sid}/clinician-findings",
    ):
        assert path in paths


def test_a_cds_card_launch_shows_its_findings_first(stack: Stack, browser: Browser) -> None:
    consent = browser.get(
        f"{stack.ehr}/launch",
        params={"patient": "demo-gist", "app_context": json.dumps({"findings": ["uncertain-pathology"]})},
    )
    page = browser.submit(consent, button=("decision", "allow"))
    sid = session_id(page)
    html = browser.get(f"{stack.app}/s/{sid}/results").text
    assert 'data-testid="alert-origin"' in html and "Uncertain or borderline pathology" in html
    assert cards(html)[0] == "uncertain-pathology"
    assert html.count('data-testid="from-alert"') == 1


def test_an_unreadable_app_context_is_ignored(stack: Stack, browser: Browser) -> None:
    consent = browser.get(f"{stack.ehr}/launch", params={"patient": "demo-gist", "app_context": "{not json"})
    sid = session_id(browser.submit(consent, button=("decision", "allow")))
    html = browser.get(f"{stack.app}/s/{sid}/results").text
    assert 'data-testid="alert-origin"' not in html
    assert sorted(cards(html)) == sorted(INDEX["demo-gist"]["triggers"])


def test_smart_style_from_the_ehr_becomes_css_variables(stack: Stack, browser: Browser) -> None:
    sid = session_id(ehr_launch(browser, stack, "demo-gist"))
    # The callback started the fetch (this client loads no stylesheet by itself).
    from smartapp.web import smart_style

    assert f"{stack.ehr}/smart-style.json" in smart_style._cache
    style = browser.get(f"{stack.ehr}/smart-style.json").json()
    shell = browser.get(f"{stack.app}/s/{sid}/").text
    assert f'href="/s/{sid}/style.css"' in shell
    css = browser.get(f"{stack.app}/s/{sid}/style.css")
    assert css.headers["content-type"].startswith("text/css")
    assert f"--accent: {style['color_highlight']};" in css.text
    assert f"--bg: {style['color_background']};" in css.text
    assert f"--font-body: {style['font_family_body']};" in css.text


def test_style_values_that_could_break_out_of_css_are_dropped() -> None:
    from smartapp.web.smart_style import style_css

    css = style_css(
        {"color_highlight": "#005a9e", "color_text": "red;} body{display:none", "color_error": 42}
    )
    assert "--accent: #005a9e;" in css
    assert "display" not in css and "--fg" not in css and "--crit" not in css


def test_a_coded_resource_is_shown_as_readable_text_not_json(stack: Stack, browser: Browser) -> None:
    sid, html = launched(browser, stack, "demo-aml")
    links = [
        link.replace("&amp;", "&") for link in re.findall(r'data-testid="open-source" href="([^"]+)"', html)
    ]
    condition = next(link for link in links if "/source/Condition/" in link)
    page = browser.get(f"{stack.app}{condition}").text
    assert "Code: Acute myeloid leukemia" in page and "ICD-10-CM C92.00" in page
    assert '"resourceType"' not in page and "aml-cond-primary" not in page  # no raw JSON, no resource id


def test_a_time_critical_page_never_says_that_no_trigger_applies(stack: Stack, browser: Browser) -> None:
    _sid, html = launched(browser, stack, "demo-lung-mscc")
    assert 'data-testid="time-critical"' in html
    assert "No second-opinion trigger applies" not in html
    assert "expedited review in parallel" in html


def test_evidence_says_where_it_stands_in_words_not_resource_ids(stack: Stack, browser: Browser) -> None:
    _sid, html = launched(browser, stack, "demo-gist")
    places = re.findall(r'<p class="where">(.*?)(?: · <a|</p>)', html, re.S)
    assert places and all(not re.search(r"\b[A-Z][A-Za-z]+/[\w.-]+", p) for p in places), places
    assert any(re.search(r"\d{2}/\d{2}/\d{4}", p) for p in places)

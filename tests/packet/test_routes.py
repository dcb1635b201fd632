"""The packet page and API through a real EHR launch against the demo EHR (app + EHR on loopback)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pypdf
import pytest
from demo_ehr import DemoEhrConfig, create_demo_ehr
from demo_ehr.stack import demo_registry

from launch.registry import Registry
from smartapp.web.app import create_app
from tests.support import Browser, free_port, serve_in_thread
from tests.web.conftest import Stack, app_settings

PATIENT = "demo-her2-ihc2"
FIXTURES = Path(__file__).resolve().parents[2] / "demo" / "demo_ehr" / "fixtures" / "patients"


def run_stack(tmp_path: Path, write_back: bool) -> Iterator[Stack]:
    ehr_port, app_port = free_port(), free_port()
    ehr_url, app_url = f"http://127.0.0.1:{ehr_port}", f"http://127.0.0.1:{app_port}"
    ehr = create_demo_ehr(
        DemoEhrConfig(
            base_url=ehr_url,
            app_launch_url=f"{app_url}/launch",
            app_standalone_url=f"{app_url}/standalone",
            redirect_uris=[f"{app_url}/callback"],
            include_large_patient=False,
            stories_on=date.today(),
        )
    )
    registration = demo_registry(ehr_url).all()[0]
    registry = Registry([registration.model_copy(update={"write_back": write_back})])
    with (
        serve_in_thread(ehr, ehr_port),
        serve_in_thread(create_app(app_settings(app_url, tmp_path), registry), app_port),
    ):
        yield Stack(ehr_url, app_url, tmp_path, ehr_port)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield from run_stack(tmp_path, write_back=False)


@pytest.fixture
def writer_stack(tmp_path: Path) -> Iterator[Stack]:
    yield from run_stack(tmp_path, write_back=True)


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def launch(browser: Browser, stack: Stack, patient: str = PATIENT) -> str:
    consent = browser.get(f"{stack.ehr}/launch", params={"patient": patient, "need_patient_banner": "true"})
    assert consent.status_code == 200, consent.text[:300]
    page = browser.submit(consent, button=("decision", "allow"))
    match = re.search(r"/s/([A-Za-z0-9_-]+)/", str(page.request.url))
    assert match, str(page.request.url)
    return match.group(1)


def test_page_drafts_the_packet_and_explains_why_send_is_disabled(stack: Stack, browser: Browser) -> None:
    sid = launch(browser, stack)
    page = browser.get(f"{stack.app}/s/{sid}/packet")
    assert page.status_code == 200
    assert "Caldwell" in page.text and "Records checklist" in page.text
    assert re.search(r'<button type="submit" name="send" value="1" disabled', page.text)
    assert "did not grant SecondLook permission to create" in page.text
    state = browser.get(f"{stack.app}/api/s/{sid}/packet").json()
    assert state["packet"]["patient"]["reference"] == f"Patient/{PATIENT}"
    assert [r["trigger"] for r in state["packet"]["reasons"]] == ["incomplete-biomarker"]
    assert state["version"] == 1 and state["send"]["allowed"] is False
    filtered = browser.get(f"{stack.app}/s/{sid}/packet", params={"state": "MD", "remote": "1"})
    options = re.findall(r'<option value="([^"]+/[^"]+)"[^>]*>([^<]*)</option>', filtered.text)
    assert options and all("[remote]" in label for _, label in options)
    in_state = browser.get(f"{stack.app}/s/{sid}/packet", params={"state": "MD"}).text
    assert "maryland-greenebaum/in-person" in in_state
    assert "vcu-massey/in-person" not in in_state
    # A second visit reads the stored packet instead of drafting a new one.
    assert browser.get(f"{stack.app}/api/s/{sid}/packet").json()["packet"]["id"] == state["packet"]["id"]


def test_second_save_from_the_same_version_is_refused(stack: Stack, browser: Browser) -> None:
    sid = launch(browser, stack)
    api = f"{stack.app}/api/s/{sid}/packet"
    state = browser.get(api).json()
    headers = {"X-CSRF-Token": state["csrf_token"]}
    mine = dict(state["packet"], summary_note="First editor's summary")
    theirs = dict(state["packet"], summary_note="Second editor's summary")
    saved = browser.request("PUT", api, json={"version": 1, "packet": mine}, headers=headers)
    assert saved.status_code == 200 and saved.json()["version"] == 2
    refused = browser.request("PUT", api, json={"version": 1, "packet": theirs}, headers=headers)
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"] == "conflict" and body["current_version"] == 2
    assert body["current"]["summary_note"] == "First editor's summary"
    assert "changed by someone else" in body["message"]
    forged = browser.request(
        "PUT", api, json={"version": 2, "packet": theirs}, headers={"X-CSRF-Token": "forged"}
    )
    assert forged.status_code == 403
    history = browser.get(api).json()["history"]
    assert [h["version"] for h in history] == [1, 2]
    assert history[1]["changes"] == {"summary_note": {"from": "", "to": "First editor's summary"}}
    assert history[1]["who"]


def test_typed_text_survives_a_version_conflict_and_filtering_centers(stack: Stack, browser: Browser) -> None:
    sid = launch(browser, stack)
    api = f"{stack.app}/api/s/{sid}/packet"
    state = browser.get(api).json()
    csrf = state["csrf_token"]
    other = dict(state["packet"], summary_note="The other editor's summary")
    assert (
        browser.request(
            "PUT", api, json={"version": 1, "packet": other}, headers={"X-CSRF-Token": csrf}
        ).status_code
        == 200
    )
    # This user still edits version 1: the save is refused, and the page gives back what they typed.
    stale = {
        "csrf": csrf,
        "version": "1",
        "cover_letter": "Dear colleague, my typed letter",
        "action": "save",
    }
    page = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=stale)
    assert (
        page.status_code == 409
        and "Dear colleague, my typed letter" in page.text
        and "Your text is kept below" in page.text
    )
    assert 'name="version" value="2"' in page.text  # saving again is on the newest version
    assert (
        browser.get(api).json()["packet"]["cover_letter"] == state["packet"]["cover_letter"]
    )  # nothing overwritten silently
    # "Save and filter centers" keeps the typed text and filters the directory.
    form = {
        "csrf": csrf,
        "version": "2",
        "cover_letter": "Letter typed before filtering",
        "action": "filter",
        "filter_state": "MD",
    }
    filtered = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=form)
    assert filtered.status_code == 200 and "state=MD" in str(filtered.request.url)
    assert "maryland-greenebaum/in-person" in filtered.text and "vcu-massey/in-person" not in filtered.text
    assert browser.get(api).json()["packet"]["cover_letter"] == "Letter typed before filtering"


def test_form_edit_pdf_and_fhir_document(stack: Stack, browser: Browser) -> None:
    sid = launch(browser, stack)
    state = browser.get(f"{stack.app}/api/s/{sid}/packet").json()
    form = {
        "csrf": state["csrf_token"],
        "version": "1",
        "cover_letter": "Dear colleague, please review.",
        "destination": "hopkins/hopkins-pathology-consult",
        "sender_name": "Dr Ada Jones",
        "action": "save",
    }
    saved = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=form)
    assert saved.status_code == 200 and "Saved (version 2)" in saved.text
    stale = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=dict(form, cover_letter="Stale edit"))
    assert stale.status_code == 409 and "changed by someone else" in stale.text
    no_token = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=dict(form, csrf="", version="2"))
    assert no_token.status_code == 403

    pdf = browser.get(f"{stack.app}/api/s/{sid}/packet.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    pages = [" ".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(pdf.content)).pages]
    assert (
        "To: Johns Hopkins Sidney Kimmel Comprehensive Cancer Center - Surgical Pathology Consult Service"
        in pages[0]
    )
    assert "Dear colleague, please review." in pages[0]
    assert all(
        f"Page {n} of {len(pages)}" in text and "MRN RB-2026-100512" in text
        for n, text in enumerate(pages, 1)
    )

    document = browser.get(f"{stack.app}/api/s/{sid}/packet/fhir").json()
    assert document["type"] == "document"
    assert document["entry"][0]["resource"]["resourceType"] == "Composition"
    entries = {e["fullUrl"]: e["resource"] for e in document["entry"]}
    request = next(
        r
        for r in entries.values()
        if r["resourceType"] == "ServiceRequest"
        and r.get("identifier", [{}])[0].get("system") == "urn:secondlook:referral-packet"
    )
    assert (request["status"], request["intent"]) == ("draft", "proposal")
    assert entries[request["performer"][0]["reference"]]["name"].startswith("Johns Hopkins")
    assert any(
        r["resourceType"] == "Binary" and r["contentType"] == "application/pdf" for r in entries.values()
    )


def test_finalize_without_what_is_needed_is_refused_with_the_list(stack: Stack, browser: Browser) -> None:
    sid = launch(browser, stack)
    api = f"{stack.app}/api/s/{sid}/packet"
    state = browser.get(api).json()
    headers = {"X-CSRF-Token": state["csrf_token"]}
    refused = browser.request(
        "PUT", api, json={"version": 1, "packet": dict(state["packet"], status="final")}, headers=headers
    )
    assert refused.status_code == 422
    missing = refused.json()["missing"]
    assert "Choose the receiving center." in missing
    # The referring clinician is the launch's fhirUser, read from the EHR (the demo's Practitioner).
    assert (
        "Reyes" in state["packet"]["sender"]["name"]
        and "Enter the referring clinician's name." not in missing
    )
    unnamed = dict(state["packet"], status="final", sender=dict(state["packet"]["sender"], name=""))
    refused = browser.request("PUT", api, json={"version": 1, "packet": unnamed}, headers=headers)
    assert refused.status_code == 422 and "Enter the referring clinician's name." in refused.json()["missing"]
    form = {"csrf": state["csrf_token"], "version": "1", "summary_note": "Kept", "action": "final"}
    page = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=form)
    assert (
        page.status_code == 422
        and "cannot be marked final yet" in page.text
        and "Choose the receiving center." in page.text
    )
    after = browser.get(api).json()
    assert after["status"] == "draft" and after["packet"]["summary_note"] == "Kept"


def test_send_to_ehr_with_create_scopes_is_idempotent(writer_stack: Stack, browser: Browser) -> None:
    sid = launch(browser, writer_stack)
    api = f"{writer_stack.app}/api/s/{sid}/packet"
    state = browser.get(api).json()
    headers = {"X-CSRF-Token": state["csrf_token"]}
    assert state["send"] == {
        "allowed": False,
        "reason": "Mark the packet final before sending it to the EHR.",
    }
    ready = dict(
        state["packet"],
        status="final",
        sender=dict(state["packet"]["sender"], name="Dr Ada Jones"),
        destination={"center_id": "msk/msk-more-health", "name": "Memorial Sloan Kettering"},
        checklist=[dict(i, status="not-applicable") for i in state["packet"]["checklist"]],
    )
    final = browser.request("PUT", api, json={"version": 1, "packet": ready}, headers=headers)
    assert final.status_code == 200 and final.json()["send"]["allowed"] is True
    first = browser.request("POST", f"{api}/send", headers=headers).json()
    second = browser.request("POST", f"{api}/send", headers=headers).json()
    assert first["ServiceRequest"]["created"] and not second["ServiceRequest"]["created"]
    assert second["ServiceRequest"]["id"] == first["ServiceRequest"]["id"]
    assert second["DocumentReference"]["id"] == first["DocumentReference"]["id"]
    receipts = browser.get(api).json()["receipts"]
    assert [r["ServiceRequest"]["id"] for r in receipts] == [first["ServiceRequest"]["id"]] * 2
    edit_after_final = browser.request(
        "PUT", api, json={"version": 2, "packet": state["packet"]}, headers=headers
    )
    assert edit_after_final.status_code == 409 and edit_after_final.json()["error"] == "final"


@pytest.mark.parametrize(
    ("rtype", "field", "value"),
    [
        ("Condition", "code", "C50.9"),
        ("Coverage", "payor", "Acme"),
        ("Patient", "identifier", "MRN-1"),
        ("Condition", "stage", "IIA"),
    ],
)
def test_a_malformed_element_never_breaks_the_packet(
    rtype: str, field: str, value: str, tmp_path: Path, browser: Browser
) -> None:
    """The page, API, PDF and FHIR document of a chart with one malformed element (served by the demo EHR)."""
    folder = tmp_path / "patients"
    folder.mkdir()
    bundle = json.loads((FIXTURES / "02-her2-equivocal-no-ish.json").read_text())
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == rtype:
            entry["resource"][field] = value
    (folder / "chart.json").write_text(json.dumps(bundle))
    ehr_port, app_port = free_port(), free_port()
    ehr_url, app_url = f"http://127.0.0.1:{ehr_port}", f"http://127.0.0.1:{app_port}"
    ehr = create_demo_ehr(
        DemoEhrConfig(
            base_url=ehr_url,
            app_launch_url=f"{app_url}/launch",
            patients_dir=folder,
            redirect_uris=[f"{app_url}/callback"],
            include_large_patient=False,
        )
    )
    registry = Registry([demo_registry(ehr_url).all()[0]])
    with (
        serve_in_thread(ehr, ehr_port),
        serve_in_thread(create_app(app_settings(app_url, tmp_path), registry), app_port),
    ):
        stack = Stack(ehr_url, app_url, tmp_path, ehr_port)
        sid = launch(browser, stack)
        assert browser.get(f"{app_url}/s/{sid}/packet").status_code == 200
        assert browser.get(f"{app_url}/api/s/{sid}/packet").status_code == 200
        assert browser.get(f"{app_url}/api/s/{sid}/packet.pdf").content.startswith(b"%PDF")
        assert browser.get(f"{app_url}/api/s/{sid}/packet/fhir").json()["type"] == "document"

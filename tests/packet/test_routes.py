"""The packet page and API through a real EHR launch against the demo EHR (app + EHR on loopback)."""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

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


def run_stack(
    tmp_path: Path,
    write_back: bool,
    *,
    wrap_ehr: Callable[[Any], Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> Iterator[Stack]:
    """The demo EHR and the app on loopback. `wrap_ehr` puts a test's layer in front of the EHR
    (e.g. failing writes); `settings` overrides app settings (e.g. a short FHIR timeout)."""
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
    app_config = app_settings(app_url, tmp_path).model_copy(update=settings or {})
    with (
        serve_in_thread(wrap_ehr(ehr) if wrap_ehr else ehr, ehr_port),
        serve_in_thread(create_app(app_config, registry), app_port),
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


def destinations(page: str) -> dict[str, str]:
    """The destination radios on the editor page: directory key → label text."""
    radios = re.findall(
        r'<input type="radio" name="destination" id="([^"]+)" value="([^"]+)"[^>]*>\s*<label '
        r'for="\1">([^<]*)</label>',
        page,
    )
    return {key: html.unescape(label) for _, key, label in radios}


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
    options = destinations(filtered.text)
    assert options and all("[remote]" in label for label in options.values())
    in_state = browser.get(f"{stack.app}/s/{sid}/packet", params={"state": "MD"}).text
    assert "maryland-greenebaum/in-person" in in_state
    assert "vcu-massey/in-person" not in in_state
    # A second visit reads the stored packet instead of drafting a new one.
    assert browser.get(f"{stack.app}/api/s/{sid}/packet").json()["packet"]["id"] == state["packet"]["id"]


def test_editor_ranks_destinations_with_reasons_and_intake_contact(stack: Stack, browser: Browser) -> None:
    # demo-her2-ihc2: a pathology slide review for a breast cancer, patient in Towson, MD.
    sid = launch(browser, stack)
    page = browser.get(f"{stack.app}/s/{sid}/packet").text
    assert (
        "Ranked for this packet: pathology slide review;\n    tumor type breast cancer;\n"
        "    the patient's state Maryland." in html.unescape(page)
    )
    # Pathology-capable programs first: remote ones and the one in-person center in Maryland, in the
    # directory's order; in-person centers in other states after them.
    assert list(destinations(page))[:6] == [
        "hopkins/hopkins-pathology-consult",
        "maryland-greenebaum/in-person",
        "cleveland-clinic/cleveland-myconsult-pathology",
        "mayo/mayo-labs-pathology",
        "md-anderson/mdanderson-pathology",
        "mount-sinai/in-person",
    ]
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    text = " ".join(text.split())
    assert (
        "Reviews pathology slides, as this packet asks Remote: the patient need not travel "
        "Intake contact: not in the directory; check the center's site" in text
    )
    assert "In person in the patient's state (Maryland)" in text
    assert "But: In person in New York; the patient lives in Maryland" in text
    assert "But: Gives clinical opinions only; this packet asks for a pathology slide review" in text
    assert 'href="https://eclevelandclinic.org"' in page
    assert "Turnaround: typically within 4 business days of receiving all materials" in text
    assert "A consultation, not a primary diagnosis." in text
    assert "shared/domain" not in page and "About this directory: A partial starting list" in text

    # Choosing a program and a preference: the order follows, the letter carries the contact.
    state = browser.get(f"{stack.app}/api/s/{sid}/packet").json()
    form = {
        "csrf": state["csrf_token"],
        "version": "1",
        "destination": "cleveland-clinic/cleveland-myconsult-pathology",
        "preference": "remote",
        "action": "save",
    }
    saved = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=form)
    assert saved.status_code == 200
    assert (
        "Receiving center: Cleveland Clinic - MyConsult online pathology second opinion (remote)"
        in saved.text
    )
    assert '<option value="remote" selected>' in saved.text
    assert list(destinations(saved.text))[:5] == [
        "hopkins/hopkins-pathology-consult",
        "cleveland-clinic/cleveland-myconsult-pathology",
        "mayo/mayo-labs-pathology",
        "md-anderson/mdanderson-pathology",
        "maryland-greenebaum/in-person",  # in person near home comes after remote, as preferred
    ]
    assert re.search(r'value="cleveland-clinic/cleveland-myconsult-pathology" checked', saved.text)
    preview = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", saved.text)).split())
    assert "Intake contact: portal https://eclevelandclinic.org" in preview
    assert "Program notes: Residence restrictions apply, with few exceptions" in preview
    packet = browser.get(f"{stack.app}/api/s/{sid}/packet").json()["packet"]
    assert packet["preference"] == "remote"
    assert packet["destination"]["portal"] == "https://eclevelandclinic.org"
    assert packet["destination"]["caveats"][0].startswith("Residence restrictions apply")

    # A preference naming no center in the directory is not stored; a named center is.
    form |= {"version": "2", "preference": "center:nowhere"}
    browser.request("POST", f"{stack.app}/s/{sid}/packet", data=form)
    assert browser.get(f"{stack.app}/api/s/{sid}/packet").json()["packet"]["preference"] == "remote"
    form |= {"version": "3", "preference": "center:msk"}
    named = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=form)
    # MSK's programs give clinical opinions only: the review type still comes first, and MSK's
    # programs lead the clinical-only ones.
    keys = list(destinations(named.text))
    first_clinical = keys.index("msk/msk-more-health")
    assert keys[first_clinical + 1] == "msk/msk-records-review"
    assert all(k.endswith("/in-person") or "pathology" in k for k in keys[:first_clinical])
    assert "The center the patient asked for" in named.text


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
    assert page.status_code == 409 and "Nothing you typed is lost" in page.text
    # Each side changed a different field: the typed letter and the other's summary, no clash.
    assert (
        '<textarea name="cover_letter" id="f-cover_letter">Dear colleague, my typed letter</textarea>'
        in page.text
    )
    assert "The other editor&#39;s summary</textarea>" in page.text and 'data-testid="clash"' not in page.text
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


def checklist_groups(page: str) -> dict[str, str]:
    """The editor's checklist groups in page order: category → the group's heading text."""
    found = re.findall(r'data-category="([a-z-]+)">\s*<h3 id="[^"]+">(.*?)</h3>', page, flags=re.S)
    return {c: " ".join(html.unescape(re.sub(r"<[^>]+>", "", h)).split()) for c, h in found}


def test_a_group_button_marks_only_its_group_and_saves_the_other_edits(
    stack: Stack, browser: Browser
) -> None:
    sid = launch(browser, stack)
    api = f"{stack.app}/api/s/{sid}/packet"
    state = browser.get(api).json()
    before = {i["id"]: (i["category"], i["status"]) for i in state["packet"]["checklist"]}
    page = browser.get(f"{stack.app}/s/{sid}/packet").text
    groups = checklist_groups(page)
    # demo-her2-ihc2 asks for a biomarker review: the slides and pathology reports lead.
    assert list(groups)[:2] == ["slides", "pathology-report"]
    assert groups["slides"].startswith("Pathology glass slides and blocks (")
    assert re.search(r"\((\d+ of \d+ to resolve|resolved|all \d+ resolved)\)$", groups["imaging"])
    # Each button names its group for a screen reader.
    assert (
        '<button type="submit" name="action" value="bulk:imaging:not-applicable" class="secondary">'
        'Mark all not applicable<span class="visually-hidden"> in Imaging studies and reports</span></button>'
        in page
    )
    form = {
        "csrf": state["csrf_token"],
        "version": "1",
        "cover_letter": "Typed before marking a group",
        "action": "bulk:imaging:not-applicable",
    }
    first = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=form, follow=False)
    assert first.status_code == 303
    assert first.headers["location"].endswith("#checklist-imaging")  # back at the group
    marked = browser.get(urljoin(f"{stack.app}/", first.headers["location"]))
    imaging = [k for k, (c, _) in before.items() if c == "imaging"]
    assert [before[k][1] for k in imaging] == ["attached"] * 4
    notice = "Saved: 4 records marked not applicable."
    assert f'<p class="group-notice" role="status">{notice}</p>' in marked.text
    assert checklist_groups(marked.text)["imaging"] == "Imaging studies and reports (all 4 resolved)"
    after = browser.get(api).json()
    assert after["packet"]["cover_letter"] == "Typed before marking a group"
    statuses = {i["id"]: i["status"] for i in after["packet"]["checklist"]}
    assert {k: s for k, s in statuses.items() if k in imaging} == dict.fromkeys(imaging, "not-applicable")
    assert {k: s for k, s in statuses.items() if k not in imaging} == {
        k: s for k, (_, s) in before.items() if k not in imaging
    }

    # "To request" needs whom to request from: records without one stay, and the notice says so.
    (treatment,) = [i for i in after["packet"]["checklist"] if i["category"] == "treatment"]
    assert treatment["status"] == "to-gather" and not treatment["holder"]
    form = {"csrf": state["csrf_token"], "version": "2", "action": "bulk:treatment:to-request"}
    refused = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=form)
    assert 'Saved; no record changed. 1 record without a "request from" stayed as before' in html.unescape(
        refused.text
    )
    form |= {"version": "3", f"item-{treatment['id']}-holder": "Dr Patel's infusion clinic"}
    requested = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=form)
    assert "Saved: 1 record marked to request." in requested.text
    assert checklist_groups(requested.text)["treatment"] == "Treatment records (resolved)"
    statuses = {i["id"]: (i["status"], i["holder"]) for i in browser.get(api).json()["packet"]["checklist"]}
    assert statuses[treatment["id"]] == ("to-request", "Dr Patel's infusion clinic")

    # A made-up group or status saves the form and changes no record.
    form = {"csrf": state["csrf_token"], "version": "4", "action": "bulk:nowhere:attached"}
    odd = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=form)
    assert odd.status_code == 200 and "Saved (version 5)" in odd.text and "group-notice" not in odd.text
    assert {
        i["id"]: (i["status"], i["holder"]) for i in browser.get(api).json()["packet"]["checklist"]
    } == statuses


def text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_a_conflict_shows_both_texts_side_by_side_and_lists_every_other_change(
    stack: Stack, browser: Browser
) -> None:
    sid = launch(browser, stack, "demo-ovarian-serous")
    api = f"{stack.app}/api/s/{sid}/packet"
    state = browser.get(api).json()
    csrf, loaded = state["csrf_token"], state["packet"]
    page = browser.get(f"{stack.app}/s/{sid}/packet").text
    item = loaded["checklist"][0]
    record = re.search(rf'id="remove-item-{item["id"]}"> remove record (\d+)', page)
    assert record, "the first record's remove box"
    # Someone else (here the same user in another window) saves first.
    theirs = dict(
        loaded,
        cover_letter="Dear Dr Lee,\nTheir letter.",
        destination={"center_id": "msk/msk-more-health", "name": "Memorial Sloan Kettering"},
        questions=[*loaded["questions"], {"text": "Is the microinvasion real?"}],
        checklist=[dict(item, status="not-applicable"), *loaded["checklist"][1:]],
    )
    put = browser.request("PUT", api, json={"version": 1, "packet": theirs}, headers={"X-CSRF-Token": csrf})
    assert put.status_code == 200
    # This user saves the form loaded at version 1: every field as loaded, some of them changed.
    question = loaded["questions"][0]
    form = {
        "csrf": csrf,
        "version": "1",
        "cover_letter": "Dear colleague,\nMy letter.",
        "timing_advice": loaded["timing_advice"],
        "summary_note": "My summary",
        "destination": "",
        f"item-{item['id']}-status": item["status"],
        "new_reason": "Tumor board asked for a second look",
        "remove": f"question:{question['id']}",
        "action": "save",
    }
    conflict = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=form)
    assert conflict.status_code == 409
    body = conflict.text
    start = body.index(">", body.index('data-testid="conflict"')) + 1
    section = body[start : body.index("</section>", start)]
    words = text_of(section)
    assert words.startswith(
        "Saved meanwhile: your changes are not saved yet While you were editing, you in another window "
        "saved this packet (last at "
    )
    assert (
        "Nothing you typed is lost: the form below is the newest version, version 2, with your changes"
        in words
    )
    # The letter both changed: yours in the form (what Save keeps), theirs beside it, read-only.
    assert '<li><a href="#clash-cover_letter">Cover letter</a></li>' in section
    pair = body[body.index('<div class="clash" id="clash-cover_letter"') :]
    pair = pair[: pair.index('<div class="clash-side clash-theirs">') + 600]
    assert (
        '<label for="f-cover_letter"><span class="visually-hidden">Cover letter: </span>Your text (what '
        "Save keeps)</label>" in pair
    )
    assert '<textarea name="cover_letter" id="f-cover_letter">Dear colleague,\nMy letter.</textarea>' in pair
    assert re.search(
        r'<label for="saved-cover_letter"><span class="visually-hidden">Cover letter: </span>'
        r"Saved meanwhile by you in another window at \d{1,2}:\d\d [AP]M UTC on \d\d/\d\d/\d{4}</label>",
        pair,
    )
    assert '<textarea id="saved-cover_letter" readonly>Dear Dr Lee,\nTheir letter.</textarea>' in pair
    # Their other changes, listed with links, and in the form; the picker opens on its change.
    assert (
        "Receiving center</a>: now Memorial Sloan Kettering (saved by you in another window at"
        in html.unescape(section)
    )
    assert (
        f'<a href="#f-item-{item["id"]}-status">Record {record.group(1)} status</a>: now not applicable'
        in section
    )
    assert "Question &#34;Is the microinvasion real?&#34;</a>: added meanwhile" in section
    assert re.search(r'<details class="destination-picker" id="destination-picker"[^>]* open>', body)
    assert re.search(
        r'<option value="not-applicable" selected>',
        body[body.index(f'name="item-{item["id"]}-status"') :][:400],
    )
    # Yours, not saved yet: the new reason as an add field, the removed question with its box ticked.
    assert '<a href="#new-reason-1">New reason</a>: not saved yet' in section
    assert (
        '<textarea name="new_reason" id="new-reason-1">Tumor board asked for a second look</textarea>' in body
    )
    assert f'<a href="#remove-question-{question["id"]}">Question 1</a>: its remove box is ticked' in section
    assert f'id="remove-question-{question["id"]}" checked>' in body
    assert "My summary</textarea>" in body
    assert "Practitioner/" not in section and loaded["id"] not in section  # no internal ids
    # Nothing was saved by the refused post.
    assert browser.get(api).json()["packet"]["cover_letter"] == "Dear Dr Lee,\nTheir letter."

    # Saving the page's form again (here with the letters merged by hand) stores the merge.
    again = {
        "csrf": csrf,
        "version": "2",
        "cover_letter": "Dear Dr Lee,\nMy letter, merged.",
        "summary_note": "My summary",
        "new_reason": "Tumor board asked for a second look",
        "remove": f"question:{question['id']}",
        "action": "save",
    }
    saved = browser.request("POST", f"{stack.app}/s/{sid}/packet", data=again)
    assert (
        saved.status_code == 200
        and "Saved (version 3)" in saved.text
        and 'data-testid="conflict"' not in saved.text
    )
    packet = browser.get(api).json()["packet"]
    assert (
        packet["cover_letter"] == "Dear Dr Lee,\nMy letter, merged."
        and packet["summary_note"] == "My summary"
    )
    assert packet["destination"]["center_id"] == "msk/msk-more-health"
    assert [q["text"] for q in packet["questions"]] == ["Is the microinvasion real?"]
    assert packet["reasons"][-1]["summary"] == "Tumor board asked for a second look"
    assert packet["checklist"][0]["status"] == "not-applicable"


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
    assert stale.status_code == 409 and "Saved meanwhile: your changes are not saved yet" in stale.text
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

"""The center's report file kept with the outside opinion: uploaded by form or API, checked by its
bytes, shown and downloadable on the packet page and the findings page, only for its patient."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packet.test_routes import launch, run_stack
from tests.packet.test_tracking_routes import CENTER, OPINION, Referral
from tests.support import Browser
from tests.web.conftest import Stack

# A minimal but real one-page PDF, written by hand (not by the code under test).
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield from run_stack(tmp_path, write_back=False)


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def sent_referral(browser: Browser, stack: Stack, patient: str = "demo-her2-ihc2") -> tuple[str, Referral]:
    sid = launch(browser, stack, patient)
    referral = Referral(browser, stack, sid)
    referral.finalize()
    assert referral.status("sent").status_code == 200
    return sid, referral


def opinion_form(referral: Referral, **extra: str) -> dict[str, str]:
    return {"csrf": referral.state["csrf_token"], **{k: str(v) for k, v in OPINION.items()}, **extra}


def test_an_uploaded_pdf_is_kept_and_shown_with_the_opinion_and_the_findings(
    stack: Stack, browser: Browser
) -> None:
    sid, referral = sent_referral(browser, stack)
    page = browser.request(
        "POST",
        f"{stack.app}/s/{sid}/packet/opinion",
        data=opinion_form(referral),
        files={"report": ("../../MSK consult letter.pdf", PDF, "application/octet-stream")},
    )
    assert page.status_code == 200
    link = re.search(
        r'<a href="(/s/[^"]+/packet/outside-report/(\d+))">Outside report: ([^<]+)</a> \(PDF, 1 kB\)',
        page.text,
    )
    assert link, page.text[-2000:]
    assert link.group(3) == "MSK consult letter.pdf"  # the path part of the name is dropped
    download = browser.get(stack.app + link.group(1))
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert f'filename="outside-report-{link.group(2)}.pdf"' in download.headers["content-disposition"]
    findings = browser.get(f"{stack.app}/s/{sid}/results").text
    assert f"Outside opinion from {CENTER}, received" in findings
    assert "<strong>Changes the plan</strong>. HER2 FISH ratio 2.4" in findings
    assert link.group(1) in findings


def test_a_file_that_is_neither_pdf_nor_text_is_refused_and_nothing_typed_is_lost(
    stack: Stack, browser: Browser
) -> None:
    sid, referral = sent_referral(browser, stack)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    page = browser.request(
        "POST",
        f"{stack.app}/s/{sid}/packet/opinion",
        data=opinion_form(referral, summary="Typed summary kept"),
        files={"report": ("scan.pdf", png, "application/pdf")},
    )
    assert page.status_code == 422
    assert (
        "The outside report file was not kept: only PDF and plain-text files can be kept as the outside "
        "report. The opinion was not recorded" in page.text
    )
    assert "Typed summary kept</textarea>" in page.text
    assert browser.get(referral.api).json()["tracking"]["status"] == "sent"


def test_the_api_keeps_a_legacy_encoded_text_report_as_utf8(stack: Stack, browser: Browser) -> None:
    sid, referral = sent_referral(browser, stack)
    text = "Consultation: tumeur stromale gastro-intestinale confirmée; résection conseillée.\n"
    bad = browser.request(
        "POST",
        f"{referral.api}/opinion",
        json={"opinion": OPINION, "report": {"name": "letter.txt", "data": "not base64!"}},
        headers=referral.headers,
    )
    assert bad.status_code == 422
    assert bad.json()["missing"] == ["Outside report: the data is not base64."]
    sent = browser.request(
        "POST",
        f"{referral.api}/opinion",
        json={
            "opinion": OPINION,
            "report": {"name": "letter.txt", "data": base64.b64encode(text.encode("cp1252")).decode()},
        },
        headers=referral.headers,
    )
    assert sent.status_code == 200, sent.text[:300]
    page = browser.get(f"{stack.app}/s/{sid}/packet").text
    href = re.search(
        r'href="(/s/[^"]+/packet/outside-report/\d+)">Outside report: letter.txt</a> \(text, 1 kB\)', page
    )
    assert href
    download = browser.get(stack.app + href.group(1))
    assert download.headers["content-type"] == "text/plain; charset=utf-8"
    assert download.content.decode("utf-8").strip() == text.strip()


def test_another_patients_launch_cannot_read_the_report(stack: Stack, browser: Browser) -> None:
    sid, referral = sent_referral(browser, stack)
    browser.request(
        "POST",
        f"{stack.app}/s/{sid}/packet/opinion",
        data=opinion_form(referral),
        files={"report": ("letter.pdf", PDF, "application/pdf")},
    )
    page = browser.get(f"{stack.app}/s/{sid}/packet").text
    report_id = re.search(r"/packet/outside-report/(\d+)", page)
    assert report_id
    other = Browser()
    try:
        other_sid = launch(other, stack, "demo-gist")
        refused = other.get(f"{stack.app}/s/{other_sid}/packet/outside-report/{report_id.group(1)}")
        assert refused.status_code == 404
        assert PDF not in refused.content
        # The owner's session still reads it; the other session cannot borrow the owner's path.
        assert other.get(f"{stack.app}/s/{sid}/packet/outside-report/{report_id.group(1)}").status_code in (
            401,
            403,
        )
    finally:
        other.close()

"""The PDF carries what the letter promises: a request letter to each holder of glass slides and
blocks, and every report text, each starting on its own page; PDF reports are embedded files."""

from __future__ import annotations

import base64
import io

import pypdf

from smartapp.packet.model import Attachment
from smartapp.packet.pdf import render_pdf, slide_requests
from tests.packet.golden import packet_for


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() or "" for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def test_slide_request_letter_and_report_texts_each_start_a_page() -> None:
    packet = packet_for("demo-her2-ihc2")
    pages = pages_text(render_pdf(packet))
    request = [i for i, text in enumerate(pages) if "Request to release pathology material" in text]
    assert len(request) == 1
    letter_page = pages[request[0]]
    assert "DRAFT" in letter_page
    assert "To: Riverbend Health Cancer Institute" in letter_page
    assert "S26-03988-A1" in letter_page
    assert "Records checklist" not in letter_page  # the referral letter ended on an earlier page
    report_pages = [i for i, text in enumerate(pages) if "Report 1: Surgical pathology report" in text]
    assert report_pages and report_pages[0] > request[0]
    assert "Estrogen receptor: POSITIVE, 95% of tumor nuclei" in "".join(pages[report_pages[0] :])
    second = next(i for i, text in enumerate(pages) if "Report 2: Screening mammogram" in text)
    assert second > report_pages[0] and "Report 1:" not in pages[second]


def test_holders_get_one_request_letter_each_and_nothing_when_no_slides_are_requested() -> None:
    packet = packet_for("demo-gist")
    holders = [holder for holder, _ in slide_requests(packet)]
    assert holders == ["Lakeside Community Hospital"]
    for item in packet.checklist:
        if item.category == "slides":
            item.status = "not-applicable"
    assert slide_requests(packet) == []
    assert not any("Request to release" in text for text in pages_text(render_pdf(packet)))


def test_a_pdf_report_is_embedded_as_a_file_and_named_in_the_appendix() -> None:
    packet = packet_for("demo-her2-ihc2")
    report_pdf = render_pdf(packet_for("demo-gist"))  # any real PDF will do
    packet.sources.append(
        {
            "resourceType": "DiagnosticReport",
            "id": "outside-path",
            "status": "final",
            "code": {"text": "Outside pathology report"},
            "presentedForm": [
                {"contentType": "application/pdf", "data": base64.b64encode(report_pdf).decode("ascii")}
            ],
        }
    )
    packet.attachments.append(
        Attachment(
            reference="DiagnosticReport/outside-path",
            title="Outside pathology report",
            content_type="application/pdf",
            date="10/17/2026",
        )
    )
    pdf = render_pdf(packet)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    number = len(packet.attachments)
    name = f"{number:02d}-outside-pathology-report.pdf"
    assert list(reader.attachments) == [name]
    assert reader.attachments[name][0] == report_pdf
    text = "".join(page.extract_text() or "" for page in reader.pages)
    assert f"Report {number}: Outside pathology report, 10/17/2026" in text
    assert f'embedded in this file as the attachment "{name}"' in text

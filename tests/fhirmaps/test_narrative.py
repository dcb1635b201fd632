import base64

from fhirmaps.narrative import (
    REMEMBERED_CHARS,
    attachment_bytes,
    decode_bytes,
    html_to_text,
    rtf_to_text,
    split_sections,
)


def test_sections_split_on_varied_headings_and_keep_history_apart() -> None:
    text = (
        "Clinical History: r/o lymphoma\nFINAL DIAGNOSIS -\n"
        "Lymph node: Reactive hyperplasia. COMMENT: Flow cytometry pending.\n"
        "Gross Description:\nReceived in formalin.\nDiagnosis was made after review."
    )
    kinds = [(s.kind, s.text.splitlines()[0]) for s in split_sections(text)]
    assert kinds[0] == ("history", "r/o lymphoma")
    assert kinds[1] == ("diagnosis", "Lymph node: Reactive hyperplasia.")
    assert kinds[2] == ("comment", "Flow cytometry pending.")
    assert kinds[3][0] == "gross"
    # prose that starts with a heading word is not a heading
    assert "Diagnosis was made after review." in split_sections(text)[3].text


def test_rtf_and_html_are_reduced_to_text() -> None:
    rtf = r"{\rtf1\ansi{\fonttbl{\f0 Arial;}}\f0 FINAL DIAGNOSIS:\par Mantle cell lymphoma, caf\'e9\par}"
    assert rtf_to_text(rtf) == "FINAL DIAGNOSIS:\nMantle cell lymphoma, café"
    assert (
        html_to_text("<div><p>IMPRESSION:</p><p>New liver lesions &amp; progression</p></div>")
        == "IMPRESSION:\n\nNew liver lesions & progression"
    )


def test_pdf_text_is_extracted() -> None:
    stream = b"BT /F1 12 Tf 72 720 Td (FINAL DIAGNOSIS: Chordoma) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    body, offsets = b"%PDF-1.4\n", []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 6\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    body += b"trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    assert "Chordoma" in decode_bytes(body, "application/pdf")


def test_attachment_sources_inline_binary_and_fetched() -> None:
    inline = {"contentType": "text/plain", "data": base64.b64encode(b"hello").decode()}
    assert attachment_bytes(inline, {}, {}) == (b"hello", "text/plain")
    by_binary = {"contentType": "text/plain", "url": "https://ehr.example/fhir/Binary/b1"}
    assert attachment_bytes(by_binary, {"Binary/b1": (b"from binary", "text/plain")}, {}) == (
        b"from binary",
        "text/plain",
    )
    fetched = {"url": "https://docs.example/r1.txt"}
    assert attachment_bytes(fetched, {}, {"https://docs.example/r1.txt": (b"x", "text/plain")}) == (
        b"x",
        "text/plain",
    )
    assert attachment_bytes({"url": "https://docs.example/missing"}, {}, {}) is None


def test_binary_content_is_refused_whatever_its_declared_type() -> None:
    import pytest

    for blob in (
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
        b"PK\x03\x04FINAL DIAGNOSIS",
        b"text with a NUL\x00 byte",
        bytes(range(0, 32)) * 10,
        bytes(range(128, 256)) * 4,
    ):
        for content_type in ("text/plain", ""):
            with pytest.raises(ValueError, match="binary"):
                decode_bytes(blob, content_type)


def test_control_characters_and_high_bytes_decide_binary_at_their_thresholds() -> None:
    import pytest

    text = b"FINAL DIAGNOSIS: chordoma.\tGrade 2.\r\n\x0cPage 2\n" * 4  # tab, CR, LF, FF are text
    assert decode_bytes(text, "text/plain").startswith("FINAL DIAGNOSIS")
    one_in_a_hundred = b"a" * 99 + b"\x1b"  # one control character in each 100: still text
    assert decode_bytes(one_in_a_hundred * 3, "text/plain") == (one_in_a_hundred * 3).decode()
    with pytest.raises(ValueError, match="binary"):
        decode_bytes(b"a" * 97 + b"\x01\x0b\x1f", "text/plain")  # three in 100, \x0b among them
    # Not UTF-8, so read as Windows-1252: a quarter of high bytes is text, more is binary.
    assert decode_bytes(b"\xe9" * 25 + b"a" * 75, "") == "\u00e9" * 25 + "a" * 75
    with pytest.raises(ValueError, match="binary"):
        decode_bytes(b"\xe9" * 26 + b"a" * 74, "")


def test_utf8_bom_utf16_and_windows_1252_text_are_read() -> None:
    assert decode_bytes(b"\xef\xbb\xbfFINAL DIAGNOSIS: Chordoma", "text/plain") == "FINAL DIAGNOSIS: Chordoma"
    assert (
        decode_bytes("FINAL DIAGNOSIS: Chordoma".encode("utf-16"), "text/plain")
        == "FINAL DIAGNOSIS: Chordoma"
    )
    assert (
        decode_bytes("Caf\u00e9 au lait spots \u2013 no malignancy".encode("cp1252"), "")
        == "Caf\u00e9 au lait spots \u2013 no malignancy"
    )


def test_remembered_sections_are_the_same_and_a_caller_cannot_change_them() -> None:
    text = "COMMENT: Flow cytometry pending.\nFINAL DIAGNOSIS: Reactive hyperplasia."
    first = split_sections(text)
    first.clear()  # a caller's list is its own
    again = split_sections(text)
    assert [(s.kind, s.text) for s in again] == [
        ("comment", "Flow cytometry pending."),
        ("diagnosis", "Reactive hyperplasia."),
    ]
    long = "FINAL DIAGNOSIS: Chordoma.\n" + "x " * (REMEMBERED_CHARS // 2)
    assert [s.kind for s in split_sections(long)] == ["diagnosis"]


def test_plain_text_is_tidied_line_by_line() -> None:
    raw = "  FINAL\t\tDIAGNOSIS:  \r\n\r\n\r\n\r\nGIST,\u00a0\u00a0high   grade \t\rend\t"
    assert decode_bytes(raw.encode(), "text/plain") == "FINAL DIAGNOSIS:\n\nGIST, high grade\nend"

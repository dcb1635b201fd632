"""Narrative text from attachments and XHTML, split into report sections.

Attachments arrive inline (base64 ``data``), as ``Binary/<id>`` inside the same input, or as
bytes the caller fetched (``attachments``: url -> (bytes, contentType)). Nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from html.parser import HTMLParser

from fhirmaps import codes
from fhirmaps.direct_init import direct_init

Attachments = Mapping[str, tuple[bytes, str]]


@direct_init
@dataclass(frozen=True)
class Section:
    kind: str  # diagnosis, comment, addendum, history, gross, ... or "body" before any heading
    heading: str
    text: str


class _TextCollector(HTMLParser):
    _BLOCKS = frozenset(
        {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre", "section"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        if tag in self._BLOCKS:
            self.parts.append("\n")
        if tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    return _tidy("".join(collector.parts))


_RTF_SKIP_GROUPS = (
    "fonttbl",
    "colortbl",
    "stylesheet",
    "info",
    "pict",
    "header",
    "footer",
    "listtable",
    "generator",
)
_RTF_TOKEN = re.compile(
    r"\\'([0-9a-fA-F]{2})|\\u(-?\d+)\??|\\([a-zA-Z]+)(-?\d+)? ?|\\([{}\\])|\\\n|([{}])|\n|\r|([^\\{}\r\n]+)"
)


def rtf_to_text(rtf: str) -> str:
    """Plain text of an RTF document: control words dropped, \\par as newline, destinations skipped."""
    out: list[str] = []
    stack: list[bool] = []
    skipping = False
    for match in _RTF_TOKEN.finditer(rtf):
        hex_char, uni, word, _arg, escaped, brace, text = match.groups()
        if brace == "{":
            stack.append(skipping)
        elif brace == "}":
            skipping = stack.pop() if stack else False
        elif word:
            if word in _RTF_SKIP_GROUPS:
                skipping = True
            elif not skipping and word in ("par", "line", "row", "sect", "page"):
                out.append("\n")
            elif not skipping and word in ("tab", "cell"):
                out.append(" ")
        elif match.group(0).startswith("\\*"):
            skipping = True
        elif skipping:
            continue
        elif hex_char:
            out.append(bytes([int(hex_char, 16)]).decode("cp1252", errors="replace"))
        elif uni:
            out.append(chr(int(uni) % 65536))
        elif escaped:
            out.append(escaped)
        elif text:
            out.append(text)
    return _tidy("".join(out))


def pdf_to_text(data: bytes) -> str:
    from pypdf import PdfReader  # imported lazily: only PDF reports need it

    reader = PdfReader(io.BytesIO(data))
    return _tidy("\n".join(page.extract_text() or "" for page in reader.pages))


def decode_bytes(data: bytes, content_type: str) -> str:
    """Text of attachment bytes by content type; raises ValueError when unreadable."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/pdf" or data[:5] == b"%PDF-":
        try:
            return pdf_to_text(data)
        except Exception as exc:  # pypdf raises many types for damaged files
            raise ValueError(f"PDF could not be read ({type(exc).__name__})") from exc
    text = _decode_text(data)
    if kind in ("application/rtf", "text/rtf") or text.lstrip().startswith("{\\rtf"):
        return rtf_to_text(text)
    if kind in ("text/html", "application/xhtml+xml") or text.lstrip().lower().startswith(
        ("<html", "<div", "<!doctype")
    ):
        return html_to_text(text)
    if kind.startswith("text/") or kind in ("", "application/json", "application/xml"):
        return _tidy(text)
    raise ValueError(f"unsupported attachment type {kind}")


# Magic numbers of common binary formats sent with a text/* or missing content type.
_MAGIC = (
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"II*\x00",
    b"MM\x00*",
    b"\xd0\xcf\x11\xe0",
    b"7z\xbc\xaf",
    b"Rar!",
    b"BM",
    b"\x00\x00\x00",
)


_ASCII = bytes(range(0x80))  # deleted from bytes, leaves those of 0x80 and above
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")  # below a space, but for \t \n \f \r


def _decode_text(data: bytes) -> str:
    """Text of bytes that really are text: UTF-8 (with or without BOM), UTF-16 with BOM, or a legacy
    single-byte charset (cp1252); raises ValueError for binary content whatever its declared type."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ValueError("the content is binary, not text") from exc
    if data.startswith(_MAGIC) or b"\x00" in data:
        raise ValueError("the content is binary, not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Not UTF-8: plausible legacy text (Windows-1252) has almost no bytes undefined in that charset.
        text = data.decode("cp1252", errors="replace")
        if (
            text.count("\ufffd") > len(text) // 200
            or len(data[:100_000].translate(None, _ASCII)) > min(len(data), 100_000) // 4
        ):
            raise ValueError("the content is binary, not text") from None
    controls = len(_CONTROLS.findall(text, 0, 100_000))
    if controls > min(len(text), 100_000) // 100:
        raise ValueError("the content is binary, not text")
    return text


def attachment_bytes(
    attachment: Mapping[str, object], binaries: Mapping[str, tuple[bytes, str]], fetched: Attachments
) -> tuple[bytes, str] | None:
    """Raw bytes and content type of an Attachment, or None when it has not been made available."""
    content_type = str(attachment.get("contentType") or "")
    data = attachment.get("data")
    if isinstance(data, str) and data:
        try:
            return base64.b64decode(data, validate=False), content_type
        except (binascii.Error, ValueError):
            return None
    url = attachment.get("url")
    if isinstance(url, str) and url:
        key = binary_key(url)
        if key in binaries:
            raw, binary_type = binaries[key]
            return raw, content_type or binary_type
        if url in fetched:
            raw, fetched_type = fetched[url]
            return raw, content_type or fetched_type
    return None


def binary_key(url: str) -> str:
    """ "Binary/<id>" for relative or absolute Binary URLs, else the URL itself."""
    parts = url.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Binary":
        return f"Binary/{parts[-1]}"
    return url


_BLANKS = re.compile(r"[ \t]+")
_EMPTY_LINES = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    # Runs of spaces and tabs never cross a line, so they are collapsed in one pass over the text.
    lines = [line.strip() for line in _BLANKS.sub(" ", text).split("\n")]
    return _EMPTY_LINES.sub("\n\n", "\n".join(lines)).strip()


@cache
def _heading_patterns() -> tuple[re.Pattern[str], re.Pattern[str], dict[str, str]]:
    table: dict[str, str] = {}
    for kind, names in codes.load("reports")["sections"].items():
        for name in names:
            table[name] = kind
    names_alt = "|".join(re.escape(n) for n in sorted(table, key=len, reverse=True))
    line = re.compile(
        rf"^\s*(?:[A-Z0-9]{{1,3}}[.)]\s+)?({names_alt})\s*(?:\([^)]*\))?\s*(?:[:\-\u2013\u2014]+\s*(.*))?$",
        re.IGNORECASE,
    )
    # Upper-case headings run together on one line ("FINAL DIAGNOSIS: ... COMMENT: ...").
    inline = re.compile(rf"(?<=[.;!?)])\s+(?=(?:{names_alt.upper()})\s*:)")
    return line, inline, table


# Texts up to this length have their sections remembered: the same note, comment or conclusion comes
# back in many records (templated text), and a screening worker splits each text once.
REMEMBERED_CHARS = 20_000


def split_sections(text: str, default_kind: str = "body") -> list[Section]:
    """Split report text at known headings (any case, ':' '-' or a heading alone on its line)."""
    if len(text) <= REMEMBERED_CHARS:
        return list(_remembered_sections(text, default_kind))
    return _split(text, default_kind)


@lru_cache(maxsize=4096)
def _remembered_sections(text: str, default_kind: str) -> tuple[Section, ...]:
    return tuple(_split(text, default_kind))


def _split(text: str, default_kind: str) -> list[Section]:
    line_re, inline_re, table = _heading_patterns()
    text = inline_re.sub("\n", text)
    sections: list[Section] = []
    kind, heading = default_kind, ""
    buffer: list[str] = []
    for line in text.split("\n"):
        match = line_re.match(line)
        is_heading = match is not None and (
            match.group(2) is not None or line.strip().rstrip(":").lower() == match.group(1).lower()
        )
        if match is not None and is_heading:
            if any(b.strip() for b in buffer):
                sections.append(Section(kind, heading, "\n".join(buffer).strip()))
            kind, heading, buffer = table[match.group(1).lower()], match.group(1).strip(), []
            rest = (match.group(2) or "").strip()
            if rest:
                buffer.append(rest)
        else:
            buffer.append(line)
    if any(b.strip() for b in buffer):
        sections.append(Section(kind, heading, "\n".join(buffer).strip()))
    return sections

"""How much narrative one record sends through NLP.

Each document is read up to `reports.DOCUMENT_CHARS`, but a record with many long documents would
still add up: medspaCy costs about 1 s per MB on ordinary report text and up to 18 s per MB on text
where every word is a hedge or a target (docs/performance.md). So a record's documents are read up
to `RECORD_CHARS` in all, pathology reports first, then imaging reports, then notes, the newest
first within each; a document that no longer fits is not assessed, and a data issue names it.
"""

from __future__ import annotations

from datetime import date

from fhirmaps.record import ClinicalText
from fhirmaps.reports import Chunk, document_name

# Five documents at the per-document cap, about 300 pages; a chart's reports and notes are usually a
# small fraction of it (the 2,000-resource benchmark chart with 50 pathology reports: 18,000).
RECORD_CHARS = 1_000_000
_KIND_ORDER = {"pathology": 0, "imaging": 1, "note": 2}


def _reading_order(report: ClinicalText) -> tuple[int, int]:
    newest_first = -(report.when or date.min).toordinal()
    return _KIND_ORDER.get(report.kind, len(_KIND_ORDER)), newest_first


def within_budget(chunks: list[Chunk], issues: list[dict[str, str]]) -> list[Chunk]:
    """The chunks of the documents that fit in `RECORD_CHARS` characters, in reading priority.
    Each document left out loses its text (nothing reads it any more) and gets a data issue."""
    limit = RECORD_CHARS
    reports: dict[int, ClinicalText] = {}
    size: dict[int, int] = {}
    for chunk in chunks:
        key = id(chunk.report)
        reports[key] = chunk.report
        size[key] = size.get(key, 0) + len(chunk.section.text)
    total = sum(size.values())
    if total <= limit:
        return chunks
    room = limit
    kept: set[int] = set()
    for key in sorted(reports, key=lambda k: _reading_order(reports[k])):
        if size[key] <= room:
            kept.add(key)
            room -= size[key]
            continue
        report = reports[key]
        report.text = ""
        issues.append(
            {
                "resource": report.reference,
                "reason": (
                    f"{document_name(report)} was not assessed: this record's documents add up to "
                    f"{total / 1_000_000:.1f} million characters, more than the {limit:,} read per "
                    "record (pathology reports first, then imaging reports, then notes, the newest "
                    "first)."
                ),
            }
        )
    return [chunk for chunk in chunks if id(chunk.report) in kept]

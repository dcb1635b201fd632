"""Grade facts per source (Gleason grade group, NET grade, Nottingham grade, FNCLCC grade) for discordance and
surveillance rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from fhirmaps import codes
from fhirmaps.record import Measurement, PatientRecord, Source
from smartapp.findings import Evidence
from smartapp.triggers import rules
from smartapp.triggers.common import Evaluation, diagnostic_sections, texts

_LOW_INT_HIGH = {"1155708003": 1, "1286893008": 2, "1155707008": 3}


@dataclass(frozen=True)
class Grade:
    scheme: str  # gleason, net, nottingham, fnclcc
    value: int
    evidence: Evidence
    source: str  # resource reference
    when: date | None = None

    @property
    def category(self) -> int:
        """Management category: crossing categories is a clinically meaningful disagreement."""
        if self.scheme == "gleason":
            return 1 if self.value <= 1 else 2 if self.value == 2 else 3
        if self.scheme == "fnclcc":
            return 1 if self.value == 1 else 2
        return 3 if self.value >= 3 else 1  # NET G3 vs G1-2; Nottingham 3 vs 1-2


def gleason_group(primary: int, secondary: int) -> int:
    total = primary + secondary
    if total <= 6:
        return 1
    if total == 7:
        return 2 if primary == 3 else 3
    return 4 if total == 8 else 5


_GRADE_KINDS = frozenset({"gleason-group", "gleason-score", "grade"})


def _from_measurement(m: Measurement, scheme_hint: str) -> Grade | None:
    if m.kind not in _GRADE_KINDS:  # most of a record's measurements (vital signs, labs)
        return None
    table = codes.load("observations")
    value_codes = {c.code for c in m.value_codes}
    ev = Evidence.of(m.source)
    if m.kind == "gleason-group":
        for code in value_codes:
            group = table["gleason_group_snomed"].get(code) or table["gleason_group_loinc_answers"].get(code)
            if group:
                return Grade("gleason", int(group), ev, m.source.reference, m.when)
        match = re.search(r"([1-5])", m.value_text)
        if match:
            return Grade("gleason", int(match.group(1)), ev, m.source.reference, m.when)
    if m.kind == "gleason-score":
        match = re.search(r"([345])\s*\+\s*([345])", m.value_text)
        if match:
            return Grade(
                "gleason",
                gleason_group(int(match.group(1)), int(match.group(2))),
                ev,
                m.source.reference,
                m.when,
            )
        if m.value_number is not None and m.value_number != 7:
            total = int(m.value_number)
            return Grade(
                "gleason", 1 if total <= 6 else 4 if total == 8 else 5, ev, m.source.reference, m.when
            )
    if m.kind == "grade" and scheme_hint:
        for code in value_codes:
            if code in _LOW_INT_HIGH:
                return Grade(scheme_hint, _LOW_INT_HIGH[code], ev, m.source.reference, m.when)
        match = re.search(r"\b(?:g|grade\s*)?([123])\b", m.value_text, re.I)
        if match:
            return Grade(scheme_hint, int(match.group(1)), ev, m.source.reference, m.when)
    return None


def grades(record: PatientRecord, evaluation: Evaluation, scheme_hint: str) -> list[Grade]:
    """Highest grade per source and scheme (pathology reports and grade Observations)."""
    found: list[Grade] = []
    for m in record.measurements:
        if m.when and m.when > evaluation.as_of:
            continue
        g = _from_measurement(m, scheme_hint)
        if g:
            found.append(g)
    sections = diagnostic_sections() | {"microscopic"}
    for report in texts(record, evaluation, "pathology"):
        for chunk_text, heading in _diagnostic_text(report.text, sections):
            for scheme, value, line in _from_text(chunk_text, scheme_hint):
                found.append(
                    Grade(
                        scheme,
                        value,
                        Evidence.of(
                            Source(
                                report.reference,
                                "DiagnosticReport.presentedForm",
                                line,
                                section=heading,
                                title=report.title,
                                when=report.when,
                            )
                        ),
                        report.reference,
                        report.when,
                    )
                )
    best: dict[tuple[str, str], Grade] = {}
    for g in found:
        key = (g.source, g.scheme)
        if key not in best or g.value > best[key].value:
            best[key] = g
    return sorted(best.values(), key=lambda g: (g.scheme, g.source))


def _diagnostic_text(text: str, sections: frozenset[str] | set[str]) -> list[tuple[str, str]]:
    from fhirmaps.narrative import split_sections

    return [(s.text, s.heading) for s in split_sections(text) if s.kind in sections]


def _from_text(text: str, scheme_hint: str) -> list[tuple[str, int, str]]:
    out: list[tuple[str, int, str]] = []
    for line in re.split(r"(?<=[.;])\s+|\n", text):
        if rules.pattern("discordant-findings", "earlier_reading_words").search(line) and not rules.pattern(
            "discordant-findings", "revision_words"
        ).search(line):
            continue
        for match in rules.pattern("discordant-findings", "gleason_sum").finditer(line):
            out.append(("gleason", gleason_group(int(match.group(1)), int(match.group(2))), line.strip()))
        for match in rules.pattern("discordant-findings", "grade_group").finditer(line):
            out.append(("gleason", int(match.group(1)), line.strip()))
        if scheme_hint == "net" and rules.pattern("discordant-findings", "net_words").search(line):
            for match in rules.pattern("discordant-findings", "net_grade").finditer(line):
                out.append(("net", int(match.group(1)), line.strip()))
        if scheme_hint == "nottingham":
            for match in rules.pattern("discordant-findings", "nottingham_grade").finditer(line):
                out.append(("nottingham", int(match.group(1) or match.group(2)), line.strip()))
        if scheme_hint == "fnclcc":
            for match in rules.pattern("discordant-findings", "fnclcc_grade").finditer(line):
                out.append(("fnclcc", int(match.group(1) or match.group(2)), line.strip()))
    return out

"""incomplete-biomarker: breast HER2 IHC 2+ without ISH, atypical HER2 ISH groups 2-4, equivocal/failed predictive
biomarkers never repeated."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from fhirmaps.record import PatientRecord
from smartapp.findings import Evidence, Finding
from smartapp.triggers.common import Context, current_diagnoses, reports

TRIGGER = "incomplete-biomarker"
RATIONALE = (
    "ASCO/CAP HER2 testing guideline (2018, affirmed 2023): IHC 2+ is equivocal and must be resolved by in situ "
    "hybridisation on the same specimen; ISH groups 2-4 need concomitant IHC review (Wolff et al., Arch Pathol Lab Med "
    "2018;142:1364). Equivocal or failed predictive biomarkers leave treatment eligibility undetermined."
)
_IHC2 = re.compile(r"(her-?2|erbb2)(?:/neu)?\b[^.\n]{0,80}?(?:\b2\s*\+|\bscore\s*(?:of\s*)?2\b|\bequivocal\b)", re.I)
_ISH = re.compile(r"\b(fish|ish|sish|cish|ddish|dual[- ]probe|in situ hybridi[sz]ation|her-?2/cep-?17|cep-?17|her2:cep17|copy number|amplifi)", re.I)
_PENDING = re.compile(r"pending|ordered|sent|will be|to follow|requested|reflex(?:ed)? to|to be performed|recommended|not performed|not done", re.I)
_GROUP = re.compile(r"\b(?:ish\s+)?group\s*([1-5])\b", re.I)
_RATIO = re.compile(r"(?:her-?2\s*/\s*cep-?17|ratio)[^0-9\n]{0,25}(\d+(?:\.\d+)?)", re.I)
_COPIES = re.compile(r"(?:average\s+)?(?:her-?2\s+)?(?:copy\s+number|signals?\s*(?:/|per)\s*(?:cell|nucleus))[^0-9\n]{0,25}(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*(?:her-?2\s+)?signals?\s*(?:/|per)\s*(?:cell|nucleus)", re.I)
_NON_BREAST = re.compile(r"gastric|stomach|gastroesophageal|\bgej\b|esophag|oesophag|colorectal|colon|endometri|salivary|bladder", re.I)
_EQUIVOCAL_TEST = re.compile(
    r"\b(msi|microsatellite|mmr|mismatch repair|mlh1|msh2|msh6|pms2|pd-?l1|egfr|alk|ros1|kras|braf|ngs|next[- ]generation sequencing|molecular)\b"
    r"[^.\n]{0,100}?\b(equivocal|indeterminate|insufficient|failed|quantity not sufficient|qns|could not be (?:assessed|determined|evaluated)|"
    r"unable to|not evaluable|inconclusive)\b", re.I)


@dataclass(frozen=True)
class Hit:
    when: date | None
    specimen: str
    evidence: Evidence


def _breast(record: PatientRecord, ctx: Context) -> bool:
    for d in current_diagnoses(record, ctx):
        if d.entity and d.entity.id == "breast-carcinoma":
            return True
        if any(c.code.upper().startswith("C50") for c in d.codes):
            return True
    return any(re.search(r"breast", r.text, re.I) for r in reports(record, ctx, "pathology"))


def _ihc_equivocal(record: PatientRecord, ctx: Context) -> list[Hit]:
    out = []
    for m in record.measurements:
        if m.kind != "her2-ihc" or (m.when and m.when > ctx.as_of) or _NON_BREAST.search(m.body_site):
            continue
        value = f"{m.value_text} {' '.join(c.code + ' ' + c.display for c in m.value_codes)}"
        if re.search(r"\b2\s*\+|equivocal|LA11842-4|\b2\b", value, re.I) or m.value_number == 2:
            out.append(Hit(m.when, m.specimen, Evidence.of(m.source)))
    for r in reports(record, ctx, "pathology"):
        if _NON_BREAST.search(r.text[:2000]) and not re.search(r"breast", r.text, re.I):
            continue
        for line in re.split(r"\n|(?<=\.)\s+", r.text):
            if _IHC2.search(line) and not _ISH.search(line):
                out.append(Hit(r.when, ",".join(r.specimens), Evidence(r.reference, "DiagnosticReport.presentedForm", line.strip(), r.title)))
    return out


def _ish_results(record: PatientRecord, ctx: Context) -> tuple[list[Hit], list[Hit]]:
    """(ISH results, ISH pending/ordered mentions)."""
    done: list[Hit] = []
    pending: list[Hit] = []
    for m in record.measurements:
        if m.kind == "her2-ish" and not (m.when and m.when > ctx.as_of):
            (pending if _PENDING.search(m.value_text) or not m.value_text else done).append(Hit(m.when, m.specimen, Evidence.of(m.source)))
    for r in reports(record, ctx, "pathology", "note"):
        for line in re.split(r"\n|(?<=\.)\s+", r.text):
            if _ISH.search(line) and re.search(r"her-?2|erbb2|cep-?17", line, re.I):
                hit = Hit(r.when, ",".join(r.specimens), Evidence(r.reference, "DiagnosticReport.presentedForm", line.strip(), r.title))
                (pending if _PENDING.search(line) and not _RATIO.search(line) else done).append(hit)
    for a in record.actions:
        if re.search(r"fish|in situ|ish\b", a.name, re.I) and re.search(r"her-?2|erbb2", a.name, re.I) and a.status not in ("revoked", "entered-in-error"):
            pending.append(Hit(a.when, "", Evidence.of(a.source)))
    return done, pending


def _ish_group(record: PatientRecord, ctx: Context) -> list[tuple[int, Evidence]]:
    out: list[tuple[int, Evidence]] = []
    ratio: tuple[float, Evidence] | None = None
    copies: tuple[float, Evidence] | None = None
    for m in record.measurements:
        if m.kind != "her2-ish" or (m.when and m.when > ctx.as_of):
            continue
        group = _GROUP.search(m.value_text)
        if group:
            out.append((int(group.group(1)), Evidence.of(m.source)))
        elif m.value_number is not None and any(c.code == "49683-6" for c in m.codes):
            ratio = (m.value_number, Evidence.of(m.source))
        elif m.value_number is not None and any(c.code == "74860-8" for c in m.codes):
            copies = (m.value_number, Evidence.of(m.source))
    for r in reports(record, ctx, "pathology"):
        for line in re.split(r"\n|(?<=\.)\s+", r.text):
            if not re.search(r"her-?2|erbb2|ish|fish", line, re.I):
                continue
            ev = Evidence(r.reference, "DiagnosticReport.presentedForm", line.strip(), r.title)
            group = _GROUP.search(line)
            if group and _ISH.search(line + " ish"):
                out.append((int(group.group(1)), ev))
            rm, cm = _RATIO.search(line), _COPIES.search(line)
            if rm:
                ratio = (float(rm.group(1)), ev)
            if cm:
                copies = (float(cm.group(1) or cm.group(2)), ev)
    if ratio and copies:
        r_value, c_value = ratio[0], copies[0]
        group_value = (1 if c_value >= 4 else 2) if r_value >= 2 else (3 if c_value >= 6 else 4 if c_value >= 4 else 5)
        if not out or group_value in {g for g, _ in out}:
            out.append((group_value, ratio[1]))
            out.append((group_value, copies[1]))
    return out


def _equivocal_tests(record: PatientRecord, ctx: Context) -> list[Evidence]:
    found: list[tuple[str, date | None, Evidence]] = []
    resolved: list[tuple[str, date | None]] = []
    for m in record.measurements:
        if m.kind in ("msi", "pdl1", "molecular") and not (m.when and m.when > ctx.as_of):
            if re.search(r"equivocal|indeterminate|insufficient|failed|not sufficient|qns|inconclusive|unable", m.value_text, re.I):
                found.append((m.kind, m.when, Evidence.of(m.source)))
            elif m.value_text:
                resolved.append((m.kind, m.when))
    for r in reports(record, ctx):
        if r.kind == "imaging":
            continue
        for line in re.split(r"\n|(?<=\.)\s+", r.text):
            match = _EQUIVOCAL_TEST.search(line)
            if match and not re.search(r"her-?2|estrogen|progesterone|\ber\b|\bpr\b", line, re.I):
                if re.search(r"repeat(?:ed)?|re-?test|now (?:shows|positive|negative)", line, re.I):
                    continue
                found.append((_test_kind(match.group(1)), r.when, Evidence(r.reference, "DiagnosticReport.presentedForm", line.strip(), r.title)))
    out = []
    for kind, when, ev in found:
        if any(k == kind and w and when and w > when for k, w in resolved):
            continue
        out.append(ev)
    return out


def _test_kind(word: str) -> str:
    low = word.lower()
    if low.startswith(("msi", "micro", "mmr", "mismatch", "mlh1", "msh", "pms2")):
        return "msi"
    return "pdl1" if low.startswith("pd") else "molecular"


def evaluate(record: PatientRecord, ctx: Context) -> Finding | None:
    reasons: list[str] = []
    evidence: list[Evidence] = []
    if _breast(record, ctx):
        ihc = _ihc_equivocal(record, ctx)
        if ihc:
            done, pending = _ish_results(record, ctx)
            unresolved = []
            for hit in ihc:
                start = (hit.when or ctx.as_of) - timedelta(days=7)
                # Any ISH result from a week before the IHC onwards resolves it (specimen ids are rarely shared).
                same = [d for d in done if d.when is None or d.when >= start]
                if same:
                    continue
                waiting = [p for p in pending if hit.when and ctx.as_of - hit.when <= timedelta(days=21)]
                if not waiting:
                    unresolved.append(hit)
            if unresolved:
                reasons.append("HER2 IHC 2+ (equivocal) without an ISH result")
                evidence += [h.evidence for h in unresolved]
        groups = [(g, ev) for g, ev in _ish_group(record, ctx) if g in (2, 3, 4)]
        if groups:
            reasons.append(f"HER2 ISH group {', '.join(sorted({str(g) for g, _ in groups}))}: atypical ISH pattern needing concomitant IHC review")
            evidence += [ev for _, ev in groups]
    equivocal = _equivocal_tests(record, ctx)
    if equivocal:
        reasons.append("equivocal or failed predictive biomarker result not repeated")
        evidence += equivocal
    if not reasons:
        return None
    return Finding(TRIGGER, "Incomplete biomarker work-up: " + "; ".join(reasons) + ".", RATIONALE, evidence)

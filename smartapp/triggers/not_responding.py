"""not-responding: progression after treatment started (disease status, imaging, new metastasis, tumour markers,
stop for no response, recurrence/relapse)."""

from __future__ import annotations

import re

from fhirmaps import codes
from fhirmaps.record import PatientRecord
from smartapp.findings import Evidence, Finding
from smartapp.triggers.common import (
    Context,
    antineoplastic_given,
    current_diagnoses,
    diagnostic_sections,
    reports,
)
from smartapp.triggers.markers import marker_progression

TRIGGER = "not-responding"
RATIONALE = (
    "Progression on treatment (RECIST 1.1 / iRECIST, PCWG3 PSA, GCIG CA-125, mCODE disease status 'worsened') is the "
    "point at which the next line, clinical trials and the original diagnosis deserve a fresh expert look."
)
_TRAPS = re.compile(r"pseudoprogression|pseudo-progression|flare|likely benign|benign|cyst|hemangioma|haemangioma|post-?treatment|"
                    r"treatment[- ]related|radiation (?:change|necrosis|pneumonitis)|inflammat|no (?:evidence of )?(?:new|progress)", re.I)
_PSEUDO = re.compile(r"pseudo-?progression|\biUPD\b|\bflare\b", re.I)
# Size words count only when the sentence is about tumour (lesion, mass, node, metastasis...).
_WEAK = {"interval increase", "interval enlargement", "increased in size", "has increased in size", "enlarging", "increasing size",
         "new lesion", "new lesions", "progressed", "progression"}
_TUMOUR_WORDS = re.compile(r"lesion|mass|nodul|node|metasta|tumou?r|disease|lymphadenopathy|implant|deposit|target|sum of|malignan|cancer|"
                           r"carcinoma|lymphoma|sarcoma|melanoma", re.I)
_BASELINE = re.compile(r"baseline|pre-?treatment|staging (?:ct|scan|study)|initial staging", re.I)
_IMAGING_SECTIONS = frozenset({"diagnosis", "body", "comment", "addendum", "findings"})


def evaluate(record: PatientRecord, ctx: Context) -> Finding | None:
    given = antineoplastic_given(record, ctx)
    reasons: list[str] = []
    evidence: list[Evidence] = []
    cfg = codes.load("observations")
    for a in record.actions:
        if {c.code for c in a.status_reason} & set(codes.load("treatments")["termination"]["no_response"]):
            reasons.append(f"{a.name or a.resource_type} stopped for no response")
            evidence.append(Evidence.of(a.source, f"{a.name}: status {a.status}, reason {a.status_reason_text or '266721009'}"))
    for d in current_diagnoses(record, ctx):
        if d.clinical_status in ("recurrence", "relapse"):
            reasons.append(f"diagnosis recorded as {d.clinical_status}")
            evidence.append(Evidence.of(d.source, f"{d.source.text} (clinicalStatus: {d.clinical_status})"))
    if given:
        start = min(a.start or a.end or ctx.as_of for a in given)
        for status in record.measurements:
            if status.kind == "disease-status" and status.when and start < status.when <= ctx.as_of and {
                    c.code for c in status.value_codes} & set(cfg["disease_status_worse"]):
                reasons.append("disease status recorded as worsening")
                evidence.append(Evidence.of(status.source))
        for r in reports(record, ctx, "imaging"):
            if not r.when or r.when <= start or _BASELINE.search(r.title) or _PSEUDO.search(r.text):
                continue
            has_impression = any(m.section == "diagnosis" for m in r.mentions) or "impression" in r.text.lower()
            sections = diagnostic_sections() if has_impression else _IMAGING_SECTIONS
            for m in r.mentions:
                if m.label != "PROGRESSION" or m.section not in sections or not m.raw.asserted or m.raw.uncertain:
                    continue
                same = [o for o in r.mentions if o.raw.sentence == m.raw.sentence and o.label == "RESPONSE"]
                if _TRAPS.search(m.raw.sentence) or same:
                    continue
                if m.key in _WEAK and not _TUMOUR_WORDS.search(m.raw.sentence.replace(m.raw.text, "")):
                    continue  # "enlarging pleural effusion" is not tumour progression
                reasons.append("imaging shows progression after treatment started")
                evidence.append(Evidence.of(m.source))
        for d in record.diagnoses:
            if d.secondary and d.origin == "condition" and d.when and start < d.when <= ctx.as_of:
                reasons.append("new metastatic disease recorded after treatment started")
                evidence.append(Evidence.of(d.source))
        prostatectomy = next((a.start for a in given if a.resource_type == "Procedure" and re.search(r"prostatectomy", a.name, re.I)), None)
        radiotherapy = next((a.start for a in given if re.search(r"radiat|radiotherapy|brachy|sbrt|imrt", a.name, re.I)), None)
        for reason, ev in marker_progression(record, ctx, start, prostatectomy, radiotherapy):
            reasons.append(reason)
            evidence += ev
    if not reasons:
        return None
    summary = "Disease may not be responding to treatment: " + "; ".join(sorted(set(reasons))) + "."
    return Finding(TRIGGER, summary, RATIONALE, evidence)

"""stopping-treatment: anticancer treatment stopped (toxicity, refusal, cost, no next line) or a move to hospice /
best supportive care / no further lines."""

from __future__ import annotations

import re

from fhirmaps import codes
from fhirmaps.record import Action, PatientRecord
from smartapp.findings import Evidence, Finding
from smartapp.triggers.common import Context, antineoplastic_given, current_diagnoses, mentions, text_has

TRIGGER = "stopping-treatment"
RATIONALE = (
    "Stopping anticancer treatment, or declining it, is a decision point where a second opinion can confirm that no "
    "reasonable line, trial or supportive option was missed (mCODE treatment-termination reasons: toxicity, patient "
    "refusal, financial problems, no response)."
)
_GOC_STOP = re.compile(r"stop|discontinu|hospice|comfort|no further|best supportive|cease|withdraw", re.I)
_REASON_WORDS = {"not_tolerated": "toxicity", "refusal": "patient refusal", "financial": "financial reasons", "other_stop": "treatment stopped"}


def _reason(a: Action) -> str:
    cfg = codes.load("treatments")
    values = {c.code for c in a.status_reason}
    for key, label in _REASON_WORDS.items():
        if values & set(cfg["termination"][key]):
            return label
    if values & set(cfg["termination"]["no_response"]):
        return "no response"
    if values & set(cfg["termination"]["completion"]):
        return ""
    text = f"{a.status_reason_text} {a.note}"
    for key in ("completion", "not_tolerated", "refusal", "financial", "no_response"):
        if text_has(text, cfg["termination_words"][key]) or any(w in text.lower() for w in cfg["termination_words"][key] if len(w) <= 7):
            return "" if key == "completion" else _REASON_WORDS.get(key, "no response")
    return ""


def _next_line(a: Action, given: list[Action]) -> bool:
    """Another systemic treatment started on or after this one stopped."""
    stop = a.end or a.start
    if stop is None:
        return False
    for other in given:
        began = other.start or other.end
        if other is a or other.resource_type == "Procedure" or other.name.lower() == a.name.lower() or began is None:
            continue
        if began >= stop and other.status in ("active", "completed", "in-progress"):
            return True
    return False


def _alternative_planned(a: Action, record: PatientRecord) -> bool:
    for other in record.actions:
        if other is a or not other.antineoplastic or other.name.lower() == a.name.lower():
            continue
        if other.status in ("active", "draft", "on-hold", "completed", "in-progress", "booked") and not _reason(other):
            return True
    return False


def evaluate(record: PatientRecord, ctx: Context) -> Finding | None:
    reasons: list[str] = []
    evidence: list[Evidence] = []
    given = antineoplastic_given(record, ctx)
    hospice_codes = set(codes.load("treatments")["hospice_snomed"]) - {"103735009"}
    hospice = []
    for a in record.actions:
        if a.status in ("revoked", "entered-in-error", "cancelled") or not ({c.code for c in a.codes + a.categories} & hospice_codes):
            continue
        hospice.append(a)
    narrative = []
    for m in mentions(record, ctx, "STOPPING", kinds=("note",)):
        if m.key in ("goals of care", "goals-of-care"):
            report = record.report(m.source.reference)
            if report is None or not _GOC_STOP.search(report.text.replace(m.raw.text, "")):
                continue
        narrative.append(m)
    for a in record.actions:
        if not a.antineoplastic or a.status not in ("stopped", "cancelled", "revoked", "entered-in-error", "completed", "on-hold"):
            continue
        if a.status in ("entered-in-error", "on-hold"):
            continue
        why = _reason(a)
        if not why:
            continue
        if why == "no response":
            if _next_line(a, given) or not (hospice or narrative):
                continue
        if why == "toxicity" and _next_line(a, given):
            continue
        if why == "patient refusal" and _alternative_planned(a, record):
            continue  # declining one operation/regimen in favour of another is not stopping treatment
        reasons.append(f"{a.name or 'treatment'} stopped/declined ({why})")
        evidence.append(Evidence.of(a.source, f"{a.name}: status {a.status}; reason {a.status_reason_text or why}"))
    if hospice:
        reasons.append("referral to hospice")
        evidence += [Evidence.of(a.source) for a in hospice]
    if narrative:
        reasons.append("notes document stopping or no further anticancer treatment")
        evidence += [Evidence.of(m.source) for m in narrative]
    if not reasons or not current_diagnoses(record, ctx):
        return None
    summary = "Stopping or declining anticancer treatment (" + "; ".join(sorted(set(reasons))) + "): consider a second opinion on remaining options."
    return Finding(TRIGGER, summary, RATIONALE, evidence)

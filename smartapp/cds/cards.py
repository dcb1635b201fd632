"""Engine result -> CDS Hooks cards.

Findings are grouped by the clinical question they raise (the diagnosis, the treatment plan, the
course of the disease, the patient's own request) so the clinician sees a few cards, not ten.
A time-critical condition gets its own `critical` card first. Summaries are built from our own
labels (one sentence, < 140 characters); the engine's sentences and evidence go in `detail`.
Card uuids are derived from (hookInstance, group), so feedback maps back to the card without
storing the cards.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

SOURCE_LABEL = "SecondLook"
SUMMARY_LIMIT = 139
EVIDENCE_PER_FINDING = 4
EVIDENCE_TEXT_LIMIT = 240
CARD_NAMESPACE = uuid.UUID("5b0e4b8e-3f0c-4a8b-9a57-2f4d1c6e7a10")
OVERRIDE_SYSTEM = "urn:secondlook:cds:override-reason"
OVERRIDE_REASONS = (
    ("already-reviewed", "Second opinion already obtained or requested"),
    ("not-applicable", "Does not apply to this patient"),
    ("patient-declined", "Patient declined a second opinion"),
    ("review-later", "Will review in SecondLook later"),
)


@dataclass(frozen=True)
class Group:
    id: str
    title: str
    triggers: tuple[str, ...]


GROUPS = (
    Group("diagnosis", "the diagnosis", ("rare-cancer", "uncertain-pathology", "discordant-findings", "incomplete-biomarker")),
    Group("treatment-plan", "the treatment plan", ("major-treatment", "guideline-deviation", "surveillance-check")),
    Group("disease-course", "the disease course", ("not-responding", "stopping-treatment")),
    Group("patient-request", "the patient's request", ("patient-request",)),
)
OTHER = Group("other", "other findings", ())

# Short clinical labels for summaries, and the rule source named on the card.
LABELS = {
    "rare-cancer": "rare cancer",
    "uncertain-pathology": "uncertain pathology",
    "discordant-findings": "discordant diagnoses",
    "incomplete-biomarker": "incomplete biomarker work-up",
    "major-treatment": "irreversible treatment planned",
    "guideline-deviation": "plan differs from guideline",
    "surveillance-check": "surveillance eligibility unconfirmed",
    "not-responding": "disease not responding",
    "stopping-treatment": "treatment stopping",
    "patient-request": "patient asks for a second opinion",
}
RULE_SOURCES = {
    "rare-cancer": "RARECARE/JARC rare cancer lists",
    "uncertain-pathology": "pathology uncertainty terms",
    "discordant-findings": "diagnostic discordance rules",
    "incomplete-biomarker": "ASCO/CAP biomarker testing",
    "major-treatment": "irreversible-treatment list",
    "guideline-deviation": "NCCN/ASCO guideline checks",
    "surveillance-check": "NCCN/ATA surveillance criteria",
    "not-responding": "RECIST/PCWG3/GCIG progression rules",
    "stopping-treatment": "treatment-stopping rules",
    "patient-request": "patient request",
    "time-critical": "oncological emergency list",
}


def card_uuid(hook_instance: str, group: str) -> str:
    return str(uuid.uuid5(CARD_NAMESPACE, f"{hook_instance}\n{group}"))


def build_cards(result: dict[str, Any], hook_instance: str, launch_url: str) -> list[dict[str, Any]]:
    """Cards for one patient's engine result (design-brief JSON); [] when nothing applies."""
    cards: list[tuple[int, int, dict[str, Any]]] = []
    urgent = result.get("time_critical")
    if urgent:
        cards.append((0, 0, _time_critical_card(urgent, hook_instance, launch_url)))
    findings = [f for f in result.get("findings") or [] if isinstance(f, dict)]
    # Issues about whole resource types (not one resource) are data the engine could not read.
    unread = sorted({str(i.get("resource")) for i in result.get("data_issues") or [] if "/" not in str(i.get("resource", "/"))})
    for order, group in enumerate((*GROUPS, OTHER)):
        known = {t for g in GROUPS for t in g.triggers}
        members = [f for f in findings if (f.get("trigger") in group.triggers) or (group is OTHER and f.get("trigger") not in known)]
        if not members:
            continue
        expedite = any(f.get("urgency") == "expedite" for f in members)
        card = _group_card(group, members, "warning" if expedite else "info", hook_instance, launch_url, unread)
        cards.append((1 if expedite else 2, order, card))
    return [card for _, _, card in sorted(cards, key=lambda item: (item[0], item[1]))]


def _group_card(
    group: Group, findings: list[dict[str, Any]], indicator: str, hook_instance: str, launch_url: str, unread: list[str]
) -> dict[str, Any]:
    triggers = [str(f.get("trigger")) for f in findings]
    labels = [LABELS.get(t, t.replace("-", " ")) for t in triggers]
    lead = "Expedited second opinion advised" if indicator == "warning" else "Second opinion advised"
    summary = _fit(f"{lead} on {group.title}: ", "; ".join(labels))
    detail = "\n\n".join(_finding_markdown(f) for f in findings) + _not_checked(unread)
    return {
        "uuid": card_uuid(hook_instance, group.id),
        "summary": summary,
        "indicator": indicator,
        "detail": detail,
        "source": _source(triggers),
        "overrideReasons": _override_reasons(),
        "links": [_smart_link(launch_url, triggers)],
    }


def _time_critical_card(urgent: dict[str, Any], hook_instance: str, launch_url: str) -> dict[str, Any]:
    reason = re.sub(r"[:.]?\s*an oncological emergency\.?$", "", str(urgent.get("reason", "")).strip(), flags=re.I)
    summary = _fit("Oncological emergency, do not delay treatment: ", reason.rstrip(".") or "time-critical diagnosis")
    lines = [f"**{_inline(str(urgent.get('reason', '')))}**", "", _inline(str(urgent.get("advice", "")))]
    lines += ["", *_evidence_lines(urgent.get("evidence") or [])]
    return {
        "uuid": card_uuid(hook_instance, "time-critical"),
        "summary": summary,
        "indicator": "critical",
        "detail": "\n".join(lines).strip(),
        "source": _source(["time-critical"]),
        "overrideReasons": _override_reasons(),
        "links": [_smart_link(launch_url, ["time-critical"])],
    }


def _not_checked(unread: list[str]) -> str:
    if not unread:
        return ""
    return f"\n\n_Not checked:_ {', '.join(unread)} could not be read; open SecondLook for details."


def _finding_markdown(finding: dict[str, Any]) -> str:
    trigger = str(finding.get("trigger"))
    head = f"**{LABELS.get(trigger, trigger).capitalize()}** ({finding.get('urgency', 'routine')}): {_inline(str(finding.get('summary', '')))}"
    lines = [head]
    if finding.get("rationale"):
        lines += ["", f"_Why:_ {_inline(str(finding['rationale']))}"]
    evidence = _evidence_lines(finding.get("evidence") or [])
    if evidence:
        lines += ["", *evidence]
    return "\n".join(lines)


def _evidence_lines(evidence: list[Any]) -> list[str]:
    items = [e for e in evidence if isinstance(e, dict)]
    lines = ["Evidence:"] if items else []
    for item in items[:EVIDENCE_PER_FINDING]:
        text = _inline(str(item.get("text", "")))
        if len(text) > EVIDENCE_TEXT_LIMIT:
            text = text[: EVIDENCE_TEXT_LIMIT - 1].rstrip() + "…"
        lines.append(f"- {_inline(str(item.get('reference', '')))}: \"{text}\"")
    if len(items) > EVIDENCE_PER_FINDING:
        lines.append(f"- and {len(items) - EVIDENCE_PER_FINDING} more in SecondLook")
    return lines


def _inline(text: str) -> str:
    """One line of plain text inside markdown: no HTML, no line breaks that start new blocks."""
    text = re.sub(r"\s+", " ", text).strip()
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _fit(lead: str, body: str) -> str:
    sentence = lead + body + "."
    if len(sentence) <= SUMMARY_LIMIT:
        return sentence
    return (lead + body)[: SUMMARY_LIMIT - 1].rstrip(" ;,:") + "…"


def _source(triggers: list[str]) -> dict[str, Any]:
    rules = list(dict.fromkeys(RULE_SOURCES.get(t, "SecondLook rules") for t in triggers))
    return {"label": f"{SOURCE_LABEL} ({'; '.join(rules)})"}


def _smart_link(launch_url: str, triggers: list[str]) -> dict[str, Any]:
    # appContext reaches the app in the token response: trigger ids only, never PHI.
    return {
        "label": "Open SecondLook",
        "url": launch_url,
        "type": "smart",
        "appContext": json.dumps({"findings": triggers}, separators=(",", ":")),
    }


def _override_reasons() -> list[dict[str, str]]:
    return [{"system": OVERRIDE_SYSTEM, "code": code, "display": display} for code, display in OVERRIDE_REASONS]

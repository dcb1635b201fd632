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

from smartapp.findings import Evidence, Finding, PatientResult, TimeCritical
from smartapp.triggers import SPECS, spec_for
from smartapp.triggers.spec import CardGroup
from smartapp.wording import us_date

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


# Card groups in display order; each trigger's group comes from its TriggerSpec.
GROUP_TITLES: dict[CardGroup, str] = {
    "diagnosis": "the diagnosis",
    "treatment-plan": "the treatment plan",
    "disease-course": "the disease course",
    "patient-request": "the patient's request",
}
GROUPS = tuple(
    Group(gid, title, tuple(s.id for s in SPECS if s.group == gid)) for gid, title in GROUP_TITLES.items()
)
OTHER = Group("other", "other findings", ())
TIME_CRITICAL_SOURCE = "oncological emergency list"


def card_uuid(hook_instance: str, group: str) -> str:
    return str(uuid.uuid5(CARD_NAMESPACE, f"{hook_instance}\n{group}"))


def build_cards(result: PatientResult, hook_instance: str, launch_url: str) -> list[dict[str, Any]]:
    """Cards for one patient's engine result; [] when nothing applies."""
    cards: list[tuple[int, int, dict[str, Any]]] = []
    if result.time_critical is not None:
        cards.append((0, 0, _time_critical_card(result.time_critical, hook_instance, launch_url)))
    # Issues about whole resource types (not one resource) are data the engine could not read.
    unread = sorted({i.resource for i in result.data_issues if "/" not in i.resource and i.resource})
    known = {t for g in GROUPS for t in g.triggers}
    for order, group in enumerate((*GROUPS, OTHER)):
        members = [
            f
            for f in result.findings
            if f.trigger in group.triggers or (group is OTHER and f.trigger not in known)
        ]
        if not members:
            continue
        expedite = any(f.urgency == "expedite" for f in members)
        card = _group_card(
            group, members, "warning" if expedite else "info", hook_instance, launch_url, unread
        )
        cards.append((1 if expedite else 2, order, card))
    return [card for _, _, card in sorted(cards, key=lambda item: (item[0], item[1]))]


def _short_label(trigger: str) -> str:
    spec = spec_for(trigger)
    return spec.short_label if spec else trigger.replace("-", " ")


def _group_card(
    group: Group,
    findings: list[Finding],
    indicator: str,
    hook_instance: str,
    launch_url: str,
    unread: list[str],
) -> dict[str, Any]:
    triggers = [f.trigger for f in findings]
    lead = "Expedited second opinion advised" if indicator == "warning" else "Second opinion advised"
    summary = _fit(f"{lead} on {group.title}: ", "; ".join(_short_label(t) for t in triggers))
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


def _time_critical_card(urgent: TimeCritical, hook_instance: str, launch_url: str) -> dict[str, Any]:
    condition = "; ".join(urgent.conditions) or urgent.reason.rstrip(".")
    summary = _fit("Oncological emergency, do not delay treatment: ", condition or "time-critical diagnosis")
    lines = [f"**{_inline(urgent.reason)}**", "", _inline(urgent.advice)]
    lines += ["", *_evidence_lines(urgent.evidence)]
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


def _finding_markdown(finding: Finding) -> str:
    label = _short_label(finding.trigger)
    head = f"**{label[:1].upper() + label[1:]}** ({finding.urgency}): {_inline(finding.summary)}"
    lines = [head]
    for review in finding.reviews:
        when = f" on {us_date(review.when)}" if review.when else ""
        lines += ["", f"_Already under way:_ {_inline(review.what)}: {_inline(review.status)}{when}"]
    if finding.rationale:
        lines += ["", f"_Why:_ {_inline(finding.rationale)}"]
    evidence = _evidence_lines(finding.evidence)
    if evidence:
        lines += ["", *evidence]
    return "\n".join(lines)


def _evidence_lines(items: list[Evidence]) -> list[str]:
    lines = ["Evidence:"] if items else []
    for item in items[:EVIDENCE_PER_FINDING]:
        text = _inline(item.text)
        if len(text) > EVIDENCE_TEXT_LIMIT:
            text = text[: EVIDENCE_TEXT_LIMIT - 1].rstrip() + "…"
        lines.append(f'- {_inline(item.where)}: "{text}"')
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


def _rule_source(trigger: str) -> str:
    if trigger == "time-critical":
        return TIME_CRITICAL_SOURCE
    spec = spec_for(trigger)
    return spec.rule_source if spec else "SecondLook rules"


def _source(triggers: list[str]) -> dict[str, Any]:
    rules = list(dict.fromkeys(_rule_source(t) for t in triggers))
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
    return [
        {"system": OVERRIDE_SYSTEM, "code": code, "display": display} for code, display in OVERRIDE_REASONS
    ]

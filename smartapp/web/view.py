"""Turns the engine's result plus the clinicians' actions into what the findings page shows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from smartapp.finding_actions import DISMISS_REASONS, FindingAction
from smartapp.web.labels import TRIGGER_LABELS, URGENCY_LABELS, trigger_label


@dataclass
class EvidenceView:
    reference: str
    text: str
    context: str
    source_url: str | None


@dataclass
class FindingView:
    trigger: str
    label: str
    urgency: str
    urgency_label: str
    summary: str
    rationale: str
    evidence: list[EvidenceView]
    source: str = "rules"  # rules | clinician
    dismissal: FindingAction | None = None
    action_id: int | None = None
    from_alert: bool = False


@dataclass
class PageView:
    time_critical: dict[str, Any] | None
    findings: list[FindingView] = field(default_factory=list)
    dismissed: list[FindingView] = field(default_factory=list)
    data_issues: list[str] = field(default_factory=list)
    alert_labels: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=lambda: dict(DISMISS_REASONS))
    trigger_choices: dict[str, str] = field(default_factory=lambda: dict(TRIGGER_LABELS))


def source_url(sid: str, reference: str, trigger: str, index: int) -> str | None:
    rtype, _, rid = reference.partition("/")
    if not rtype.isalpha() or not rid:
        return None
    # Only the finding and evidence index travel in the URL, never the evidence text (PHI).
    return f"/s/{sid}/source/{rtype}/{rid}?finding={trigger}&e={index}"


def alert_triggers(app_context: str | None) -> list[str]:
    """Trigger ids a CDS Hooks card asked the app to show (`{"findings": [...]}` in appContext);
    anything else in the opaque string is ignored."""
    try:
        document = json.loads(app_context) if app_context else None
    except ValueError:
        return []
    wanted = document.get("findings") if isinstance(document, dict) else None
    if not isinstance(wanted, list):
        return []
    return [t for t in wanted if isinstance(t, str) and (t in TRIGGER_LABELS or t == "time-critical")]


def build_page(sid: str, evaluation: dict[str, Any], actions: list[FindingAction],
               app_context: str | None = None) -> PageView:
    dismissals = {a.trigger: a for a in actions if a.kind == "dismiss"}
    alerted = alert_triggers(app_context)
    view = PageView(time_critical=evaluation.get("time_critical"))
    view.alert_labels = ["Time-critical" if t == "time-critical" else trigger_label(t) for t in alerted]
    if view.time_critical:
        view.time_critical = dict(view.time_critical)
        view.time_critical["evidence_views"] = [
            EvidenceView(e.get("reference", ""), e.get("text", ""), e.get("context", ""),
                         source_url(sid, e.get("reference", ""), "time-critical", i))
            for i, e in enumerate(view.time_critical.get("evidence", []))
        ]
    for finding in evaluation.get("findings", []):
        trigger = finding["trigger"]
        card = FindingView(
            trigger=trigger,
            label=trigger_label(trigger),
            urgency=finding.get("urgency", "routine"),
            urgency_label=URGENCY_LABELS.get(finding.get("urgency", ""), finding.get("urgency", "")),
            summary=finding.get("summary", ""),
            rationale=finding.get("rationale", ""),
            evidence=[
                EvidenceView(e.get("reference", ""), e.get("text", ""), e.get("context", ""),
                             source_url(sid, e.get("reference", ""), trigger, i))
                for i, e in enumerate(finding.get("evidence", []))
            ],
            dismissal=dismissals.get(trigger),
            from_alert=trigger in alerted,
        )
        (view.dismissed if card.dismissal else view.findings).append(card)
    # The findings the chart alert was about come first, in the engine's order otherwise.
    view.findings.sort(key=lambda card: not card.from_alert)
    for action in actions:
        if action.kind != "add":
            continue
        card = FindingView(
            trigger=action.trigger, label=trigger_label(action.trigger), urgency="routine",
            urgency_label=URGENCY_LABELS["routine"], summary=action.note or "Added by a clinician.",
            rationale=f"Added by {action.who or 'a clinician'} on {action.created_at:%Y-%m-%d}.",
            evidence=[], source="clinician", action_id=action.id,
        )
        view.findings.append(card)
    for issue in evaluation.get("data_issues", []):
        text = issue.get("message") or issue.get("reason") or ""
        if issue.get("resource"):
            text = f"{issue['resource']}: {text}"
        if text:
            view.data_issues.append(text)
    return view


def evidence_text(evaluation: dict[str, Any], finding: str, index: int) -> str | None:
    """The exact evidence text for a finding (or the time-critical flag) by position."""
    if finding == "time-critical":
        items = (evaluation.get("time_critical") or {}).get("evidence", [])
    else:
        items = next((f.get("evidence", []) for f in evaluation.get("findings", []) if f["trigger"] == finding), [])
    return items[index].get("text") if 0 <= index < len(items) else None

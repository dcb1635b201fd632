"""Turns the engine's result plus the clinicians' actions into what the findings page shows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from smartapp.finding_decisions import DISMISS_REASONS, FindingDecision
from smartapp.findings import Evidence, PatientResult, Review
from smartapp.triggers.spec import ACTION_LABELS
from smartapp.web.labels import TRIGGER_LABELS, URGENCY_LABELS, trigger_label
from smartapp.wording import us_date

EVIDENCE_SHOWN = 5


@dataclass
class EvidenceView:
    reference: str
    text: str
    where: str  # title, section and date in words; never the resource id
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
    more_evidence: list[EvidenceView] = field(default_factory=list)
    action_label: str = ""
    reviews: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    source: str = "rules"  # rules | clinician
    dismissal: FindingDecision | None = None
    decision_id: int | None = None
    from_alert: bool = False


@dataclass
class PageView:
    time_critical: TimeCriticalView | None
    findings: list[FindingView] = field(default_factory=list)
    dismissed: list[FindingView] = field(default_factory=list)
    data_issues: list[str] = field(default_factory=list)
    alert_labels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=lambda: dict(DISMISS_REASONS))
    trigger_choices: dict[str, str] = field(default_factory=lambda: dict(TRIGGER_LABELS))


@dataclass
class TimeCriticalView:
    reason: str
    advice: str
    evidence_views: list[EvidenceView]


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


def evidence_views(sid: str, trigger: str, items: list[Evidence]) -> list[EvidenceView]:
    return [
        EvidenceView(e.reference, e.text, e.where, source_url(sid, e.reference, trigger, i))
        for i, e in enumerate(items)
    ]


def build_page(
    sid: str, evaluation: PatientResult, actions: list[FindingDecision], app_context: str | None = None
) -> PageView:
    dismissals = {a.trigger: a for a in actions if a.kind == "dismiss"}
    alerted = alert_triggers(app_context)
    urgent = evaluation.time_critical
    view = PageView(
        time_critical=TimeCriticalView(
            urgent.reason, urgent.advice, evidence_views(sid, "time-critical", urgent.evidence)
        )
        if urgent
        else None,
        notes=list(evaluation.notes),
    )
    view.alert_labels = ["Time-critical" if t == "time-critical" else trigger_label(t) for t in alerted]
    for finding in evaluation.findings:
        trigger = finding.trigger
        items = evidence_views(sid, trigger, finding.evidence)
        card = FindingView(
            trigger=trigger,
            label=trigger_label(trigger),
            urgency=finding.urgency,
            urgency_label=URGENCY_LABELS.get(finding.urgency, finding.urgency),
            summary=finding.summary,
            rationale=finding.rationale,
            evidence=items[:EVIDENCE_SHOWN],
            more_evidence=items[EVIDENCE_SHOWN:],
            action_label=ACTION_LABELS.get(finding.action, ""),
            reviews=[review_line(r) for r in finding.reviews],
            not_found=[
                f"No {n.what}" + (f" in {n.searched}" if n.searched else "") + "." for n in finding.not_found
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
            trigger=action.trigger,
            label=trigger_label(action.trigger),
            urgency="routine",
            urgency_label=URGENCY_LABELS["routine"],
            summary=action.note or "Added by a clinician.",
            rationale=f"Added by {action.who or 'a clinician'} on {us_date(action.created_at.date())}.",
            evidence=[],
            source="clinician",
            decision_id=action.id,
        )
        view.findings.append(card)
    for issue in evaluation.data_issues:
        text = issue.reason
        if issue.resource and "/" not in issue.resource and not text.startswith(issue.resource):
            text = f"{issue.resource}: {text}"
        if text:
            view.data_issues.append(text)
    return view


def review_line(review: Review) -> str:
    when = f" on {us_date(review.when)}" if review.when else ""
    if review.status == "done":
        return f"{review.what.rstrip('.')} (recorded{when})."
    return f"{review.what}: {review.status}{when}."


def evidence_text(evaluation: PatientResult, finding: str, index: int) -> str | None:
    """The exact evidence text for a finding (or the time-critical flag) by position."""
    if finding == "time-critical":
        items = evaluation.time_critical.evidence if evaluation.time_critical else []
    else:
        found = evaluation.finding(finding)
        items = found.evidence if found else []
    return items[index].text if 0 <= index < len(items) else None

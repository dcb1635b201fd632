"""The packet follows the clinician's decisions about findings: a dismissed finding is left out
(the dismissal and its reason stay in the findings' history and are listed in the editor), a
finding the clinician added goes in, and what changed after the draft — a new finding, a new
dismissal — is offered to the coordinator instead of being applied behind their back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from smartapp.finding_decisions import FindingDecision
from smartapp.findings import Finding
from smartapp.packet import checklist_order
from smartapp.packet.draft import questions_for, reason_from
from smartapp.packet.model import Question, Reason, ReferralPacket
from smartapp.triggers import spec_for
from smartapp.wording import us_date


def trigger_label(trigger: str) -> str:
    spec = spec_for(trigger)
    return spec.label if spec else "Added by the clinician"


@dataclass(frozen=True)
class Offer:
    """A change the coordinator may make to the draft's reasons with one click."""

    key: str  # "finding:<trigger>" or "added:<action id>"
    label: str
    summary: str
    note: str = ""  # why it is offered (a dismissal's reason and date)


@dataclass(frozen=True)
class Offers:
    add: list[Offer]
    remove: list[Offer]
    left_out: list[Offer]  # dismissed before the draft: not in it, for the record


def dismissed(actions: Sequence[FindingDecision]) -> dict[str, FindingDecision]:
    return {a.trigger: a for a in actions if a.kind == "dismiss"}


def added_reason(action: FindingDecision) -> Reason:
    return Reason(
        id=f"added:{action.id}",
        trigger=action.trigger,
        summary=action.note or f"{trigger_label(action.trigger)} (added by the clinician).",
        rationale=f"Added by the clinician on {us_date(action.created_at.date())}.",
    )


def apply_to_draft(
    packet: ReferralPacket, findings: Sequence[Finding], actions: Sequence[FindingDecision]
) -> ReferralPacket:
    """The freshly drafted packet as the clinician left the findings: dismissed ones out (with
    their questions), added ones in."""
    gone = dismissed(actions)
    packet.reasons = [r for r in packet.reasons if r.trigger not in gone]
    packet.questions = [q for q in packet.questions if q.trigger not in gone]
    packet.reasons += [added_reason(a) for a in actions if a.kind == "add"]
    packet.checklist = checklist_order.ordered(packet)
    return packet


def offers(packet: ReferralPacket, findings: Sequence[Finding], actions: Sequence[FindingDecision]) -> Offers:
    gone = dismissed(actions)
    present = {r.id for r in packet.reasons}
    add = [
        Offer(f"finding:{f.trigger}", trigger_label(f.trigger), f.summary)
        for f in findings
        if f.trigger not in gone and f"finding:{f.trigger}" not in present
    ]
    add += [
        Offer(reason.id, trigger_label(a.trigger), reason.summary)
        for a in actions
        if a.kind == "add" and (reason := added_reason(a)).id not in present
    ]
    remove = [
        Offer(r.id, trigger_label(r.trigger), r.summary, dismissal_words(gone[r.trigger]))
        for r in packet.reasons
        if r.trigger in gone and r.id.startswith("finding:")
    ]
    # Added findings withdrawn by the clinician since the draft.
    added_now = {f"added:{a.id}" for a in actions if a.kind == "add"}
    remove += [
        Offer(r.id, trigger_label(r.trigger), r.summary, "Withdrawn by the clinician.")
        for r in packet.reasons
        if r.id.startswith("added:") and r.id not in added_now
    ]
    in_packet = {r.trigger for r in packet.reasons}
    left_out = [
        Offer(f"finding:{t}", trigger_label(t), "", dismissal_words(a))
        for t, a in gone.items()
        if t not in in_packet
    ]
    return Offers(add=add, remove=remove, left_out=left_out)


def dismissal_words(action: FindingDecision) -> str:
    words = f"Dismissed on {us_date(action.created_at.date())}: {action.reason_label}"
    return words + (f" ({action.note})" if action.note else "") + "."


def take_offer(
    packet: ReferralPacket, key: str, findings: Sequence[Finding], actions: Sequence[FindingDecision]
) -> ReferralPacket | None:
    """The packet with the offered change `key` made, or None when nothing is offered under it
    (it was taken already, or the findings changed again)."""
    current = offers(packet, findings, actions)
    updated = packet.model_copy(deep=True)
    if any(o.key == key for o in current.remove):
        reason = next(r for r in updated.reasons if r.id == key)
        updated.reasons = [r for r in updated.reasons if r.id != key]
        if not any(r.trigger == reason.trigger for r in updated.reasons):
            updated.questions = [q for q in updated.questions if q.trigger != reason.trigger]
        return updated
    if not any(o.key == key for o in current.add):
        return None
    if key.startswith("added:"):
        action = next(a for a in actions if f"added:{a.id}" == key)
        updated.reasons.append(added_reason(action))
        return updated
    finding = next(f for f in findings if f"finding:{f.trigger}" == key)
    updated.reasons.append(reason_from(finding))
    asked = {q.trigger for q in updated.questions}
    updated.questions += [
        Question(id=f"q:{q.trigger}:{len(updated.questions) + i}", trigger=q.trigger, text=q.text)
        for i, q in enumerate(questions_for([finding]))
        if q.trigger not in asked
    ]
    return updated

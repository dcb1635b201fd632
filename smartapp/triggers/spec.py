"""TriggerSpec: everything the product says about one trigger, in one place.

Each trigger module declares its `SPEC`; the registry (`smartapp.triggers`) collects them. The
findings page, the JSON API, CDS cards, the referral packet, the CLI and the docs check all derive
their labels, groups, questions and actions from here, so a new trigger is one module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

from smartapp.findings import ActionKind, Evidence, Fact, Finding, NotFound, Review
from smartapp.triggers import rules

if TYPE_CHECKING:
    from fhirmaps.record import PatientRecord
    from smartapp.triggers.common import Evaluation, Reviews

CardGroup = Literal["diagnosis", "treatment-plan", "disease-course", "patient-request"]
ReviewKind = Literal["pathology", "clinical", "both"]
UrgencyPolicy = Literal["routine", "expedite"]

ACTION_LABELS: dict[str, str] = {
    "local-action": "Can be resolved locally",
    "expert-pathology-review": "Expert pathology review",
    "clinical-second-opinion": "Clinical second opinion",
    "emergency-pathway": "Emergency pathway",
}


@dataclass(frozen=True)
class TriggerSpec:
    id: str  # stable; never renamed (design brief)
    label: str  # heading on the findings page and in the packet
    short_label: str  # lower-case phrase for card summaries
    group: CardGroup  # the CDS card it joins
    urgency: UrgencyPolicy  # default urgency; the engine may raise it
    action: ActionKind  # recommended response
    review: ReviewKind  # what the receiving center reviews
    rationale: str  # why it matters, in a clinician's words, with sources
    sources: tuple[str, ...]  # literature and guidelines behind the rule
    rule_source: str  # short source label shown on CDS cards
    question: str  # the consultant question in the packet; {topic} is the finding's topic
    rule_data: str  # where the rule's phrases, thresholds and windows live (docs "where to change it")
    evaluate: Callable[[PatientRecord, Evaluation], Finding | None]
    ask: Callable[[Finding], str | None] | None = None  # a sharper question than the template, from the facts
    # When the rule did not fire: a sentence saying what it could not decide and what was missing, else None.
    undecided: Callable[[PatientRecord, Evaluation], str | None] | None = None

    def finding(
        self,
        summary: str,
        evidence: Iterable[Evidence],
        *,
        facts: Sequence[Fact] = (),
        reviews: Reviews | None = None,
        not_found: Sequence[NotFound] = (),
        action: ActionKind | None = None,
        rationale: str = "",
    ) -> Finding:
        # A review already done or under way is not a reason to refer: a tumor-board note is never cited,
        # and a sentence that records a review ("Reviewed at the sarcoma consensus conference") becomes a
        # review on the finding instead of evidence for it.
        cited, done = [], list(reviews.items) if reviews else []
        for item in evidence:
            if reviews and item.reference in reviews.notes:
                continue
            if records_review(item.text):
                review = Review(what=item.text[:160], status="done", when=item.when, reference=item.reference)
                if review not in done:
                    done.append(review)
            else:
                cited.append(item)
        return Finding(
            trigger=self.id,
            urgency=self.urgency,
            summary=summary,
            rationale=rationale or self.rationale,
            action=action or self.action,
            facts=list(facts),
            reviews=done,
            not_found=list(not_found),
            evidence=cited,
        )

    def question_for(self, finding: Finding) -> str:
        sharper = self.ask(finding) if self.ask else None
        if sharper:
            return sharper
        topic = finding_topic(finding)
        return self.question.format(topic=topic).replace(" ()", "")


@cache
def _review_sentence() -> re.Pattern[str]:
    terms = rules.value("common", "review_note_terms")
    return re.compile(
        r"\b(?:reviewed|discussed|presented|seen)\b[^.]{0,40}\b(?:"
        + "|".join(re.escape(t) for t in terms)
        + ")",
        re.I,
    )


def records_review(text: str) -> bool:
    """Whether a quoted sentence records a review already done (tumor board, consensus conference)."""
    return bool(_review_sentence().search(text))


def finding_topic(finding: Finding) -> str:
    """A short noun phrase naming what the finding is about, from its facts."""
    diagnoses = list(dict.fromkeys(f.name for f in finding.facts if f.kind == "diagnosis"))
    if finding.trigger == "discordant-findings" and len(diagnoses) >= 2:
        return " vs ".join(diagnoses[:2])
    named = [
        f"{f.name} {f.value}".strip()
        for f in finding.facts
        if f.kind in ("measurement", "plan", "treatment", "statement")
    ]
    if named:
        return "; ".join(dict.fromkeys(named[:2]))
    if diagnoses:
        return diagnoses[0]
    return finding.summary.rstrip(".")

"""Typed findings: what the engine concluded for one patient, as structured facts.

Every consumer (findings page, JSON API, CDS cards, referral packet, CLI, worklist) renders from
these models; none of them parses a summary sentence. `to_json()` gives the design-brief JSON
(a superset: the stable keys plus the structured facts).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from fhirmaps.record import ClinicalText, Source
from smartapp.wording import resource_words, us_date

_TEXT_PATHS = {
    "DiagnosticReport": "DiagnosticReport.presentedForm",
    "DocumentReference": "DocumentReference.content",
}

Urgency = Literal["routine", "expedite"]
ROUTINE: Urgency = "routine"
EXPEDITE: Urgency = "expedite"

# What the clinician is asked to do about a finding, from the trigger's spec.
ActionKind = Literal[
    "local-action", "expert-pathology-review", "clinical-second-opinion", "emergency-pathway"
]

FactKind = Literal["diagnosis", "measurement", "treatment", "plan", "status", "statement", "request"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Evidence(_Model):
    """The exact source text behind a finding, with where it stands in the record."""

    reference: str = Field(description="the FHIR resource, e.g. DiagnosticReport/123")
    path: str = Field(description="element path inside the resource")
    text: str = Field(description="the exact source text (a sentence, a coded value as readable text)")
    title: str = ""
    section: str = ""
    when: date | None = None

    @classmethod
    def of(cls, source: Source, text: str | None = None) -> Evidence:
        return cls(
            reference=source.reference,
            path=source.path,
            text=clean_quote(text if text is not None else source.text),
            title=source.title,
            section=source.section,
            when=source.when,
        )

    @computed_field(description="where the text stands, in words: title, section, date")  # type: ignore[prop-decorator]
    @property
    def where(self) -> str:
        """Where the text stands, in words (never the resource id): title, section, date."""
        section = self.section if self.section and self.section.lower() != self.title.lower() else ""
        if section.islower():
            section = section.capitalize()
        parts = [
            self.title or resource_words(self.reference),
            section,
            us_date(self.when) if self.when else "",
        ]
        return " · ".join(p for p in parts if p)

    @classmethod
    def in_report(cls, report: ClinicalText, text: str, path: str = "") -> Evidence:
        """A sentence or line of a report's text."""
        rtype = report.reference.partition("/")[0]
        where = path or _TEXT_PATHS.get(rtype, f"{rtype}.text")
        return cls.of(Source(report.reference, where, text, title=report.title, when=report.when))


class Fact(_Model):
    """One structured fact a finding rests on: an entity, a measured value, a treatment, a plan."""

    kind: FactKind
    name: str = Field(description="what it is, in clinical words: 'HER2 IHC', 'CEA', 'radical cystectomy'")
    value: str = Field(
        default="", description="the value as a clinician writes it: '2+ (equivocal)', '23.7 ng/mL'"
    )
    number: float | None = None
    unit: str = ""
    code: str = Field(default="", description="system|code of the coded concept, when there is one")
    when: date | None = None
    days_from_evaluation: int | None = Field(
        default=None, description="for plans: days from the evaluation date"
    )
    status: str = ""
    reference: str = ""


class Review(_Model):
    """A review, consult or test already requested or done (so the app does not propose a duplicate)."""

    what: str
    status: str
    when: date | None = None
    reference: str = ""


class NotFound(_Model):
    """What a rule searched for and did not find ("no HER2 ISH result")."""

    what: str
    searched: str = Field(
        default="", description="where it looked: '3 pathology reports and 12 observations'"
    )


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trigger: str = Field(description="stable trigger id, e.g. rare-cancer")
    urgency: Urgency = ROUTINE
    summary: str = Field(description="one sentence a clinician would write, decisive fact first")
    rationale: str = Field(description="why this matters, with its source")
    action: ActionKind = Field(description="what kind of response the finding calls for")
    facts: list[Fact] = Field(default_factory=list)
    reviews: list[Review] = Field(default_factory=list)
    not_found: list[NotFound] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list, description="decisive first, without repeats")

    @field_validator("evidence")
    @classmethod
    def _unique_evidence(cls, items: list[Evidence]) -> list[Evidence]:
        return unique(items)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class TimeCritical(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(description="the urgent condition as a sentence")
    advice: str = Field(description="the pathway for this condition")
    conditions: list[str] = Field(
        default_factory=list, description="the urgent conditions, in clinical words"
    )
    evidence: list[Evidence] = Field(default_factory=list)

    @field_validator("evidence")
    @classmethod
    def _unique_evidence(cls, items: list[Evidence]) -> list[Evidence]:
        return unique(items)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class DataIssue(_Model):
    resource: str = Field(description="the resource (Type/id) or resource type concerned")
    reason: str


class PatientResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient: str
    time_critical: TimeCritical | None = None
    findings: list[Finding] = Field(default_factory=list)
    data_issues: list[DataIssue] = Field(default_factory=list)
    notes: list[str] = Field(
        default_factory=list, description="statements about the whole evaluation (deceased patient...)"
    )

    @property
    def triggers(self) -> list[str]:
        return [f.trigger for f in self.findings]

    def finding(self, trigger: str) -> Finding | None:
        return next((f for f in self.findings if f.trigger == trigger), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "time_critical": self.time_critical.to_json() if self.time_critical else None,
            "findings": [f.to_json() for f in sorted(self.findings, key=lambda f: f.trigger)],
            "data_issues": [
                i.model_dump() for i in sorted(self.data_issues, key=lambda i: (i.resource, i.reason))
            ],
            "notes": list(self.notes),
        }


def unique(items: Iterable[Evidence]) -> list[Evidence]:
    """Evidence in its given order (decisive first), without repeats of the same text in the same resource."""
    seen: set[tuple[str, str]] = set()
    out = []
    for item in items:
        key = (item.reference, " ".join(item.text.lower().split()))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def issues(items: Iterable[dict[str, str]]) -> list[DataIssue]:
    return [DataIssue(resource=i.get("resource", ""), reason=i.get("reason", "")) for i in items]


def clean_quote(text: str) -> str:
    """Source text as a quote: whitespace folded, no list bullets or dangling separators at the ends."""
    folded = " ".join(text.split())
    folded = re.sub(r"^(?:[-*•·]|\d+[.)])\s+", "", folded)
    folded = re.sub(r"[\s\-–—:;,|]+$", "", folded)
    return folded[:600]

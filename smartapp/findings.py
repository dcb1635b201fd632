"""Findings, evidence and per-patient results in the design-brief JSON shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhirmaps.record import Source

ROUTINE = "routine"
EXPEDITE = "expedite"


@dataclass(frozen=True, order=True)
class Evidence:
    reference: str
    path: str
    text: str
    context: str = ""  # report section, title and date for narrative evidence

    @classmethod
    def of(cls, source: Source, text: str | None = None) -> Evidence:
        parts = [p for p in (source.section, source.title, source.when.isoformat() if source.when else "") if p]
        return cls(source.reference, source.path, (text if text is not None else source.text).strip()[:600], " | ".join(parts))

    def to_json(self) -> dict[str, str]:
        out = {"reference": self.reference, "path": self.path, "text": self.text}
        if self.context:
            out["context"] = self.context
        return out


def unique(items: list[Evidence]) -> list[Evidence]:
    return sorted(set(items))


@dataclass
class Finding:
    trigger: str
    summary: str
    rationale: str
    evidence: list[Evidence]
    urgency: str = ROUTINE

    def to_json(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "urgency": self.urgency,
            "summary": self.summary,
            "rationale": self.rationale,
            "evidence": [e.to_json() for e in unique(self.evidence)],
        }


@dataclass
class TimeCritical:
    reason: str
    advice: str
    evidence: list[Evidence]

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "advice": self.advice, "evidence": [e.to_json() for e in unique(self.evidence)]}


@dataclass
class PatientResult:
    patient: str
    time_critical: TimeCritical | None = None
    findings: list[Finding] = field(default_factory=list)
    data_issues: list[dict[str, str]] = field(default_factory=list)

    @property
    def triggers(self) -> list[str]:
        return [f.trigger for f in self.findings]

    def to_json(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "time_critical": self.time_critical.to_json() if self.time_critical else None,
            "findings": [f.to_json() for f in sorted(self.findings, key=lambda f: f.trigger)],
            "data_issues": sorted(self.data_issues, key=lambda i: (i.get("resource", ""), i.get("reason", ""))),
        }

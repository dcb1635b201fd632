"""Trigger names in clinical words, for pages, packets and cards."""

from __future__ import annotations

TRIGGER_LABELS = {
    "rare-cancer": "Rare cancer",
    "uncertain-pathology": "Uncertain or borderline pathology",
    "discordant-findings": "Conflicting diagnoses or grades",
    "incomplete-biomarker": "Biomarker work-up incomplete",
    "major-treatment": "Major or irreversible treatment proposed",
    "not-responding": "Disease not responding to treatment",
    "surveillance-check": "Active surveillance: confirm eligibility",
    "stopping-treatment": "Stopping treatment under consideration",
    "guideline-deviation": "Possible deviation from guidelines",
    "patient-request": "Patient asks for a second opinion",
}

URGENCY_LABELS = {"routine": "Routine (2–4 weeks)", "expedite": "Expedite"}


def trigger_label(trigger: str) -> str:
    return TRIGGER_LABELS.get(trigger, trigger.replace("-", " ").capitalize())

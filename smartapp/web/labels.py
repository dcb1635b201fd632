"""Trigger names in clinical words, for pages, packets and cards (from the trigger registry)."""

from __future__ import annotations

from smartapp.triggers import SPECS, spec_for

TRIGGER_LABELS = {spec.id: spec.label for spec in SPECS}

URGENCY_LABELS = {"routine": "Routine (2–4 weeks)", "expedite": "Expedite"}


def trigger_label(trigger: str) -> str:
    spec = spec_for(trigger)
    return spec.label if spec else trigger.replace("-", " ").capitalize()

"""How SecondLook writes for clinicians: one date format (US), lists joined as a clinician would."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date


def us_date(when: date | None) -> str:
    """11/24/2026: the one date format on screen, in cards, letters and summaries."""
    return f"{when.month:02d}/{when.day:02d}/{when.year}" if when else "undated"


def join(items: Iterable[str], last: str = "and") -> str:
    """'a', 'a and b', 'a, b and c' (without repeats, in the given order)."""
    words = list(dict.fromkeys(i for i in items if i))
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def sentence(text: str) -> str:
    """Capitalised, one final period."""
    text = " ".join(text.split()).rstrip(" .;:")
    return (text[:1].upper() + text[1:] + ".") if text else ""


RESOURCE_WORDS = {
    "Condition": "Problem list",
    "Observation": "Result",
    "MedicationRequest": "Medication order",
    "MedicationAdministration": "Medication given",
    "MedicationStatement": "Medication list",
    "Procedure": "Procedure",
    "ServiceRequest": "Order",
    "CarePlan": "Care plan",
    "Appointment": "Appointment",
    "Encounter": "Visit",
    "DiagnosticReport": "Report",
    "DocumentReference": "Clinical note",
    "Communication": "Patient message",
    "QuestionnaireResponse": "Questionnaire",
    "FamilyMemberHistory": "Family history",
}


def resource_words(reference: str) -> str:
    """What a kind of record is called in a chart ("Problem list" for Condition/123)."""
    rtype = reference.partition("/")[0]
    return RESOURCE_WORDS.get(rtype, rtype)


_KEEP_UPPER = frozenset({"RECIST", "IRECIST", "PD-L1", "HER2", "GIST", "DCIS", "LCIS", "FISH", "STUMP", "PUNLMP", "NPM1", "FLT3-ITD"})


def calm(text: str) -> str:
    """Report text written in capitals, in sentence case for a summary ("SEROUS BORDERLINE TUMOR" -> "serous
    borderline tumor"); acronyms stay."""
    def lower(match: re.Match[str]) -> str:
        word = match.group(0)
        return word if word in _KEEP_UPPER or len(word) <= 4 else word.lower()

    return re.sub(r"\b[A-Z][A-Z0-9-]+\b", lower, text)

"""How SecondLook writes for clinicians: one date format (US), lists joined as a clinician would."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime


def us_date(when: date | None) -> str:
    """11/24/2026: the one date format on screen, in cards, letters and summaries."""
    return f"{when.month:02d}/{when.day:02d}/{when.year}" if when else "undated"


def us_time(when: datetime) -> str:
    """2:05 PM UTC on 11/24/2026: a moment, in UTC since the server does not know the reader's zone."""
    utc = when.astimezone(UTC)
    half = "AM" if utc.hour < 12 else "PM"
    return f"{utc.hour % 12 or 12}:{utc.minute:02d} {half} UTC on {us_date(utc.date())}"


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


_KEEP_UPPER = frozenset(
    {
        "RECIST",
        "IRECIST",
        "PD-L1",
        "HER2",
        "GIST",
        "DCIS",
        "LCIS",
        "FISH",
        "ISH",
        "IHC",
        "STUMP",
        "PUNLMP",
        "NPM1",
        "FLT3-ITD",
        "CT",
        "MRI",
        "PET",
        "PET-CT",
        "PSA",
        "CEA",
        "AFP",
        "MSI",
        "MMR",
        "NGS",
        "KIT",
        "DOG1",
        "ER",
        "PR",
        "FOLFOX",
        "FOLFIRI",
        "CAPOX",
        "ABVD",
        "R-CHOP",
        "NSCLC",
        "SCLC",
        "AML",
        "ALL",
        "DLBCL",
        "GI",
        "IV",
        "II",
        "III",
        "SBRT",
        "IMRT",
        "ADT",
        "TNM",
        "W/",
        "WO/W",
    }
)


def calm(text: str) -> str:
    """Report text written in capitals, in sentence case for a summary ("SEROUS BORDERLINE TUMOR OF OVARY" ->
    "serous borderline tumor of ovary"); acronyms stay."""
    letters = [c for c in text if c.isalpha()]
    shouting = bool(letters) and sum(c.isupper() for c in letters) / len(letters) > 0.6

    def lower(match: re.Match[str]) -> str:
        word = match.group(0)
        if word in _KEEP_UPPER:
            return word
        return word.lower() if shouting or len(word) >= 5 or word in _SMALL_WORDS else word

    return re.sub(
        r"\b[A-Z][A-Z0-9/-]*\b", lambda m: m.group(0) if _ROMAN.fullmatch(m.group(0)) else lower(m), text
    )


_ROMAN = re.compile(r"[IVX]+(?:/[IVX]+)*")


_SMALL_WORDS = frozenset(
    {
        "OF",
        "FOR",
        "AND",
        "THE",
        "WITH",
        "IN",
        "ON",
        "TO",
        "AT",
        "BY",
        "OR",
        "CM",
        "MM",
        "NO",
        "NOT",
        "SEE",
        "BUT",
        "IS",
        "ARE",
        "AN",
        "A",
    }
)
_SEMANTIC_TAG = re.compile(
    r"\s*\((?:procedure|disorder|finding|situation|regime/therapy|substance|product|"
    r"morphologic abnormality|observable entity|qualifier value)\)\s*$",
    re.I,
)


def plain_name(name: str) -> str:
    """A coded display as a clinician writes it: no SNOMED semantic tag, not shouted."""
    return calm(_SEMANTIC_TAG.sub("", name).strip())


def drug_name(name: str) -> str:
    """'fluorouracil 2400 mg/m2 IV' -> 'fluorouracil'; 'Cabozantinib 40 mg tablet' -> 'cabozantinib';
    'BCG live (TICE BCG) 50 mg' -> 'BCG live (TICE BCG)': a word of up to four capitals is an acronym."""
    original = _SEMANTIC_TAG.sub("", name).strip().split()
    words = []
    for index, word in enumerate(plain_name(name).split()):
        if any(ch.isdigit() for ch in word) or word.lower() in (
            "injection",
            "tablet",
            "capsule",
            "oral",
            "iv",
            "solution",
        ):
            break
        source = original[index] if index < len(original) else word
        bare = source.strip("()")
        words.append(source if bare.isalpha() and bare.isupper() and len(bare) <= 4 else word)
    found = " ".join(words) or name
    if found.isupper():
        return found
    return " ".join(
        w if w.strip("()").isupper() and len(w.strip("()")) <= 4 else w.lower() for w in found.split()
    )


def mid_sentence(text: str) -> str:
    """Text placed after a colon or inside a sentence: its first word lower-cased unless it is an
    acronym or name."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def clause_around(sentence_text: str, start: int, end: int, limit: int = 100) -> str:
    """The clause of a sentence that holds text[start:end]: from the last ';', ':' or '.' before it
    to the next ';', '.' or '(' after it, without parentheses, at most about `limit` characters
    (trimmed at words)."""
    left = max(sentence_text.rfind(sep, 0, start) for sep in (";", ":", ". ", "\n"))
    right_marks = [i for i in (sentence_text.find(sep, end) for sep in (";", ". ", "(", "\n")) if i >= 0]
    if sentence_text.endswith(".") and not right_marks:
        right_marks = [len(sentence_text) - 1]
    right = min(right_marks) if right_marks else len(sentence_text)
    clause = sentence_text[left + 1 : right]
    clause = re.sub(r"\([^)]*\)", "", clause)
    clause = " ".join(clause.replace("(", "").replace(")", "").split()).strip(" ,-.")
    if len(clause) > limit:
        words = clause.split()
        while len(" ".join(words)) > limit and len(words) > 3:
            words = (
                words[1:]
                if " ".join(words[1:]).lower().find(sentence_text[start:end].lower()[:8]) >= 0
                else words[:-1]
            )
        clause = " ".join(words)
    return calm(clause)


def distinct(phrases: Iterable[str], overlap: float = 0.7) -> list[str]:
    """Phrases without near-repeats: one that shares most of its words with an earlier one is dropped
    (a report's diagnosis line and its comment often say the same thing)."""
    kept: list[str] = []
    for phrase in phrases:
        words = set(re.findall(r"\w+", phrase.lower()))
        if not words or any(
            len(words & set(re.findall(r"\w+", k.lower()))) / len(words) >= overlap for k in kept
        ):
            continue
        kept.append(phrase)
    return kept


SUMMARY_LIMIT = 200


def first_fitting(*candidates: str, limit: int = SUMMARY_LIMIT) -> str:
    """The first candidate sentence within the limit (candidates go from fullest to shortest); the last one,
    cut at a word, when none fits."""
    for candidate in candidates:
        if len(sentence(candidate)) <= limit:
            return sentence(candidate)
    return sentence(sentence(candidates[-1])[: limit - 2].rsplit(" ", 1)[0])

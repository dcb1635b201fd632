"""Small readers for FHIR JSON elements (CodeableConcept, Reference, dates) on raw dicts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from fhirmaps.direct_init import direct_init

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"

Json = dict[str, Any]


@direct_init
@dataclass(frozen=True, order=True)
class Code:
    system: str
    code: str
    display: str = ""

    @property
    def short_system(self) -> str:
        s = self.system.lower()
        if "icd-10" in s or "icd10" in s:
            return "icd10"
        if "snomed" in s:
            return "snomed"
        if "loinc" in s:
            return "loinc"
        if "icd-o" in s or "icdo" in s:
            return "icdo3"
        if "rxnorm" in s:
            return "rxnorm"
        return "other"

    def label(self) -> str:
        return f"{self.code} {self.display}".strip()


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def codes_of(concept: Any) -> list[Code]:
    """All codings of a CodeableConcept (or a bare Coding) as Code values."""
    if not isinstance(concept, dict):
        return []
    codings = concept.get("coding") if "coding" in concept else [concept] if "code" in concept else []
    out = []
    for coding in as_list(codings):
        if isinstance(coding, dict) and coding.get("code") is not None:
            out.append(
                Code(
                    str(coding.get("system", "")), str(coding["code"]).strip(), str(coding.get("display", ""))
                )
            )
    return out


def concept_text(concept: Any) -> str:
    """Human text of a CodeableConcept: text, else the first display, else the first code."""
    if not isinstance(concept, dict):
        return ""
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return str(concept["text"]).strip()
    for code in codes_of(concept):
        if code.display:
            return code.display
    codes = codes_of(concept)
    return codes[0].code if codes else ""


def concepts_text(concepts: Any) -> str:
    return "; ".join(t for t in (concept_text(c) for c in as_list(concepts)) if t)


def code_set(concepts: Any) -> set[str]:
    """Bare code strings of one or many CodeableConcepts (the codes `codes_of` gives, without
    building a Code for each: this runs on every resource of a record)."""
    found: set[str] = set()
    for concept in as_list(concepts):
        if not isinstance(concept, dict):
            continue
        codings = concept.get("coding") if "coding" in concept else [concept] if "code" in concept else []
        for coding in as_list(codings):
            if isinstance(coding, dict) and coding.get("code") is not None:
                found.add(str(coding["code"]).strip())
    return found


def status_code(concept: Any) -> str | None:
    codes = codes_of(concept)
    return codes[0].code.lower() if codes else None


def parse_date(value: Any) -> date | None:
    """The calendar date of a FHIR date/dateTime/instant string (time zone ignored)."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    text = value[:10]
    try:
        if len(text) == 4:
            return date(int(text), 1, 1)
        if len(text) == 7:
            return date(int(text[:4]), int(text[5:7]), 1)
        return date.fromisoformat(text)
    except ValueError:
        return None


def first_date(resource: Json, *fields: str) -> date | None:
    """The first parseable date among fields; Period values give their start."""
    for name in fields:
        value = resource.get(name)
        if isinstance(value, dict):
            value = value.get("start") or value.get("end")
        found = parse_date(value)
        if found:
            return found
    return None


def ref_of(resource: Json) -> str:
    return f"{resource.get('resourceType', 'Resource')}/{resource.get('id', '?')}"


def reference(value: Any) -> str:
    """ "Type/id" from a Reference (relative, absolute or versioned)."""
    if not isinstance(value, dict):
        return ""
    target = value.get("reference")
    if not isinstance(target, str):
        return ""
    parts = [p for p in target.split("/_history/")[0].split("/") if p]
    return "/".join(parts[-2:]) if len(parts) >= 2 else target


_SYSTEM_NAMES = {
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://snomed.info/sct": "SNOMED CT",
    "http://loinc.org": "LOINC",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://terminology.hl7.org/CodeSystem/icd-o-3": "ICD-O-3",
}


def system_name(system: str) -> str:
    """A code system as clinicians name it ("ICD-10-CM"); an unknown one by the last part of its URI."""
    return _SYSTEM_NAMES.get(system, system.rsplit("/", 1)[-1].rsplit(":", 1)[-1])

"""Cancer diagnoses from Conditions, pathology report diagnoses (narrative and conclusionCode) and
histology Observations."""

from __future__ import annotations

import re
from functools import cache

from fhirmaps import codes, entities
from fhirmaps.elements import (
    ICDO3,
    Code,
    Json,
    as_list,
    codes_of,
    concept_text,
    first_date,
    ref_of,
    status_code,
)
from fhirmaps.entities import Entity
from fhirmaps.record import ClinicalText, Diagnosis, Mention, Source

HISTOLOGY_EXT = "mcode-histology-morphology-behavior"
_HISTORY_DISPLAY = re.compile(r"\b(history of|h/o|family history|personal history|hx of)\b", re.IGNORECASE)
_SECONDARY_SNOMED = {"128462008", "94225005", "94222008", "94503003", "94381002", "94579000", "94260004"}
_EXCLUDED_VERIFICATION = {"refuted", "entered-in-error"}
_EXCLUDED_CLINICAL = {"inactive", "resolved", "remission"}


def _coding_index(concept: object, system: str) -> int:
    """Index of the first coding of a system (e.g. the ICD-10-CM coding), else 0."""
    for i, code in enumerate(codes_of(concept)):
        if code.short_system == system:
            return i
    return 0


def is_history_code(code: str) -> bool:
    """ICD-10-CM Z85 (personal history), Z80 (family history), Z86.0 (history of in-situ neoplasm)."""
    return codes.has_prefix(code, ["Z85", "Z80", "Z86.0", "Z92.3", "Z92.21"])


def is_cancer_icd10(code: str) -> bool:
    plain = code.upper().replace(".", "")
    return bool(re.match(r"^(C\d|C[4-9]|C7[AB]|D0\d|D3[7-9]|D4[0-8]|D3A)", plain))


def is_site_only_icd10(code: str) -> bool:
    """ICD-10-CM malignant codes that name a site rather than a histology."""
    return bool(code) and not codes.has_prefix(
        code, ["C49.A", "C4A", "C7A", "C7B", "C8", "C9", "C43", "C45", "C46", "C22.1"]
    )


def is_secondary_icd10(code: str) -> bool:
    return codes.has_prefix(code, ["C77", "C78", "C79", "C7B"])


def is_uncertain_behavior_icd10(code: str) -> bool:
    """D37-D44, D47-D48: neoplasm of uncertain behaviour (D49 'unspecified' is not a pathology signal)."""
    return codes.has_prefix(code, ["D37", "D38", "D39", "D40", "D41", "D42", "D43", "D44", "D47", "D48"])


@cache
def _strong_doubt() -> re.Pattern[str]:
    """Doubt strong enough that a named entity is not (yet) the diagnosis ("favor", "likely",
    "consistent with" are not)."""
    cues = codes.load("lexicon")["hedge_strength"]["strong"]
    return re.compile("|".join(rf"(?<![\w-]){re.escape(c)}" for c in cues), re.I)


def read_condition(resource: Json) -> tuple[Diagnosis | None, bool]:
    """(diagnosis, counts_as_current) or (None, False) when the Condition is not about a neoplasm."""
    ref = ref_of(resource)
    concept = resource.get("code")
    all_codes = tuple(codes_of(concept))
    text = concept_text(concept)
    icd10 = next((c.code for c in all_codes if c.short_system == "icd10"), None)
    snomed = {c.code for c in all_codes if c.short_system == "snomed"}
    morphology = None
    morph_display = ""
    path = f"Condition.code.coding[{_coding_index(concept, 'icd10')}]" if all_codes else "Condition.code.text"
    for i, ext in enumerate(as_list(resource.get("extension"))):
        if isinstance(ext, dict) and str(ext.get("url", "")).endswith(HISTOLOGY_EXT):
            found = codes_of(ext.get("valueCodeableConcept"))
            if found:
                # ICD-O-3 "8936/1"; a SNOMED morphology concept is kept for its display text only.
                icdo = found[0].short_system == "icdo3" or re.match(r"^\d{4}(\s*/\s*\d)?$", found[0].code)
                morphology = found[0].code if icdo else None
                morph_display = concept_text(ext.get("valueCodeableConcept"))
                path = f"Condition.extension[{i}].valueCodeableConcept"
    topography = None
    for site in as_list(resource.get("bodySite")):
        for c in codes_of(site):
            if c.system == ICDO3 or re.match(r"^C\d\d(\.\d)?$", c.code):
                topography = c.code
    profiles = " ".join(str(p) for p in as_list((resource.get("meta") or {}).get("profile")))
    display_text = " ".join([text, morph_display] + [c.display for c in all_codes])
    history = bool(icd10 and is_history_code(icd10)) or bool(_HISTORY_DISPLAY.search(display_text))
    entity = (
        entities.from_morphology(morphology, topography)
        or entities.from_snomed(snomed)
        or entities.from_icd10(icd10)
    )
    if not history and (
        entity is None or (morphology is None and (entity.family is None or is_site_only_icd10(icd10 or "")))
    ):
        # ICD-10-CM codes mostly name a site; the display/text often carries the histology
        # ("Leiomyosarcoma of stomach").
        named = entities.from_text(display_text)
        if named is not None and (entity is None or named.family):
            entity = named
    if entity is not None and entity.benign:
        entity = None
    if icd10 and (entity is None or entity.family is None):
        entity = _lung_histology(icd10, display_text) or entity
    if entity is not None and entity.id == "melanoma":
        entity = _melanoma_site(topography or icd10 or "") or refine(entity, display_text)
    site = entities.site_of(topography) or entities.site_of(icd10)
    suspected = entities.snomed_flag(snomed, "suspected")  # "Suspected lung cancer (situation)"
    neoplastic = bool(
        entity
        or morphology
        or (icd10 and is_cancer_icd10(icd10))
        or suspected
        or snomed & ({"363346000"} | _SECONDARY_SNOMED)
        or entities.snomed_flag(snomed, "secondary")
    )
    if not neoplastic and not history:
        return None, False
    secondary = bool(
        (icd10 and is_secondary_icd10(icd10))
        or snomed & _SECONDARY_SNOMED
        or entities.snomed_flag(snomed, "secondary")
        or "secondary-cancer" in profiles
        or (morphology and morphology.split("/")[-1][:1] == "6")
    )
    code_label = (
        (morphology and f"{morphology} (ICD-O-3)")
        or (icd10 and f"{icd10}")
        or (all_codes[0].code if all_codes else "")
    )
    onset = first_date(resource, "onsetDateTime", "onsetPeriod", "recordedDate")
    diagnosis = Diagnosis(
        source=Source(ref, path, f"{text} [{code_label}]".strip() if code_label else text, when=onset),
        origin="condition",
        entity=entity,
        site=site if entities.site_applies(entity) else None,
        codes=all_codes,
        morphology=morphology,
        topography=topography,
        clinical_status=status_code(resource.get("clinicalStatus")),
        verification_status=status_code(resource.get("verificationStatus")),
        secondary=secondary,
        when=onset,
        uncertain=suspected,
        stage="; ".join(
            t
            for t in (
                concept_text(s.get("summary")) for s in as_list(resource.get("stage")) if isinstance(s, dict)
            )
            if t
        ),
    )
    current = (
        not history
        and (diagnosis.verification_status not in _EXCLUDED_VERIFICATION)
        and (diagnosis.clinical_status not in _EXCLUDED_CLINICAL)
    )
    return diagnosis, current


def _lung_histology(icd10: str, text: str) -> Entity | None:
    """ICD-10-CM C34 names only the lung; the display usually carries the histology."""
    if not codes.has_prefix(icd10, ["C34"]):
        return None
    if re.search(r"squamous", text, re.I):
        return entities.by_id("lung-squamous")
    if re.search(r"(?<!non-)(?<!non )small[- ]cell", text, re.I):
        return entities.by_id("sclc")
    if re.search(r"adenocarcinoma", text, re.I):
        return entities.by_id("lung-adenocarcinoma")
    if re.search(r"non-?\s?small", text, re.I):
        return entities.by_id("nsclc-nos")
    return None


def _melanoma_site(site_code: str) -> Entity | None:
    """Uveal (C69.3/C69.4), conjunctival (C69.0) or mucosal melanoma from the ICD-10-CM / ICD-O-3 site."""
    if not site_code:
        return None
    for target in ("uveal-melanoma", "conjunctival-melanoma", "mucosal-melanoma"):
        raw = next(e for e in codes.load("entities")["entities"] if e["id"] == target)
        if codes.has_prefix(site_code, raw["topo"]):
            return entities.by_id(target)
    return None


_MELANOMA_SITES = (
    (re.compile(r"conjunctiv", re.I), "conjunctival-melanoma"),
    (re.compile(r"choroid|ciliary|uvea|\biris\b", re.I), "uveal-melanoma"),
    (re.compile(r"nasal|sinus|oral|mucosa|anal|rect|vulv|vagin|esophag", re.I), "mucosal-melanoma"),
)


def refine(entity: Entity, context: str) -> Entity:
    """Narrative melanoma with an eye / mucosal site word in the same diagnosis line."""
    if entity.id == "melanoma":
        for pattern, target in _MELANOMA_SITES:
            if pattern.search(context):
                return entities.by_id(target) or entity
    return entity


def from_mentions(
    report: ClinicalText, mentions: list[Mention], diagnostic_sections: frozenset[str]
) -> list[Diagnosis]:
    """Asserted cancer mentions in the diagnosis/comment/addendum sections of a pathology report."""
    found = []
    for m in mentions:
        if m.label != "CANCER" or m.section not in diagnostic_sections or not m.raw.asserted:
            continue
        entity = entities.by_id(m.key)
        if entity is None or entity.benign:
            continue
        if entity.id in ("nec", "generic-malignancy") and any(
            o.key == "sclc" and o.raw.sentence == m.raw.sentence for o in mentions
        ):
            continue  # "small cell carcinoma (high-grade neuroendocrine carcinoma)" is one SCLC diagnosis
        context = _line_context(report.text, m.raw.sentence)
        entity = refine(entity, context)
        site = entities.site_from_words(context, m.raw.sentence) if entities.site_applies(entity) else None
        secondary = bool(re.search(r"\bmetasta", m.raw.sentence, re.I)) and entity.family is None
        hedged = any(o.label == "HEDGE" and o.raw.sentence == m.raw.sentence for o in mentions) or (
            m.raw.uncertain and bool(_strong_doubt().search(m.raw.sentence))
        )
        found.append(
            Diagnosis(
                source=m.source,
                origin="report",
                entity=entity,
                site=site,
                codes=(),
                morphology=None,
                topography=None,
                clinical_status=None,
                verification_status=None,
                secondary=secondary,
                when=report.when,
                uncertain=hedged,
                report=report.reference,
                report_status=report.status,
            )
        )
    return found


def _line_context(text: str, sentence: str) -> str:
    """The sentence plus the specimen line just before it ("A. Anal canal, biopsy:")."""
    pos = text.find(sentence[:60])
    if pos < 0:
        return sentence
    start = text.rfind("\n", 0, max(pos - 1, 0))
    start = text.rfind("\n", 0, start) if start > 0 else start
    return text[max(start, 0) : pos + len(sentence)]


def from_codes(report: ClinicalText, conclusion_codes: tuple[Code, ...]) -> list[Diagnosis]:
    out = []
    for i, c in enumerate(conclusion_codes):
        entity = None
        if c.short_system == "icdo3":
            entity = entities.from_morphology(c.code, None)
        entity = (
            entity
            or entities.from_icd10(c.code if c.short_system == "icd10" else None)
            or entities.from_snomed({c.code})
        )
        entity = entity or entities.from_text(c.display)
        if entity is None or entity.benign:
            continue
        out.append(
            Diagnosis(
                source=Source(
                    report.reference,
                    f"DiagnosticReport.conclusionCode[{i}]",
                    c.label(),
                    title=report.title,
                    when=report.when,
                ),
                origin="report",
                entity=entity,
                site=None,
                codes=(c,),
                morphology=c.code if c.short_system == "icdo3" else None,
                topography=None,
                clinical_status=None,
                verification_status=None,
                secondary=False,
                when=report.when,
                report=report.reference,
                report_status=report.status,
            )
        )
    return out


def from_histology_observation(resource: Json) -> Diagnosis | None:
    """mCODE STU4 histologic behavior and type (LOINC 31206-6) with an ICD-O-3 value."""
    value = codes_of(resource.get("valueCodeableConcept"))
    if not value:
        return None
    morphology = value[0].code
    topography = next((c.code for s in as_list(resource.get("bodySite")) for c in codes_of(s)), None)
    entity = entities.from_morphology(morphology, topography) or entities.from_text(value[0].display)
    if entity is None or entity.benign:
        return None
    observed = first_date(resource, "effectiveDateTime", "effectivePeriod", "issued")
    return Diagnosis(
        source=Source(ref_of(resource), "Observation.valueCodeableConcept", value[0].label(), when=observed),
        origin="observation",
        entity=entity,
        site=None,
        codes=tuple(value),
        morphology=morphology,
        topography=topography,
        clinical_status=None,
        verification_status=None,
        secondary=morphology.endswith("/6"),
        when=observed,
    )

"""Cancer entities (histologic families, rarity, urgency) from codes and from narrative terms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from fhirmaps import codes


@dataclass(frozen=True)
class Entity:
    id: str
    label: str
    family: str | None  # histologic family compared by discordance; None for NOS terms
    lineage: str
    discord: str | None  # families are compared only within the same discord group
    rare: bool
    rare_nci: bool
    group: str | None
    time_critical: str | None
    organ: str | None
    named_hedge: bool
    benign: bool
    family_parent: str | None = None  # NOS family this family refines (e.g. nsclc for nsclc-adeno)


@dataclass(frozen=True)
class Site:
    id: str
    label: str
    group: str
    rare: bool
    rare_nci: bool


def _entity(raw: dict[str, Any]) -> Entity:
    return Entity(
        id=raw["id"],
        label=raw["label"],
        family=raw.get("family"),
        lineage=raw.get("lineage", ""),
        discord=raw.get("discord"),
        rare=bool(raw.get("rare")),
        rare_nci=bool(raw.get("rare_nci", raw.get("rare"))),
        group=raw.get("group") or raw.get("nci_group"),
        time_critical=raw.get("time_critical"),
        organ=raw.get("organ"),
        named_hedge=bool(raw.get("named_hedge")),
        benign=bool(raw.get("benign")),
        family_parent=raw.get("family_parent"),
    )


@cache
def _table() -> tuple[tuple[dict[str, Any], Entity], ...]:
    return tuple((raw, _entity(raw)) for raw in codes.load("entities")["entities"])


@cache
def by_id(entity_id: str) -> Entity | None:
    return next((e for _, e in _table() if e.id == entity_id), None)


@cache
def _sites() -> tuple[tuple[dict[str, Any], Site], ...]:
    return tuple(
        (
            raw,
            Site(
                raw["id"],
                raw["label"],
                raw["group"],
                bool(raw.get("rare")),
                bool(raw.get("rare_nci", raw.get("rare"))),
            ),
        )
        for raw in codes.load("sites")["sites"]
    )


def split_morphology(value: str) -> tuple[str | None, str | None]:
    """("8936", "1") from "8936/1", "8936/1 G2" or "89361"."""
    match = re.match(r"\s*(\d{4})\s*/?\s*(\d)?", value or "")
    if not match:
        return None, None
    return match.group(1), match.group(2)


def from_morphology(morphology: str | None, topography: str | None) -> Entity | None:
    morph, behavior = split_morphology(morphology or "")
    if not morph:
        return None
    for raw, entity in _table():
        if not raw.get("morph") or not codes.in_ranges(morph, raw["morph"]):
            continue
        if behavior and behavior not in raw.get("behaviors", ["3"]) and behavior not in ("6", "2"):
            continue
        if raw.get("topo") and not (topography and codes.has_prefix(topography, raw["topo"])):
            continue
        return entity
    return None


# Entity lookups scan the whole table; a chart (and a population) names the same few codes and
# displays again and again, so answers are remembered (the table never changes in a process).
@lru_cache(maxsize=8192)
def from_icd10(code: str | None) -> Entity | None:
    if not code:
        return None
    for raw, entity in _table():
        if raw.get("icd10") and codes.has_prefix(code, raw["icd10"]):
            return entity
    return None


def from_snomed(code_values: set[str]) -> Entity | None:
    return _from_snomed(frozenset(code_values))


@lru_cache(maxsize=8192)
def _from_snomed(code_values: frozenset[str]) -> Entity | None:
    for raw, entity in _table():
        if code_values & set(raw.get("snomed", [])):
            return entity
    # Concepts EHRs and generators use for a whole diagnosis (codes/snomed.json, e.g. Synthea's 126906006).
    for code in sorted(code_values):
        concept = _snomed_concepts().get(code)
        if concept and concept.get("entity"):
            return by_id(concept["entity"])
    return None


@cache
def _snomed_concepts() -> dict[str, dict[str, Any]]:
    return {c["code"]: c for c in codes.load("snomed")["concepts"]}


def snomed_flag(code_values: set[str], flag: str) -> bool:
    """Whether any of the SNOMED concepts is marked `secondary` or `suspected` in codes/snomed.json."""
    return any(_snomed_concepts().get(code, {}).get(flag) for code in code_values)


@cache
def _term_regex() -> re.Pattern[str]:
    terms = sorted({t.lower() for raw, _ in _table() for t in raw["terms"]}, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(t) for t in terms) + r")(?![\w-])", re.IGNORECASE)


@cache
def _term_table() -> dict[str, Entity]:
    table: dict[str, Entity] = {}
    for raw, entity in _table():
        for term in raw["terms"]:
            table.setdefault(term.lower(), entity)
    return table


@lru_cache(maxsize=8192)
def from_text(text: str) -> Entity | None:
    """The most specific entity named in a short coded display or text (first specific match)."""
    found = [(_term_table()[m.group(1).lower()]) for m in _term_regex().finditer(text or "")]
    specific = [e for e in found if e.family]
    ranked = specific or found
    return ranked[0] if ranked else None


def site_of(code: str | None) -> Site | None:
    """Rare-site group of an ICD-10-CM code or ICD-O-3 topography."""
    if not code:
        return None
    for raw, site in _sites():
        if raw["codes"] and codes.has_prefix(code, raw["codes"]):
            return site
    return None


_COMMON_SITES = re.compile(
    r"\b(colon|colonic|cecum|caecum|rectum|rectal|sigmoid|stomach|gastric|breast|lung|pulmonary|prostate|prostatic|bladder|kidney|"
    r"renal|uterus|uterine|endometri\w*|cervix|cervical|ovary|ovarian|pancreas|pancreatic|liver|hepatic|skin|esophag\w*|thyroid)\b",
    re.I,
)


def site_from_words(text: str, sentence: str = "") -> Site | None:
    """Rare site named next to a generic carcinoma; a common site in the same place wins (a colectomy
    specimen that includes terminal ileum is still colon cancer)."""
    for scope in (sentence, text) if sentence else (text,):
        if _COMMON_SITES.search(scope):
            return None
        found = _site_in(scope)
        if found:
            return found
    return None


def _site_in(text: str) -> Site | None:
    low = f" {(text or '').lower()} "
    best: tuple[int, Site] | None = None
    for raw, site in _sites():
        for term in raw["terms"]:
            pos = low.find(f" {term}") if " " not in term else low.find(term)
            found = re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", low)
            # "3 cm from the anus" / "from the anal verge" are landmarks, not the tumour site.
            if found and re.search(r"\bfrom\s+(?:the\s+)?$", low[max(found.start() - 12, 0) : found.start()]):
                continue
            if pos >= 0 and found and (best is None or pos < best[0]):
                best = (pos, site)
    return best[1] if best else None


def site_applies(entity: Entity | None) -> bool:
    """Site-based rarity refines only NOS carcinomas / malignancies (not a named organ cancer,
    lymphoma or sarcoma)."""
    return entity is None or (entity.family is None and entity.lineage in ("carcinoma", "generic"))

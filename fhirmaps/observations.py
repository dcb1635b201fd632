"""Observations reduced to Measurements: biomarkers, grade, stage, tumour markers, disease status."""

from __future__ import annotations

from functools import cache, lru_cache

from fhirmaps import codes
from fhirmaps.elements import (
    Code,
    Json,
    as_list,
    code_set,
    codes_of,
    concept_text,
    first_date,
    ref_of,
    reference,
)
from fhirmaps.record import Measurement, MeasurementKind, Source

_KIND_KEYS: tuple[tuple[MeasurementKind, str], ...] = (
    ("disease-status", "disease_status_codes"),
    ("her2-ish", "her2_ish"),
    ("her2-ihc", "her2_ihc"),
    ("er", "er"),
    ("pr", "pr"),
    ("gleason-group", "gleason_group"),
    ("gleason-score", "gleason_score"),
    ("grade", "histologic_grade"),
    ("stage-group", "stage_group"),
    ("stage-m", "stage_m"),
    ("stage-t", "stage_t"),
    ("stage-n", "stage_n"),
    ("prostate-volume", "prostate_volume"),
    ("psa-density", "psa_density"),
    ("tumor-size", "tumor_size"),
    ("pdl1", "pdl1"),
    ("msi", "msi_mmr"),
    ("molecular", "molecular"),
    ("histology", "histology_codes"),
    ("deauville", "deauville"),
)


@cache
def _marker_by_code() -> dict[str, str]:
    return {loinc: m["marker"] for m in codes.load("observations")["tumor_markers"] for loinc in m["loinc"]}


@cache
def _kind_codes() -> tuple[tuple[MeasurementKind, frozenset[str]], ...]:
    cfg = codes.load("observations")
    return tuple((kind, frozenset(cfg[key])) for kind, key in _KIND_KEYS)


@cache
def _first_kind_of_code() -> dict[str, int]:
    """Each code's first kind (its index in `_kind_codes`): the first kind whose codes meet a set
    of codes is the earliest first kind of its codes."""
    first: dict[str, int] = {}
    for index, (_, known) in enumerate(_kind_codes()):
        for code in known:
            first.setdefault(code, index)
    return first


def classify(code_values: set[str], text: str) -> tuple[MeasurementKind, str]:
    first = _first_kind_of_code()
    found = [first[value] for value in code_values if value in first]
    if found:
        return _kind_codes()[min(found)][0], text
    markers = _marker_by_code()
    for value in code_values:
        if value in markers:
            return "tumor-marker", markers[value]
    return _kind_in_words(text), text


_KIND_WORDS: tuple[tuple[str, MeasurementKind], ...] = (
    ("deauville", "deauville"),
    ("her2", "her2-ihc"),
    ("erbb2", "her2-ish"),
    ("gleason", "gleason-score"),
    ("grade group", "gleason-group"),
    ("estrogen receptor", "er"),
    ("progesterone receptor", "pr"),
    ("pd-l1", "pdl1"),
    ("stage", "stage-group"),
)


@lru_cache(maxsize=4096)  # an observation's name: the same few hundred across a population
def _kind_in_words(text: str) -> MeasurementKind:
    low = text.lower()
    for word, kind in _KIND_WORDS:
        if word in low:
            if kind == "her2-ihc" and any(
                w in low for w in ("fish", "ish", "ratio", "copy", "cep17", "amplification")
            ):
                kind = "her2-ish"
            return kind
    return "other"


def read_observation(resource: Json) -> list[Measurement]:
    concept = resource.get("code")
    kind, name = classify(code_set(concept), concept_text(concept))
    out = [_measurement(resource, kind, name, concept, "Observation", resource)]
    for i, component in enumerate(as_list(resource.get("component"))):
        if isinstance(component, dict):
            ckind, cname = classify(code_set(component.get("code")), concept_text(component.get("code")))
            if ckind != "other":
                out.append(
                    _measurement(
                        resource,
                        ckind,
                        cname,
                        component.get("code"),
                        f"Observation.component[{i}]",
                        component,
                    )
                )
    return [m for m in out if m.kind != "other" or m.value_text]


def _measurement(
    resource: Json, kind: MeasurementKind, name: str, concept: object, path: str, holder: Json
) -> Measurement:
    value_text, number, unit, value_path = "", None, "", f"{path}.value"
    value_codes: tuple[Code, ...] = ()
    if isinstance(holder.get("valueQuantity"), dict):
        q = holder["valueQuantity"]
        number = float(q["value"]) if isinstance(q.get("value"), (int, float)) else None
        unit = str(q.get("unit") or q.get("code") or "")
        comparator = str(q.get("comparator", ""))
        value_text = f"{comparator}{q.get('value')} {unit}".strip()
        value_path = f"{path}.valueQuantity"
    elif isinstance(holder.get("valueCodeableConcept"), dict):
        value_codes = tuple(codes_of(holder["valueCodeableConcept"]))
        value_text = concept_text(holder["valueCodeableConcept"])
        value_path = f"{path}.valueCodeableConcept"
    elif isinstance(holder.get("valueString"), str):
        value_text = holder["valueString"]
        value_path = f"{path}.valueString"
    elif isinstance(holder.get("valueInteger"), int):
        number = float(holder["valueInteger"])
        value_text = str(holder["valueInteger"])
        value_path = f"{path}.valueInteger"
    elif isinstance(holder.get("valueBoolean"), bool):
        value_text = str(holder["valueBoolean"]).lower()
    elif isinstance(holder.get("valueRatio"), dict):
        ratio = holder["valueRatio"]
        num = (ratio.get("numerator") or {}).get("value")
        den = (ratio.get("denominator") or {}).get("value") or 1
        if isinstance(num, (int, float)) and isinstance(den, (int, float)) and den:
            number = float(num) / float(den)
            value_text = f"{number:g}"
    interpretation = concept_text(next(iter(as_list(resource.get("interpretation"))), None))
    if interpretation and interpretation.lower() not in value_text.lower():
        value_text = f"{value_text} ({interpretation})" if value_text else interpretation
    label = name or concept_text(concept)
    body = concept_text(resource.get("bodySite"))
    observed = first_date(resource, "effectiveDateTime", "effectivePeriod", "issued")
    return Measurement(
        source=Source(ref_of(resource), value_path, f"{label}: {value_text}".strip(": "), when=observed),
        kind=kind,
        name=label,
        codes=tuple(codes_of(concept)),
        value_text=value_text,
        value_number=number,
        unit=unit,
        value_codes=value_codes,
        when=observed,
        specimen=reference(resource.get("specimen")),
        status=str(resource.get("status", "")).lower(),
        body_site=body,
    )

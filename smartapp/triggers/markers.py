"""Tumour-marker progression rules (PSA per PCWG3 / post-prostatectomy / Phoenix, CA-125 per GCIG,
generic rises)."""

from __future__ import annotations

from datetime import date

from fhirmaps import codes
from fhirmaps.record import Measurement, PatientRecord
from smartapp.findings import Evidence
from smartapp.triggers import rules
from smartapp.triggers.common import Evaluation, current_diagnoses

_PREGNANCY_CODES = ("Z33", "Z34", "Z3A", "O")
_MARKER_DISEASES = {
    "AFP": ("germ-cell", "hcc", "testis"),
    "beta-hCG": ("germ-cell", "testis", "placenta"),
    "chromogranin A": ("net", "nec", "atypical-carcinoid", "lcnec"),
    "PSA": ("prostate-adenocarcinoma",),
}


def _series(record: PatientRecord, marker: str, since: date, evaluation: Evaluation) -> list[Measurement]:
    items = [
        m
        for m in record.measurements
        if m.kind == "tumor-marker"
        and m.name == marker
        and m.value_number is not None
        and m.when
        and since <= m.when <= evaluation.as_of
        and m.status not in ("entered-in-error", "cancelled")
    ]
    return sorted(items, key=lambda m: (m.when or since, m.source.reference))


def _relevant(record: PatientRecord, evaluation: Evaluation, marker: str) -> bool:
    diseases = _MARKER_DISEASES.get(marker)
    dx = current_diagnoses(record, evaluation)
    if marker == "LDH" or not dx:
        return False
    if diseases is None:
        return True
    return any(
        (d.entity and d.entity.id in diseases)
        or (d.site and d.site.id in diseases)
        or (marker == "PSA" and any(c.code.upper().startswith("C61") for c in d.codes))
        for d in dx
    )


def _pregnant(record: PatientRecord) -> bool:
    for p in record.problems + record.excluded_diagnoses:
        for c in p.codes:
            if c.short_system == "icd10" and c.code.upper().startswith(_PREGNANCY_CODES):
                return True
            if c.code in ("77386006", "72892002"):
                return True
    return any(
        rules.pattern("not-responding", "pregnancy_words").search(r.text)
        for r in record.texts
        if r.kind == "note"
    )


def marker_progression(
    record: PatientRecord,
    evaluation: Evaluation,
    start: date,
    prostatectomy: date | None,
    radiotherapy: date | None,
) -> list[tuple[str, list[Evidence]]]:
    cfg = codes.load("observations")
    rules = cfg["rules"]
    found: list[tuple[str, list[Evidence]]] = []
    for marker_cfg in cfg["tumor_markers"]:
        marker = marker_cfg["marker"]
        if not _relevant(record, evaluation, marker):
            continue
        if marker_cfg.get("pregnancy_sensitive") and _pregnant(record):
            continue
        series = _series(record, marker, start, evaluation)
        if len(series) < 2:
            continue
        values = [float(m.value_number or 0.0) for m in series]
        hit: list[int] = []
        if marker == "PSA":
            hit = _psa(
                values,
                rules["psa"],
                prostatectomy is not None and prostatectomy <= start,
                radiotherapy is not None,
            )
        elif marker_cfg["rule"] == "ca125":
            hit = _ca125(values, float(marker_cfg.get("uln", 35)), rules["ca125"]["doubling"])
        else:
            hit = _generic(values, rules["generic"])
        if hit:
            unit = f" {series[-1].unit}" if series[-1].unit else ""
            found.append(
                (
                    f"{marker} {' → '.join(f'{v:g}' for v in values[-4:])}{unit}",
                    [Evidence.of(series[i].source) for i in hit],
                )
            )
    return found


def _nadir_index(values: list[float]) -> int:
    return min(range(len(values)), key=lambda i: (values[i], i))


def _psa(values: list[float], rule: dict[str, float], after_prostatectomy: bool, after_rt: bool) -> list[int]:
    if after_prostatectomy:
        above = [
            i
            for i in range(1, len(values))
            if values[i] > rule["post_prostatectomy_threshold"]
            and values[i] > values[i - 1]
            and values[i - 1] > rule["post_prostatectomy_threshold"]
        ]
        return [above[-1] - 1, above[-1]] if above else []
    n = _nadir_index(values)
    nadir = values[n]
    if after_rt and not after_prostatectomy:
        hits = [
            i for i in range(n + 1, len(values)) if values[i] >= nadir + rule["post_radiotherapy_above_nadir"]
        ]
    else:
        hits = [
            i
            for i in range(n + 1, len(values))
            if values[i] >= nadir * (1 + rule["systemic_rise_fraction"])
            and values[i] - nadir >= rule["systemic_rise_absolute"]
        ]
    # Confirmed: at least two qualifying values after the nadir (PCWG: a second value >= 3 weeks later).
    return [n] + hits[-2:] if len(hits) >= 2 else []


def _ca125(values: list[float], uln: float, doubling: float) -> list[int]:
    n = _nadir_index(values)
    threshold = doubling * (uln if values[n] <= uln else values[n])
    hits = [i for i in range(n + 1, len(values)) if values[i] >= threshold]
    return [n] + hits[-2:] if len(hits) >= 2 else []


def _generic(values: list[float], rule: dict[str, float]) -> list[int]:
    n = _nadir_index(values)
    after = values[n:]
    rises = 0
    for i in range(1, len(after)):
        rises = rises + 1 if after[i] > after[i - 1] else 0
    last = values[-1]
    if (
        rises >= rule["consecutive_rises"]
        and n < len(values) - 2
        and last >= values[n] * (1 + rule["rise_fraction_above_nadir"])
    ):
        return [n, len(values) - 2, len(values) - 1]
    return []

"""Growth on serial measured tumor sizes (RECIST 1.1): the latest size of one lesion against its
smallest size since the baseline scan, recomputed from the measurements rather than read from a
stated conclusion."""

from __future__ import annotations

import re
from datetime import date, timedelta

from fhirmaps.record import ClinicalText, Measurement, PatientRecord, Source
from smartapp.findings import Evidence
from smartapp.triggers import rules
from smartapp.triggers.common import Evaluation
from smartapp.wording import us_date

TRIGGER = "not-responding"
_TO_MM = {"mm": 1.0, "cm": 10.0, "[mm]": 1.0, "[cm]": 10.0, "millimeter": 1.0, "centimeter": 10.0}


def _mm(m: Measurement) -> float | None:
    factor = _TO_MM.get(m.unit.strip().lower())
    return None if factor is None or m.value_number is None else m.value_number * factor


def _lesions(
    record: PatientRecord, since: date, evaluation: Evaluation
) -> dict[str, list[tuple[Measurement, float]]]:
    """Sizes per lesion (body site), oldest first; sizes with no convertible unit are left out."""
    series: dict[str, list[tuple[Measurement, float]]] = {}
    for m in record.measurements:
        if m.kind != "tumor-size" or not m.when or not since <= m.when <= evaluation.as_of:
            continue
        if m.status in ("entered-in-error", "cancelled", "preliminary", "registered"):
            continue
        size = _mm(m)
        if size is not None and size > 0:
            series.setdefault(m.body_site.strip().lower(), []).append((m, size))
    for items in series.values():
        items.sort(key=lambda item: (item[0].when or since, item[0].source.reference))
    return series


def size_progression(
    record: PatientRecord, evaluation: Evaluation, start: date
) -> list[tuple[date, str, list[Evidence]]]:
    """(date, phrase, evidence) for each lesion whose latest size on treatment is at least the RECIST
    fraction and the RECIST minimum above its nadir (baseline included)."""
    fraction = float(rules.value(TRIGGER, "size_increase_fraction"))
    minimum = float(rules.value(TRIGGER, "size_increase_mm"))
    baseline = start - timedelta(days=int(rules.value(TRIGGER, "size_baseline_days")))
    found = []
    for items in _lesions(record, baseline, evaluation).values():
        latest, size = items[-1]
        if len(items) < 2 or latest.when is None or latest.when <= start:
            continue
        nadir, smallest = min(items[:-1], key=lambda item: item[1])
        rise = size - smallest
        if rise + 1e-9 >= minimum and rise + 1e-9 >= smallest * fraction:
            phrase = (
                f"{_site(latest.body_site)}lesion {size:g} mm on {us_date(latest.when)}, "
                f"up from {smallest:g} mm on {us_date(nadir.when)} (+{rise / smallest:.0%})"
            )
            found.append((latest.when, phrase, [Evidence.of(latest.source), Evidence.of(nadir.source)]))
    return found


def _site(body_site: str) -> str:
    """ "Liver structure" -> "liver ", "Structure of right lung" -> "right lung "."""
    words = body_site.strip().lower().removesuffix(" structure").removeprefix("structure of ").strip()
    return f"{words} " if words else ""


def _longest_mm(size: str, unit_hint: str = "") -> tuple[float, str] | None:
    """ "3.4 x 2.9 cm" -> (34.0, "cm"); a size without a unit takes the unit of its partner."""
    numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", size)]
    unit = (re.search(r"(cm|mm)\s*$", size.strip(), re.IGNORECASE) or [None, unit_hint])[1] or ""
    factor = _TO_MM.get(unit.lower())
    if not numbers or factor is None:
        return None
    return max(numbers) * factor, unit


def stated_growth(report: ClinicalText) -> tuple[str, Evidence] | None:
    """A size comparison stated in an imaging report ("now 3.4 x 2.9 cm, previously 2.6 x 2.2 cm";
    "increased from 2.5 cm to 3.1 cm") about a tumor, at or over the RECIST thresholds."""
    fraction = float(rules.value(TRIGGER, "size_increase_fraction"))
    minimum = float(rules.value(TRIGGER, "size_increase_mm"))
    path = next((m.source.path for m in report.mentions), "DiagnosticReport.presentedForm")
    best: tuple[float, str, Evidence] | None = None
    for line in re.split(r"\n|(?<=[.;])\s+", report.text):
        if not rules.pattern(TRIGGER, "tumor_words").search(line) or rules.pattern(
            TRIGGER, "progression_traps"
        ).search(line):
            continue
        comparisons = (
            rules.pattern(TRIGGER, "stated_size_now_then"),
            rules.pattern(TRIGGER, "stated_size_from_to"),
        )
        for comparison in comparisons:
            for match in comparison.finditer(line):
                now = _longest_mm(match["now"])
                then = _longest_mm(match["then"], now[1] if now else "")
                if now is None or then is None or then[0] <= 0:
                    continue
                rise = now[0] - then[0]
                if rise + 1e-9 < minimum or rise + 1e-9 < then[0] * fraction:
                    continue
                phrase = f"lesion {now[0]:g} mm, previously {then[0]:g} mm (+{rise / then[0]:.0%})"
                if best is None or rise / then[0] > best[0]:
                    source = Source(
                        report.reference, path, line.strip(), title=report.title, when=report.when
                    )
                    best = (rise / then[0], phrase, Evidence.of(source))
    return None if best is None else (best[1], best[2])

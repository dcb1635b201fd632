"""Lines of treatment: the drugs given together as one line, told apart by when each was first given."""

from __future__ import annotations

from datetime import date, timedelta

from fhirmaps.record import CareActivity
from smartapp.triggers import rules
from smartapp.triggers.common import Evaluation
from smartapp.wording import drug_name


def _first_given(given: list[CareActivity], limit: date) -> dict[str, tuple[date, str]]:
    """Each drug's first date before `limit`, keyed by its first word in lower case."""
    first: dict[str, tuple[date, str]] = {}
    for a in given:
        began = a.start or a.end
        if a.resource_type == "Procedure" or not a.name or began is None or began >= limit:
            continue
        key = a.name.split()[0].lower()
        if key not in first or began < first[key][0]:
            first[key] = (began, a.name.split()[0])  # drug_name decides its case later
    return first


def line_before(given: list[CareActivity], when: date | None, evaluation: Evaluation) -> list[str]:
    """Drug names of the line being given before `when`: drugs first given within `line_cluster_days`
    of the latest first-given drug before that date."""
    first = _first_given(given, when or evaluation.as_of)
    if not first:
        return []
    cluster = rules.value("common", "line_cluster_days")
    last = max(d for d, _ in first.values())
    return [n for d, n in sorted(first.values()) if (last - d).days <= cluster]


def current_line(given: list[CareActivity], evaluation: Evaluation) -> tuple[date, list[CareActivity]] | None:
    """The latest line by as_of: the day it began and every order or administration of its drugs."""
    first = _first_given(given, evaluation.as_of + timedelta(days=1))
    if not first:
        return None
    cluster = rules.value("common", "line_cluster_days")
    last = max(d for d, _ in first.values())
    keys = {k for k, (d, _) in first.items() if (last - d).days <= cluster}
    began = min(first[k][0] for k in keys)
    actions = [a for a in given if a.name and a.name.split()[0].lower() in keys]
    return began, actions


def regimen_name(names: list[str]) -> str:
    """'FOLFOX-bevacizumab' for oxaliplatin, fluorouracil, leucovorin and bevacizumab."""
    words = list(dict.fromkeys(drug_name(n).split()[0] for n in names if n))
    modulators = rules.value("common", "modulators")
    for name, drugs in rules.value("common", "regimens"):
        if all(any(d.split()[0] in w for w in words) for d in drugs):
            rest = [w for w in words if not any(d.split()[0] in w for d in drugs) and w not in modulators]
            return "-".join([name, *rest])
    # Leucovorin modulates fluorouracil: it names the regimen only when nothing else does.
    return "-".join([w for w in words if w.lower() not in modulators] or words)

"""Prostate facts for surveillance and guideline rules: grade group, PSA, clinical T, cores,
% per core, PSA density."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from fhirmaps.record import PatientRecord
from smartapp.findings import Evidence
from smartapp.triggers import rules
from smartapp.triggers.common import Evaluation, texts
from smartapp.triggers.grades import grades
from smartapp.wording import us_date


def _t_stage(text: str) -> re.Match[str] | None:
    return rules.pattern("surveillance-check", "t_stage_value").search(text)


@dataclass
class ProstateFacts:
    grade_group: int | None = None
    psa: float | None = None
    t_stage: str | None = None
    cores: int | None = None
    max_core_pct: int | None = None
    density: float | None = None
    density_basis: str = ""  # how the density was obtained, in words
    volume: float | None = None
    psa_when: date | None = None
    pattern4_pct: int | None = None
    brca2: bool = False
    high_genomic: bool = False
    evidence: list[Evidence] = field(default_factory=list)


def prostate_facts(record: PatientRecord, evaluation: Evaluation) -> ProstateFacts:
    facts = ProstateFacts()
    gleason = [g for g in grades(record, evaluation, "") if g.scheme == "gleason"]
    if gleason:
        top = max(gleason, key=lambda g: g.value)
        facts.grade_group = top.value
        facts.evidence.append(top.evidence)
    psa = sorted(
        (
            m
            for m in record.measurements
            if m.kind == "tumor-marker"
            and m.name == "PSA"
            and m.value_number is not None
            and (m.when is None or m.when <= evaluation.as_of)
        ),
        key=lambda m: (m.when is not None, m.when),
    )
    if psa:
        facts.psa = psa[-1].value_number
        facts.psa_when = psa[-1].when
        facts.evidence.append(Evidence.of(psa[-1].source))
    stated: list[tuple[date | None, float, Evidence]] = []
    volumes: list[tuple[date | None, float, Evidence]] = []
    for m in record.measurements:
        if m.kind == "stage-t":
            match = _t_stage(m.value_text) or _t_stage(" ".join(c.display or c.code for c in m.value_codes))
            if match:
                facts.t_stage = f"T{match.group(1)}{match.group(2) or ''}"
        elif (
            m.kind == "psa-density"
            and m.value_number is not None
            and not (m.when and m.when > evaluation.as_of)
        ):
            stated.append((m.when, m.value_number, Evidence.of(m.source)))
        elif (
            m.kind == "prostate-volume"
            and m.value_number is not None
            and not (m.when and m.when > evaluation.as_of)
        ):
            volumes.append((m.when, m.value_number, Evidence.of(m.source)))
    text = "\n".join(r.text for r in texts(record, evaluation))
    if facts.t_stage is None:
        match = rules.pattern("surveillance-check", "t_stage_in_text").search(text)
        if match:
            facts.t_stage = f"T{match.group(1)}{match.group(2) or ''}"
    core_match = rules.pattern("surveillance-check", "positive_cores").search(text)
    if core_match:
        facts.cores = int(core_match.group(1) or core_match.group(3) or core_match.group(4))
    pcts = [int(a or b) for a, b in rules.pattern("surveillance-check", "percent_per_core").findall(text)]
    if pcts:
        facts.max_core_pct = max(pcts)
    for r in texts(record, evaluation):
        for line in re.split(r"\n|(?<=\.)\s+", r.text):
            for match in rules.pattern("surveillance-check", "stated_density").finditer(line):
                # "Last documented PSA density 0.12 (06/2024)" repeats an old value: it is not dated
                # by this note.
                when = None if rules.pattern("surveillance-check", "recalled_value").search(line) else r.when
                stated.append((when, float(match.group(1)), Evidence.in_report(r, line.strip())))
            for match in rules.pattern("surveillance-check", "gland_volume").finditer(line):
                volumes.append((r.when, float(match.group(1)), Evidence.in_report(r, line.strip())))
    _density(facts, stated, volumes)
    p4 = [int(a or b) for a, b in rules.pattern("surveillance-check", "pattern4_percent").findall(text)]
    facts.pattern4_pct = max(p4) if p4 else None
    facts.brca2 = bool(
        rules.pattern("surveillance-check", "brca2_positive").search(text)
    ) and not rules.pattern("surveillance-check", "brca2_negative").search(text)
    facts.high_genomic = bool(rules.pattern("surveillance-check", "high_genomic_risk").search(text))
    return facts


def low_risk_t(t_stage: str) -> bool:
    return t_stage in ("T1", "T1a", "T1b", "T1c", "T2", "T2a")


def _latest(items: list[tuple[date | None, float, Evidence]]) -> tuple[date | None, float, Evidence] | None:
    return max(items, key=lambda i: i[0] or date.min) if items else None


def _density(
    facts: ProstateFacts,
    stated: list[tuple[date | None, float, Evidence]],
    volumes: list[tuple[date | None, float, Evidence]],
) -> None:
    """PSA density from the latest PSA and the latest gland volume; a stated density only when it is
    at least as recent as both (a value stated in an older report is out of date)."""
    volume, said = _latest(volumes), _latest(stated)
    computed_on = max((d for d in (facts.psa_when, volume[0] if volume else None) if d), default=None)
    if volume is not None and volume[1] > 0 and facts.psa is not None:
        if said is not None and said[0] and computed_on and said[0] >= computed_on:
            facts.density, facts.density_basis = said[1], f"stated {us_date(said[0])}"
            facts.evidence.append(said[2])
            return
        facts.volume = volume[1]
        facts.density = round(facts.psa / volume[1], 3)
        facts.density_basis = (
            f"PSA {facts.psa:g} ng/mL{f' ({us_date(facts.psa_when)})' if facts.psa_when else ''} "
            f"over {volume[1]:g} mL{f' ({us_date(volume[0])})' if volume[0] else ''}"
        )
        facts.evidence.append(volume[2])
    elif said is not None:
        facts.density, facts.density_basis = said[1], f"stated {us_date(said[0])}" if said[0] else "stated"
        facts.evidence.append(said[2])

"""incomplete-biomarker: breast HER2 IHC 2+ without ISH, atypical HER2 ISH groups 2-4,
equivocal/failed predictive biomarkers never repeated."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from fhirmaps.record import PatientRecord
from smartapp.findings import Evidence, Fact, Finding, NotFound
from smartapp.triggers import rules
from smartapp.triggers.biomarker_unreported import undecided
from smartapp.triggers.common import Evaluation, current_diagnoses, reviews_in_record, texts
from smartapp.triggers.spec import TriggerSpec
from smartapp.wording import join, sentence, us_date

RATIONALE = (
    "ASCO/CAP HER2 testing guideline (2018, affirmed 2023): IHC 2+ is equivocal and must be resolved by "
    "in situ hybridisation on the same specimen; ISH groups 2-4 need concomitant IHC review "
    "(Wolff et al., Arch Pathol Lab Med 2018;142:1364). Equivocal or failed predictive biomarkers leave "
    "treatment eligibility undetermined."
)


def _pat(key: str) -> re.Pattern[str]:
    return rules.pattern(SPEC.id, key)


def states_requirement(line: str) -> bool:
    """A sentence about how a test must be done or read ("2+ results must be reflexed to ISH"), not a
    result."""
    return bool(rules.pattern(SPEC.id, "requirement_patterns").search(line))


@dataclass(frozen=True)
class Hit:
    when: date | None
    specimen: str
    evidence: Evidence


def _breast(record: PatientRecord, evaluation: Evaluation) -> bool:
    for d in current_diagnoses(record, evaluation):
        if d.entity and d.entity.id == "breast-carcinoma":
            return True
        if any(c.code.upper().startswith("C50") for c in d.codes):
            return True
    return any(_pat("breast_words").search(r.text) for r in texts(record, evaluation, "pathology"))


def _ihc_equivocal(record: PatientRecord, evaluation: Evaluation) -> list[Hit]:
    out = []
    for m in record.measurements:
        if (
            m.kind != "her2-ihc"
            or (m.when and m.when > evaluation.as_of)
            or rules.pattern(SPEC.id, "non_breast_sites").search(m.body_site)
        ):
            continue
        value = f"{m.value_text} {' '.join(c.code + ' ' + c.display for c in m.value_codes)}"
        if _pat("her2_ihc_equivocal_values").search(value) or m.value_number == 2:
            out.append(Hit(m.when, m.specimen, Evidence.of(m.source)))
    for r in texts(record, evaluation, "pathology"):
        if rules.pattern(SPEC.id, "non_breast_sites").search(r.text[:2000]) and not _pat(
            "breast_words"
        ).search(r.text):
            continue
        for line in re.split(r"\n|(?<=\.)\s+", r.text):
            if (
                rules.pattern(SPEC.id, "her2_ihc_equivocal").search(line)
                and not rules.pattern(SPEC.id, "ish_words").search(line)
                and not states_requirement(line)
            ):
                out.append(Hit(r.when, ",".join(r.specimens), Evidence.in_report(r, line.strip())))
    return out


def _ish_results(record: PatientRecord, evaluation: Evaluation) -> tuple[list[Hit], list[Hit]]:
    """(ISH results, ISH pending/ordered mentions)."""
    done: list[Hit] = []
    pending: list[Hit] = []
    for m in record.measurements:
        if m.kind == "her2-ish" and not (m.when and m.when > evaluation.as_of):
            (
                pending
                if rules.pattern(SPEC.id, "pending_words").search(m.value_text) or not m.value_text
                else done
            ).append(Hit(m.when, m.specimen, Evidence.of(m.source)))
    for r in texts(record, evaluation, "pathology", "note"):
        for line in re.split(r"\n|(?<=\.)\s+", r.text):
            if (
                rules.pattern(SPEC.id, "ish_words").search(line)
                and _pat("her2_ish_names").search(line)
                and not states_requirement(line)
            ):
                hit = Hit(r.when, ",".join(r.specimens), Evidence.in_report(r, line.strip()))
                (
                    pending
                    if rules.pattern(SPEC.id, "pending_words").search(line)
                    and not rules.pattern(SPEC.id, "ish_ratio").search(line)
                    else done
                ).append(hit)
    for a in record.activities:
        if (
            _pat("ish_words").search(a.name)
            and _pat("her2_names").search(a.name)
            and a.status not in ("revoked", "entered-in-error")
        ):
            pending.append(Hit(a.when, "", Evidence.of(a.source)))
    return done, pending


def _ish_group(record: PatientRecord, evaluation: Evaluation) -> list[tuple[int, Evidence]]:
    out: list[tuple[int, Evidence]] = []
    ratio: tuple[float, Evidence] | None = None
    copies: tuple[float, Evidence] | None = None
    for m in record.measurements:
        if m.kind != "her2-ish" or (m.when and m.when > evaluation.as_of):
            continue
        group = rules.pattern(SPEC.id, "ish_group").search(m.value_text)
        if group:
            out.append((int(group.group(1)), Evidence.of(m.source)))
        elif m.value_number is not None and any(c.code == "49683-6" for c in m.codes):
            ratio = (m.value_number, Evidence.of(m.source))
        elif m.value_number is not None and any(c.code == "74860-8" for c in m.codes):
            copies = (m.value_number, Evidence.of(m.source))
    for r in texts(record, evaluation, "pathology"):
        for line in re.split(r"\n|(?<=\.)\s+", r.text):
            if not (_pat("her2_names").search(line) or _pat("ish_words").search(line)):
                continue
            ev = Evidence.in_report(r, line.strip())
            group = rules.pattern(SPEC.id, "ish_group").search(line)
            if group and rules.pattern(SPEC.id, "ish_words").search(line + " ish"):
                out.append((int(group.group(1)), ev))
            rm, cm = (
                rules.pattern(SPEC.id, "ish_ratio").search(line),
                rules.pattern(SPEC.id, "ish_copies").search(line),
            )
            if rm:
                ratio = (float(rm.group(1)), ev)
            if cm:
                copies = (float(cm.group(1) or cm.group(2)), ev)
    if ratio and copies:
        r_value, c_value = ratio[0], copies[0]
        group_value = (
            (1 if c_value >= 4 else 2) if r_value >= 2 else (3 if c_value >= 6 else 4 if c_value >= 4 else 5)
        )
        if not out or group_value in {g for g, _ in out}:
            out.append((group_value, ratio[1]))
            out.append((group_value, copies[1]))
    return out


_TEST_LABELS = {"msi": "MSI/MMR", "pdl1": "PD-L1", "molecular": "molecular testing"}


def _equivocal_tests(record: PatientRecord, evaluation: Evaluation) -> list[tuple[str, Evidence]]:
    found: list[tuple[str, date | None, Evidence]] = []
    resolved: list[tuple[str, date | None]] = []
    for m in record.measurements:
        if m.kind in ("msi", "pdl1", "molecular") and not (m.when and m.when > evaluation.as_of):
            if rules.folded(SPEC.id, "equivocal_words").search(m.value_text):
                found.append((m.kind, m.when, Evidence.of(m.source)))
            elif m.value_text:
                resolved.append((m.kind, m.when))
    for r in texts(record, evaluation):
        # A line counts only with one of the equivocal words in it (each ending "equivocal_test"
        # holds one; the result-line case asks for them): a text without any is passed over whole.
        if r.kind == "imaging" or not rules.folded(SPEC.id, "equivocal_words").search(r.text):
            continue
        # A report about one test ("PD-L1 22C3 IHC") gives its result on a line of its own
        # ("RESULT: NOT EVALUABLE").
        titled = rules.pattern(SPEC.id, "single_test_titles").search(r.title)
        for line in re.split(r"\n|(?<=\.)\s+", r.text):
            match = rules.pattern(SPEC.id, "equivocal_test").search(line)
            # The test named nearest before the equivocal word ("KRAS G12D; PD-L1 not evaluable" is
            # about PD-L1).
            test = rules.pattern(SPEC.id, "test_names").findall(line[: match.start(2)])[-1] if match else ""
            if (
                not match
                and titled
                and rules.pattern(SPEC.id, "result_lines").search(line)
                and rules.pattern(SPEC.id, "equivocal_words").search(line)
            ):
                test = titled.group(1)
            if test and not _pat("her2_and_hormone_receptor_names").search(line):
                if _pat("repeat_words").search(line):
                    continue
                found.append((_test_kind(test), r.when, Evidence.in_report(r, line.strip())))
    out = []
    for kind, when, ev in found:
        if any(k == kind and w and when and w > when for k, w in resolved):
            continue
        out.append((kind, ev))
    return out


def _test_kind(word: str) -> str:
    low = word.lower()
    if low.startswith(("msi", "micro", "mmr", "mismatch", "mlh1", "msh", "pms2")):
        return "msi"
    return "pdl1" if low.startswith("pd") else "molecular"


def _searched(record: PatientRecord, evaluation: Evaluation) -> str:
    """Where an ISH result was looked for: 'pathology reports and observations dated
    10/27/2026–11/24/2026'."""
    pathology = texts(record, evaluation, "pathology")
    observations = [m for m in record.measurements if not (m.when and m.when > evaluation.as_of)]
    dates = sorted(d for d in [*(r.when for r in pathology), *(m.when for m in observations)] if d)
    span = f" dated {us_date(dates[0])}–{us_date(dates[-1])}" if dates else ""
    return f"{len(pathology)} pathology reports and {len(observations)} observations{span}"


def evaluate(record: PatientRecord, evaluation: Evaluation) -> Finding | None:
    phrases: list[str] = []
    facts: list[Fact] = []
    not_found: list[NotFound] = []
    evidence: list[Evidence] = []
    lookback = timedelta(days=rules.value(SPEC.id, "ish_lookback_days"))
    pending_days = rules.value(SPEC.id, "pending_window_days")
    if _breast(record, evaluation):
        ihc = _ihc_equivocal(record, evaluation)
        if ihc:
            done, pending = _ish_results(record, evaluation)
            unresolved = []
            for hit in ihc:
                start = (hit.when or evaluation.as_of) - lookback
                # Any ISH result from a week before the IHC onwards resolves it (specimen ids are
                # rarely shared).
                if [d for d in done if d.when is None or d.when >= start]:
                    continue
                waiting = [
                    p for p in pending if hit.when and (evaluation.as_of - hit.when).days <= pending_days
                ]
                if not waiting:
                    unresolved.append(hit)
            if unresolved:
                first = min(unresolved, key=lambda h: h.when or evaluation.as_of)
                on = f" on {us_date(first.when)}" if first.when else ""
                phrases.append(
                    f"HER2 IHC 2+ (equivocal){on} has no ISH result; reflex ISH on the same block is needed"
                )
                facts += [
                    Fact(
                        kind="measurement",
                        name="HER2 IHC",
                        value="2+ (equivocal)",
                        when=h.when,
                        reference=h.evidence.reference,
                    )
                    for h in unresolved
                ]
                not_found.append(NotFound(what="HER2 ISH result", searched=_searched(record, evaluation)))
                evidence += [h.evidence for h in unresolved]
        groups = [(g, ev) for g, ev in _ish_group(record, evaluation) if g in (2, 3, 4)]
        if groups:
            numbers = sorted({g for g, _ in groups})
            phrases.append(
                f"HER2 ISH group {join([str(g) for g in numbers], 'or')} needs concomitant IHC review"
            )
            facts += [
                Fact(
                    kind="measurement",
                    name="HER2 ISH group",
                    value=str(g),
                    number=float(g),
                    when=ev.when,
                    reference=ev.reference,
                )
                for g, ev in groups
            ]
            evidence += [ev for _, ev in groups]
    equivocal = _equivocal_tests(record, evaluation)
    first_of_kind: dict[str, Evidence] = {}  # one phrase per test, from its earliest report
    for kind, ev in sorted(equivocal, key=lambda item: item[1].when or date.max):
        first_of_kind.setdefault(kind, ev)
    for kind, ev in first_of_kind.items():
        word = rules.pattern(SPEC.id, "equivocal_words").search(ev.text)
        result = word.group(0).lower() if word else "equivocal"
        on = f" on {us_date(ev.when)}" if ev.when else ""
        phrases.append(f"{_TEST_LABELS[kind]} result {result}{on}, never repeated")
        facts.append(
            Fact(
                kind="measurement",
                name=_TEST_LABELS[kind],
                value=result,
                when=ev.when,
                reference=ev.reference,
            )
        )
    evidence += [ev for _, ev in equivocal]
    phrases = list(dict.fromkeys(phrases))
    if not phrases:
        return None
    return SPEC.finding(
        sentence("; ".join(phrases)),
        evidence,
        facts=facts,
        not_found=not_found,
        reviews=reviews_in_record(record, evaluation),
    )


def ask(finding: Finding) -> str | None:
    names = {f.name for f in finding.facts}
    if "HER2 IHC" in names:
        return (
            "HER2 IHC 2+ (equivocal) without ISH: please perform or recommend HER2 ISH on the same block; "
            "what is the final HER2 status?"
        )
    if "HER2 ISH group" in names:
        return (
            "Atypical HER2 ISH group: please review ISH with concomitant IHC; what is the final HER2 status?"
        )
    return None


SPEC = TriggerSpec(
    id="incomplete-biomarker",
    label="Biomarker work-up incomplete",
    short_label="incomplete biomarker work-up",
    group="diagnosis",
    urgency="routine",
    action="local-action",
    review="pathology",
    rationale=RATIONALE,
    sources=("ASCO/CAP HER2 guideline 2018, affirmed 2023 (Wolff, Arch Pathol Lab Med 2018;142:1364)",),
    rule_source="ASCO/CAP biomarker testing",
    question=(
        "Please complete or repeat the equivocal test on the same block ({topic}): what is the final result?"
    ),
    rule_data=(
        "fhirmaps/codes/observations.json (LOINC sets); smartapp/triggers/incomplete_biomarker.py windows"
    ),
    evaluate=evaluate,
    ask=ask,
    undecided=undecided,
)

"""Record + findings → a draft ReferralPacket: reasons, consultant questions, review type, timing,
diagnosis summary, treatment, insurance and the records checklist."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from fhirmaps.bundles import flatten
from fhirmaps.elements import codes_of, concept_text, system_name
from fhirmaps.read import read_records
from fhirmaps.record import MeasurementKind, PatientRecord
from smartapp.engine import evaluate_record
from smartapp.findings import Evidence as FindingEvidence
from smartapp.findings import Finding, PatientResult, TimeCritical
from smartapp.packet import checklist_order, intake
from smartapp.packet.checklist import build_checklist
from smartapp.packet.model import (
    Biomarker,
    DiagnosisLine,
    Evidence,
    Question,
    Reason,
    ReferralPacket,
    ReviewType,
)
from smartapp.packet.sources import collect_sources
from smartapp.packet.treatment import proposed_treatment, treatment_so_far
from smartapp.triggers import spec_for

Json = dict[str, Any]
BIOMARKER_KINDS: tuple[MeasurementKind, ...] = (
    "er",
    "pr",
    "her2-ihc",
    "her2-ish",
    "pdl1",
    "msi",
    "molecular",
)
GRADE_KINDS: tuple[MeasurementKind, ...] = ("grade", "gleason-group", "gleason-score")
TIME_CRITICAL_ADVICE = (
    "Time-critical: do not delay treatment. Please review within days, in parallel with treatment "
    "(for example an outside pathology consultation on the same blocks while treatment starts)."
)
EXPEDITE_ADVICE = (
    "Expedited review requested: a treatment decision is imminent or the disease is progressing. "
    "Please review within days if possible; necessary treatment should not wait for the opinion."
)
ROUTINE_ADVICE = (
    "Routine review: the usual 2-4 weeks to obtain a second opinion is acceptable for most solid "
    "tumors. Please tell us if you consider it more urgent."
)


def draft_packet(
    resources: Sequence[Json],
    record: PatientRecord,
    evaluation: PatientResult,
    *,
    created: str,
    source: str = "",
    unavailable: Mapping[str, str] | None = None,
    user: str = "",
    attachments: Mapping[str, tuple[bytes, str]] | None = None,
) -> ReferralPacket:
    """`evaluation` is the engine's result for this patient; `created` an ISO date-time;
    `unavailable` says, per resource type, why that part of the record could not be read;
    `user` is the launch's fhirUser ("Practitioner/<id>"), the referring clinician."""
    gaps = unavailable or {}
    flat = flatten(resources)
    own = [r for r in flat if _belongs(r, record.patient)]
    findings = list(evaluation.findings)
    time_critical = evaluation.time_critical
    urgent = bool(time_critical) or any(f.urgency == "expedite" for f in findings)
    questions = questions_for(findings)
    reasons = [reason_from(f) for f in findings]
    if time_critical is not None:
        questions.insert(
            0,
            Question(
                id="q:time-critical:0", trigger="time-critical", text=time_critical_question(time_critical)
            ),
        )
        reasons.insert(
            0,
            Reason(
                id="finding:time-critical",
                trigger="time-critical",
                urgency="expedite",
                summary=time_critical.reason,
                rationale=time_critical.advice,
                evidence=[evidence_from(e) for e in time_critical.evidence],
            ),
        )
    pid = record.patient.split("/", 1)[-1]
    patient = next((r for r in flat if r.get("resourceType") == "Patient" and r.get("id") == pid), {})
    sender, sender_refs = intake.sender(flat, user)
    medications_gap = intake.unreadable(gaps, "MedicationRequest", "MedicationStatement")
    allergies_gap = intake.unreadable(gaps, "AllergyIntolerance")
    packet = ReferralPacket(
        created=created,
        source=source,
        patient=intake.patient_info(patient, record.patient),
        review_type=review_type(findings, urgent=time_critical),
        urgency="expedite" if urgent else "routine",
        time_critical=time_critical.reason if time_critical else "",
        timing_advice=TIME_CRITICAL_ADVICE
        if time_critical
        else EXPEDITE_ADVICE
        if urgent
        else ROUTINE_ADVICE,
        reasons=reasons,
        questions=questions,
        diagnoses=diagnosis_lines(flat, record),
        biomarkers=biomarkers(record),
        treatment_so_far=treatment_so_far(record),
        treatment_proposed=proposed_treatment(record),
        insurance=intake.insurance(flat, own, intake.unreadable(gaps, "Coverage")),
        sender=sender,
        medications=None if medications_gap else intake.medications(own),
        allergies=None if allergies_gap else intake.allergies(own),
        data_issues=[i.reason for i in evaluation.data_issues],
    )
    roots = [
        record.patient,
        *sender_refs,
        packet.insurance.reference or "",
        *(d.reference or "" for d in packet.diagnoses),
        *(b.reference or "" for b in packet.biomarkers),
        *(e.reference for r in packet.reasons for e in r.evidence),
        *(i.reference or "" for i in [*(packet.medications or []), *(packet.allergies or [])]),
        *(t.reference or "" for t in packet.treatment_so_far),
        *(t.reference or "" for t in packet.treatment_proposed),
        *(
            f"{r.get('resourceType')}/{r.get('id')}"
            for r in own
            if r.get("resourceType") in ("DiagnosticReport", "DocumentReference", "Specimen", "ImagingStudy")
        ),
    ]
    _, packet.attachments = collect_sources(flat, roots, attachments or {})
    packet.checklist = build_checklist(own, record, flat, packet.attachments)
    packet.checklist = checklist_order.ordered(packet)  # what the reasons need first
    attached = [i.reference or "" for i in packet.checklist if i.status == "attached"]
    packet.sources, _ = collect_sources(flat, [*roots, *attached], attachments or {})
    if packet.patient.identifier and not packet.patient.identifier_system:
        packet.data_issues.append(
            "The medical record number has no identifier system in the record; "
            "confirm which system it belongs to with the sending EHR."
        )
    packet.cover_letter = cover_letter(packet)
    return packet


def time_critical_question(urgent: TimeCritical) -> str:
    """An expedited review in parallel with emergency treatment: of the material for a new leukemia or
    lymphoma, of the diagnosis and plan for a compression emergency."""
    material = any("leukemia" in c or "lymphoma" in c for c in urgent.conditions)
    if material:
        return (
            f"{urgent.reason} Treatment is starting; please review the diagnostic material in parallel and "
            "tell us at once if you do not confirm the diagnosis."
        )
    return (
        f"{urgent.reason} Emergency treatment is under way; please review the diagnosis and the "
        "treatment plan in parallel, without delaying it."
    )


def review_type(findings: Sequence[Finding], *, urgent: TimeCritical | None = None) -> ReviewType:
    """Pathology, clinical or both, from the findings' specs; a new leukemia or lymphoma also asks
    for a review of the diagnostic material, a compression emergency for a clinical one."""
    kinds = {spec.review for f in findings if (spec := spec_for(f.trigger)) is not None}
    if urgent is not None:
        kinds.add(
            "pathology" if any("leukemia" in c or "lymphoma" in c for c in urgent.conditions) else "clinical"
        )
    if "both" in kinds or {"pathology", "clinical"} <= kinds:
        return "both"
    if "pathology" in kinds:
        return "pathology"
    return "clinical"


def reason_from(finding: Finding) -> Reason:
    return Reason(
        id=f"finding:{finding.trigger}",
        trigger=finding.trigger,
        urgency=finding.urgency,
        summary=finding.summary,
        rationale=finding.rationale,
        evidence=[evidence_from(e) for e in finding.evidence],
    )


def evidence_from(evidence: FindingEvidence) -> Evidence:
    return Evidence(
        reference=evidence.reference, path=evidence.path, text=evidence.text, where=evidence.where
    )


def questions_for(findings: Sequence[Finding]) -> list[Question]:
    questions: list[Question] = []
    for finding in findings:
        spec = spec_for(finding.trigger)
        text = spec.question_for(finding) if spec else f"Please review: {finding.summary}"
        questions.append(
            Question(id=f"q:{finding.trigger}:{len(questions)}", trigger=finding.trigger, text=text)
        )
    return questions


UNREADABLE_DIAGNOSIS = "Diagnosis not readable in the record - request from the referring office"


def diagnosis_lines(resources: Sequence[Json], record: PatientRecord) -> list[DiagnosisLine]:
    by_ref = {f"{r.get('resourceType')}/{r.get('id')}": r for r in resources}
    stage = _latest(record, ("stage-group",))
    grade = _latest(record, GRADE_KINDS)
    lines: list[DiagnosisLine] = []
    seen: set[str] = set()
    for diagnosis in record.diagnoses:
        ref = diagnosis.source.reference
        if diagnosis.origin != "condition" or ref in seen:
            continue
        seen.add(ref)
        condition = by_ref.get(ref, {})
        codes = [f"{system_name(c.system)} {c.code}" for c in codes_of(condition.get("code"))]
        if diagnosis.morphology:
            codes.append(f"ICD-O-3 {diagnosis.morphology}")
        stages = [t for s in intake.objs(condition.get("stage")) if (t := concept_text(s.get("summary")))]
        stated = concept_text(condition.get("code")) or diagnosis.source.text.split(" [")[0].strip()
        # A Condition whose code cannot be read keeps its place in the list, said as such.
        text = stated if stated and not stated.startswith("[") else UNREADABLE_DIAGNOSIS
        primary = not diagnosis.secondary
        lines.append(
            DiagnosisLine(
                text=text,
                codes=codes,
                reference=ref,
                stage=(stages[0] if stages else stage if primary else ""),
                grade=grade if primary else "",
            )
        )
    return lines + unreadable_conditions(resources, seen)


def unreadable_conditions(resources: Sequence[Json], seen: set[str]) -> list[DiagnosisLine]:
    """Current Conditions whose code cannot be read: fhirmaps cannot tell whether they are cancer,
    so the letter lists them as unreadable rather than leaving them out."""
    lines = []
    for condition in resources:
        ref = f"Condition/{condition.get('id')}"
        status = concept_text(condition.get("clinicalStatus")).lower()
        if (
            condition.get("resourceType") != "Condition"
            or ref in seen
            or concept_text(condition.get("code"))
            or status in ("resolved", "inactive", "remission")
            or concept_text(condition.get("verificationStatus")).lower() in ("entered-in-error", "refuted")
        ):
            continue
        lines.append(DiagnosisLine(text=UNREADABLE_DIAGNOSIS, codes=[], reference=ref))
    return lines


def biomarkers(record: PatientRecord) -> list[Biomarker]:
    grouped: dict[str, list[Any]] = {}
    for m in record.measurements:
        if m.kind in BIOMARKER_KINDS or (m.kind == "other" and "ki-67" in m.name.lower()):
            grouped.setdefault(m.source.reference, []).append(m)
    found = []
    for ref, items in grouped.items():
        gene = next((m.value_text for m in items if m.name.lower().startswith("gene studied")), "")
        rest = [m for m in items if not m.name.lower().startswith("gene studied")] or items
        name = gene or rest[0].name
        value = "; ".join(m.value_text for m in rest if m.value_text)
        when = items[0].when.isoformat() if items[0].when else ""
        found.append(Biomarker(name=name, value=value, date=when, reference=ref))
    return found


def cover_letter(packet: ReferralPacket) -> str:
    reasons = (
        "; ".join(r.summary.rstrip(".") for r in packet.reasons)
        or "review of the diagnosis and treatment plan"
    )
    return (
        f"We are referring our patient for a {packet.review_type_label.lower()}. Reasons: {reasons}. "
        f"{packet.timing_advice} The specific questions, a summary of the diagnosis and treatment, and the "
        "list of records sent or to follow are below."
    )


def _belongs(resource: Json, patient_ref: str) -> bool:
    if resource.get("resourceType") == "Patient":
        return f"Patient/{resource.get('id')}" == patient_ref
    for key in ("subject", "patient", "beneficiary"):
        value = resource.get(key)
        if isinstance(value, dict) and str(value.get("reference", "")).endswith(patient_ref):
            return True
    return resource.get("resourceType") in ("Specimen",) and not resource.get("subject")


def _latest(record: PatientRecord, kinds: tuple[MeasurementKind, ...]) -> str:
    values = sorted(
        (m.when.isoformat() if m.when else "", m.value_text) for m in record.measurements if m.kind in kinds
    )
    return values[-1][1] if values else ""


def draft_for_patient(
    resources: Sequence[Json],
    patient_ref: str,
    *,
    as_of: date,
    created: str,
    source: str = "",
    attachments: Mapping[str, tuple[bytes, str]] | None = None,
    unavailable: Mapping[str, str] | None = None,
    user: str = "",
    evaluation: PatientResult | None = None,
) -> ReferralPacket:
    """Read the record and draft the packet from the engine's findings: `evaluation` when the
    caller already has it (the app's findings screen), else the engine is run once here.
    LookupError when the patient is not in `resources`."""
    records = read_records(resources, as_of=as_of, attachments=attachments)
    record = next((r for r in records if r.patient == patient_ref), None)
    if record is None:
        raise LookupError(patient_ref)
    if evaluation is None:
        evaluation = evaluate_record(record, as_of=as_of)
    return draft_packet(
        resources,
        record,
        evaluation,
        created=created,
        source=source,
        unavailable=unavailable,
        user=user,
        attachments=attachments,
    )

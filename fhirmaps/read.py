"""Build PatientRecords from FHIR R4 JSON: validate tolerantly, map facts, run narrative NLP once
per batch."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from fhirmaps import codes, context, diagnoses
from fhirmaps.activities import read_activity, requester_type
from fhirmaps.bundles import flatten, group_by_patient
from fhirmaps.elements import (
    Json,
    as_list,
    code_set,
    codes_of,
    concept_text,
    concepts_text,
    first_date,
    parse_date,
    ref_of,
    status_code,
)
from fhirmaps.narrative import Attachments, binary_key
from fhirmaps.narrative_budget import within_budget
from fhirmaps.observations import read_observation
from fhirmaps.record import ACTIVITY_TYPES, ClinicalText, Diagnosis, Mention, PatientRecord, Source
from fhirmaps.reports import Chunk, NarrativeSources, attachment_urls, binary_map, read_report
from fhirmaps.validation_scope import read_problem

_NARRATIVE_TYPES = ("DiagnosticReport", "DocumentReference", "Communication", "CarePlan")
_CLINICAL_TYPES = frozenset(
    {
        "Condition",
        "Observation",
        "DiagnosticReport",
        "DocumentReference",
        "MedicationRequest",
        "MedicationAdministration",
        "MedicationStatement",
        "Procedure",
        "ServiceRequest",
        "CarePlan",
        "Communication",
        "QuestionnaireResponse",
        "Encounter",
        "Appointment",
    }
)
# The patient's resources `_map` turns into facts, reports or care activities; any other type is ignored.
# tests/fhirmaps/test_read.py checks this against `_map` itself; the screening read list
# (smartapp/screening/read_types.toml) and the read plan (smartapp/read_plan.py) against this.
PATIENT_TYPES = frozenset(
    {
        "Patient",
        "Coverage",
        "FamilyMemberHistory",
        "ResearchSubject",
        "QuestionnaireResponse",
        *_CLINICAL_TYPES,
        *ACTIVITY_TYPES,
        *_NARRATIVE_TYPES,
    }
)
# Looked up by reference from the patient's resources: a medication's name, a report's text.
REFERENCED_TYPES = frozenset({"Medication", "Binary"})
MAPPED_TYPES = PATIENT_TYPES | REFERENCED_TYPES
_INACTIVE_ORDER = {"revoked", "entered-in-error", "cancelled"}


def attachments_to_fetch(resources: Sequence[Json]) -> list[tuple[str, str]]:
    """Attachment URLs the caller must download (not inline, not a Binary in the input),
    deduplicated, sorted."""
    flat = flatten(resources)
    binaries = {f"Binary/{r.get('id')}" for r in flat if r.get("resourceType") == "Binary"}
    found: dict[str, str] = {}
    for resource in flat:
        for url, content_type in attachment_urls(resource):
            if binary_key(url) not in binaries:
                found.setdefault(url, content_type)
    return sorted(found.items())


def read_records(
    resources: Sequence[Json], *, as_of: date, attachments: Attachments | None = None
) -> list[PatientRecord]:
    """One PatientRecord per patient found in the input (Patient resources and subject/patient references)."""
    flat = flatten(resources)
    groups, shared = group_by_patient(flat)
    elsewhere = _not_in_input(flat, groups)
    orphans = [r for r in shared if r.get("resourceType") in _CLINICAL_TYPES]
    if len(groups) == 1 and orphans:
        # A single-patient input whose clinical resource lacks subject/patient: read it, and say so.
        [(patient, own)] = groups.items()
        own.extend(orphans)
    records = [
        read_record(patient, own, shared, as_of=as_of, attachments=attachments or {})
        for patient, own in groups.items()
    ]
    for record in records:
        if len(groups) == 1:
            record.data_issues.extend(
                {
                    "resource": ref_of(r),
                    "reason": "no patient reference; read as part of the only patient in the input",
                }
                for r in orphans
            )
        record.data_issues.extend(elsewhere.get(record.patient, []))
        record.data_issues.sort(key=lambda i: (i["resource"], i["reason"]))
    return sorted(records, key=lambda r: r.patient)


def _not_in_input(flat: Sequence[Json], groups: dict[str, list[Json]]) -> dict[str, list[dict[str, str]]]:
    """Resources that point to a Patient missing from the input: data issues, by the patient they go on.

    With one Patient in the input (a launch, a hook, one bundle), another patient's resources are not
    this patient's data: they are taken out and named on the patient's record. With several, the missing
    patient is still evaluated from its resources and its record says the Patient resource is missing."""
    present = {f"Patient/{r.get('id')}" for r in flat if r.get("resourceType") == "Patient"}
    missing = [p for p in groups if p not in present]
    if not present or not missing:
        return {}
    issues: dict[str, list[dict[str, str]]] = {}
    if len(present) == 1:
        [only] = present
        for patient in missing:
            for resource in groups.pop(patient):
                issues.setdefault(only, []).append(
                    {
                        "resource": ref_of(resource),
                        "reason": (
                            f"refers to {patient}, which is not in the input; not read as this patient's data"
                        ),
                    }
                )
    else:
        for patient in missing:
            issues[patient] = [
                {
                    "resource": patient,
                    "reason": (
                        f"the Patient resource is not in the input; {len(groups[patient])} resources "
                        "that refer to it were read"
                    ),
                }
            ]
    return issues


# Identifiers of what SecondLook itself writes back to the EHR (referral ServiceRequest, packet
# DocumentReference). Read back on the next launch, our own referral would otherwise look like a
# patient's request for a second opinion or a planned procedure.
OWN_IDENTIFIER_PREFIX = "urn:secondlook:"


def written_by_secondlook(resource: Json) -> bool:
    return any(
        isinstance(ident, dict) and str(ident.get("system", "")).startswith(OWN_IDENTIFIER_PREFIX)
        for ident in as_list(resource.get("identifier"))
    )


def read_record(
    patient: str, own: Sequence[Json], shared: Sequence[Json], *, as_of: date, attachments: Attachments
) -> PatientRecord:
    record = PatientRecord(patient=patient)
    binaries = binary_map(shared)
    medications = {str(r.get("id")): r for r in shared if r.get("resourceType") == "Medication"}
    narrative = NarrativeSources(binaries, attachments, set(), record.data_issues)
    chunks: list[Chunk] = []
    ordered = sorted(
        own,
        key=lambda r: (
            r.get("resourceType") != "DiagnosticReport",
            r.get("resourceType", ""),
            str(r.get("id", "")),
        ),
    )
    for resource in ordered:
        if written_by_secondlook(resource):
            continue
        problem = read_problem(resource, PATIENT_TYPES)
        if problem:
            record.data_issues.append({"resource": ref_of(resource), "reason": problem})
        try:
            chunks += _map(resource, record, narrative, medications, as_of)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            record.data_issues.append(
                {"resource": ref_of(resource), "reason": f"could not be read ({type(exc).__name__}); ignored"}
            )
    _attach_mentions(record, within_budget(chunks, record.data_issues))
    record.data_issues.sort(key=lambda i: (i["resource"], i["reason"]))
    return record


def _map(
    resource: Json,
    record: PatientRecord,
    narrative: NarrativeSources,
    medications: dict[str, Json],
    as_of: date,
) -> list[Chunk]:
    rtype = resource.get("resourceType")
    chunks: list[Chunk] = []
    if rtype == "Patient":
        record.birth_date = parse_date(resource.get("birthDate"))
        record.gender = str(resource.get("gender", ""))
        record.deceased = resource.get("deceasedBoolean") is True
        record.deceased_on = parse_date(resource.get("deceasedDateTime"))
    elif rtype == "Condition":
        _map_condition(resource, record)
    elif rtype == "Observation":
        if code_set(resource.get("code")) & codes.strings("observations", "histology_codes"):
            found = diagnoses.from_histology_observation(resource)
            if found:
                record.diagnoses.append(found)
        if str(resource.get("status")) != "entered-in-error":
            record.measurements.extend(read_observation(resource))
            if isinstance(resource.get("valueString"), str) and len(resource["valueString"]) > 40:
                report, found_chunks = read_report(resource, narrative)
                observed = code_set(resource.get("code"))
                pathology = codes.strings("observations", "histology_codes") | codes.strings(
                    "reports", "pathology_codes"
                )
                report.kind = "pathology" if observed & pathology else "note"
                record.texts.append(report)
                chunks += found_chunks
    elif rtype == "FamilyMemberHistory":
        conditions = [c for c in as_list(resource.get("condition")) if isinstance(c, dict)]
        record.family_history.append(
            Source(
                ref_of(resource),
                "FamilyMemberHistory.condition",
                concept_text(conditions[0].get("code")) if conditions else "",
            )
        )
    elif rtype == "ResearchSubject":
        if str(resource.get("status")) not in (
            "withdrawn",
            "not-registered",
            "ineligible",
            "off-study",
            "screening",
            "candidate",
        ):
            record.trials.append(
                Source(
                    ref_of(resource), "ResearchSubject.status", f"research subject ({resource.get('status')})"
                )
            )
    elif rtype == "Coverage":
        payer = "; ".join(
            str((p or {}).get("display", "")) for p in as_list(resource.get("payor")) if isinstance(p, dict)
        )
        plans = "; ".join(
            str(c.get("name") or c.get("value") or "")
            for c in as_list(resource.get("class"))
            if isinstance(c, dict)
        )
        parts = [p for p in (payer, concept_text(resource.get("type")), plans) if p]
        record.coverage.append(Source(ref_of(resource), "Coverage.payor", " | ".join(parts)))
    elif rtype == "QuestionnaireResponse":
        report = ClinicalText(
            ref_of(resource),
            "note",
            str(resource.get("status", "")),
            "Questionnaire response",
            first_date(resource, "authored"),
            author_is_patient=True,
        )
        lines = _questionnaire_lines(as_list(resource.get("item")))
        report.text = "\n".join(lines)
        record.texts.append(report)
        from fhirmaps.narrative import Section

        chunks += [Chunk(report, "QuestionnaireResponse.item", Section("note", "", line)) for line in lines]
    if rtype in ACTIVITY_TYPES:
        record.activities.extend(read_activity(resource, medications))
        _map_request_codes(resource, record)
    if rtype in _NARRATIVE_TYPES and str(resource.get("status")) != "entered-in-error":
        report, found_chunks = read_report(resource, narrative)
        record.texts.append(report)
        chunks += found_chunks
    return chunks


def _map_condition(resource: Json, record: PatientRecord) -> None:
    found, current = diagnoses.read_condition(resource)
    if found is None:
        all_codes = tuple(codes_of(resource.get("code")))
        if status_code(resource.get("verificationStatus")) in ("refuted", "entered-in-error"):
            return
        record.problems.append(
            Diagnosis(
                source=Source(
                    ref_of(resource),
                    "Condition.code.coding[0]" if all_codes else "Condition.code.text",
                    f"{concept_text(resource.get('code'))} [{all_codes[0].code}]"
                    if all_codes
                    else concept_text(resource.get("code")),
                ),
                origin="condition",
                entity=None,
                site=None,
                codes=all_codes,
                morphology=None,
                topography=None,
                clinical_status=status_code(resource.get("clinicalStatus")),
                verification_status=status_code(resource.get("verificationStatus")),
                secondary=False,
                when=first_date(resource, "onsetDateTime", "onsetPeriod", "recordedDate"),
            )
        )
        record.problems[-1] = replace(
            record.problems[-1], source=replace(record.problems[-1].source, when=record.problems[-1].when)
        )
    elif current:
        record.diagnoses.append(found)
    else:
        record.excluded_diagnoses.append(found)


_PATIENT_ASKED = re.compile(
    r"\bpatient(?:'s)?\b[^.]{0,30}\b(request|ask|want|wish|would like)|at (?:the )?patient'?s? request|"
    r"\b(requested|asked) by (?:the )?patient",
    re.I,
)
_CLINICIANS = ("Practitioner", "PractitionerRole", "Organization", "CareTeam", "Device")


def _map_request_codes(resource: Json, record: PatientRecord) -> None:
    cfg = codes.load("requests")
    if str(resource.get("status", "")) in _INACTIVE_ORDER:
        return
    # A second-opinion referral placed by a clinician is a review under way, not the patient's request,
    # unless its text says the patient asked for it.
    words = " ".join(
        [
            concept_text(resource.get("code")),
            concepts_text(resource.get("reasonCode")),
            " ".join(str(n.get("text", "")) for n in as_list(resource.get("note")) if isinstance(n, dict)),
        ]
    )
    if requester_type(resource) in _CLINICIANS and not _PATIENT_ASKED.search(words):
        return
    rtype = resource.get("resourceType")
    for field in ("code", "reasonCode", "serviceType", "type", "category"):
        for i, concept in enumerate(as_list(resource.get(field))):
            for c in codes_of(concept):
                hit = (c.short_system == "snomed" and c.code in cfg["second_opinion_snomed"]) or (
                    "0336" in c.system and c.code in cfg["second_opinion_v2_0336"]
                )
                if hit:
                    path = f"{rtype}.{field}" + (f"[{i}]" if isinstance(resource.get(field), list) else "")
                    record.requests.append(
                        Source(
                            ref_of(resource), path, f"{c.code} {c.display or concept_text(concept)}".strip()
                        )
                    )


def _questionnaire_lines(items: list[object]) -> list[str]:
    lines: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        answers = []
        for answer in as_list(item.get("answer")):
            if not isinstance(answer, dict):
                continue
            for key, value in answer.items():
                if key.startswith("value"):
                    answers.append(concept_text(value) if isinstance(value, dict) else str(value).lower())
            lines += _questionnaire_lines(as_list(answer.get("item")))
        if answers:
            lines.append(f"{item.get('text', '')}: {', '.join(answers)}")
        lines += _questionnaire_lines(as_list(item.get("item")))
    return lines


def _attach_mentions(record: PatientRecord, chunks: list[Chunk]) -> None:
    results = context.analyze([c.section.text for c in chunks])
    diagnostic = codes.strings("reports", "diagnostic_sections")
    by_report: dict[str, list[Mention]] = {}
    for chunk, raw_mentions in zip(chunks, results, strict=True):
        report = chunk.report
        for raw in raw_mentions:
            source = Source(
                report.reference,
                chunk.path,
                raw.sentence,
                section=chunk.section.heading or chunk.section.kind,
                title=report.title,
                when=report.when,
            )
            mention = Mention(raw, chunk.section.kind, source)
            report.mentions.append(mention)
            by_report.setdefault(report.reference, []).append(mention)
    for report in record.texts:
        if report.kind != "pathology" or report.status == "entered-in-error":
            continue
        record.diagnoses.extend(diagnoses.from_mentions(report, report.mentions, diagnostic))
        record.diagnoses.extend(diagnoses.from_codes(report, report.conclusion_codes))


def age_on(record: PatientRecord, when: date) -> int | None:
    if record.birth_date is None:
        return None
    born = record.birth_date
    return when.year - born.year - ((when.month, when.day) < (born.month, born.day))


def words(text: str) -> str:
    """Lower-case text with single spaces, for keyword search."""
    return re.sub(r"\s+", " ", text.lower())

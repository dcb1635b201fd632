"""What an intake office asks for first, read from the record: patient identity and contact, the
referring clinician, current medications and allergies, insurance.

Every reader accepts any JSON shape: an element of the wrong type (a string where a CodeableConcept
or a list belongs) reads as "not in the record", so one malformed element never costs the packet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fhirmaps.elements import as_list, concept_text, parse_date, reference
from smartapp.packet.model import Insurance, PatientInfo, RecordItem, Sender
from smartapp.wording import us_date

Json = dict[str, Any]
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
INTERPRETER_EXTENSION = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-interpreter-needed"
MEDICATION_ACTIVE = frozenset({"active", "on-hold"})
STATEMENT_ACTIVE = frozenset({"active", "intended"})
ALLERGY_INACTIVE = frozenset({"inactive", "resolved"})
ALLERGY_WRONG = frozenset({"refuted", "entered-in-error"})
PRIOR_AUTH = (
    "Check with the plan whether a referral or prior authorization is needed for an outside or "
    "out-of-network second opinion before the review; remote programs are often self-pay."
)
MEDICARE_NOTE = (
    "Original Medicare Part B covers a second opinion before medically necessary non-emergency "
    "surgery (20% coinsurance after the deductible); Medicare Advantage plans may require "
    "in-network doctors or a referral."
)


def obj(value: Any) -> Json:
    """The value if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def objs(value: Any) -> list[Json]:
    """The JSON objects of a list (or of a single value)."""
    return [v for v in as_list(value) if isinstance(v, dict)]


def text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def index(resources: Sequence[Json]) -> dict[str, Json]:
    return {f"{r.get('resourceType')}/{r.get('id')}": r for r in resources if isinstance(r.get("id"), str)}


def person_name(names: Any) -> str:
    """The official name (else the first), as its text or "Given Family, Suffix" ("Jordan Reyes, MD":
    a clinician's credentials and a patient's "Jr." belong to the name a letter is signed or
    matched with)."""
    candidates = objs(names)
    name = next((n for n in candidates if n.get("use") == "official"), candidates[0] if candidates else {})
    if text(name.get("text")):
        return text(name.get("text"))
    parts = [
        *(text(p) for p in as_list(name.get("prefix"))),
        *(text(g) for g in as_list(name.get("given"))),
        text(name.get("family")),
    ]
    full = " ".join(p for p in parts if p)
    suffixes = [text(s) for s in as_list(name.get("suffix")) if text(s)]
    return ", ".join([full, *suffixes]) if full else ""


def telecom(points: Any, system: str) -> str:
    found = [p for p in objs(points) if p.get("system") == system and text(p.get("value"))]
    found.sort(key=lambda p: {"work": 0, "mobile": 1, "home": 2}.get(str(p.get("use")), 3))
    return text(found[0].get("value")) if found else ""


def address(addresses: Any) -> str:
    items = objs(addresses)
    place = next((a for a in items if a.get("use") == "home"), items[0] if items else {})
    if text(place.get("text")):
        return text(place.get("text"))
    lines = [text(line) for line in as_list(place.get("line"))]
    region = " ".join(p for p in (text(place.get("state")), text(place.get("postalCode"))) if p)
    return ", ".join(p for p in [*lines, text(place.get("city")), region] if p)


def patient_info(patient: Json, patient_ref: str) -> PatientInfo:
    identifiers = objs(patient.get("identifier"))
    mrn = next(
        (i for i in identifiers if "MR" in {c.get("code") for c in objs(obj(i.get("type")).get("coding"))}),
        identifiers[0] if identifiers else {},
    )
    languages = objs(patient.get("communication"))
    preferred = next((c for c in languages if c.get("preferred") is True), languages[0] if languages else {})
    gender = text(patient.get("gender"))
    birth = parse_date(patient.get("birthDate"))
    return PatientInfo(
        reference=patient_ref,
        name=person_name(patient.get("name")),
        birth_date=birth.isoformat() if birth else "",
        gender=gender if gender in ("male", "female", "other", "unknown") else "",
        identifier=text(mrn.get("value")),
        identifier_system=text(mrn.get("system")),
        phone=telecom(patient.get("telecom"), "phone"),
        address=address(patient.get("address")),
        language=concept_text(preferred.get("language")),
        interpreter=interpreter_need(patient),
    )


def interpreter_need(resource: Json) -> str:
    """The US Core interpreter-needed extension: "needed", "not needed" or "" (not recorded)."""
    for extension in objs(resource.get("extension")):
        if extension.get("url") != INTERPRETER_EXTENSION:
            continue
        coding = obj(extension.get("valueCoding"))
        value = str(coding.get("code", extension.get("valueBoolean", ""))).lower()
        if value in ("y", "yes", "true"):
            return "needed"
        if value in ("n", "no", "false"):
            return "not needed"
    return ""


def sender(resources: Sequence[Json], user: str) -> tuple[Sender, list[str]]:
    """The referring clinician from the launch's fhirUser (Practitioner or PractitionerRole) and the
    organization of their role; the references used, for the FHIR document."""
    by_ref = index(resources)
    found = by_ref.get(user)
    if not found or found.get("resourceType") not in ("Practitioner", "PractitionerRole"):
        return Sender(), []
    if found.get("resourceType") == "PractitionerRole":
        role = found
        practitioner = by_ref.get(reference(role.get("practitioner")), {})
    else:
        practitioner = found
        role = next(
            (
                r
                for r in resources
                if r.get("resourceType") == "PractitionerRole" and reference(r.get("practitioner")) == user
            ),
            {},
        )
    org_ref = reference(role.get("organization"))
    organization = by_ref.get(org_ref, {})
    npi = next(
        (text(i.get("value")) for i in objs(practitioner.get("identifier")) if i.get("system") == NPI_SYSTEM),
        "",
    )
    points = [
        *objs(role.get("telecom")),
        *objs(practitioner.get("telecom")),
        *objs(organization.get("telecom")),
    ]
    used = [
        ref
        for ref in (
            user,
            f"PractitionerRole/{role.get('id')}" if role else "",
            org_ref if organization else "",
        )
        if ref
    ]
    return Sender(
        name=person_name(practitioner.get("name")),
        organization=text(organization.get("name")),
        npi=npi,
        phone=telecom(points, "phone"),
        fax=telecom(points, "fax"),
        reference=user,
        organization_reference=org_ref if organization else None,
    ), used


# An entry the record holds but whose drug or substance cannot be read (a malformed code) is listed
# as such: leaving it out would read as "no medication" or "no allergy".
UNREADABLE_MEDICATION = "Medication not readable in the record"
UNREADABLE_ALLERGY = "Allergy recorded, substance not readable"
ASK_OFFICE = "request the name from the referring office"
ASK_PATIENT = "confirm with the patient"


def medications(resources: Sequence[Json]) -> list[RecordItem]:
    """Active orders and statements: what the patient takes now (not every order ever written)."""
    by_ref = index(resources)
    items: dict[str, RecordItem] = {}
    for resource in resources:
        rtype = resource.get("resourceType")
        active = (
            rtype == "MedicationRequest"
            and resource.get("status") in MEDICATION_ACTIVE
            and resource.get("intent") not in ("proposal", "plan")
        ) or (rtype == "MedicationStatement" and resource.get("status") in STATEMENT_ACTIVE)
        if not active:
            continue
        name = concept_text(resource.get("medicationCodeableConcept"))
        target = obj(resource.get("medicationReference"))
        name = (
            name or concept_text(by_ref.get(reference(target), {}).get("code")) or text(target.get("display"))
        )
        ref = f"{rtype}/{resource.get('id')}"
        dose = next(
            (
                text(d.get("text"))
                for d in objs(resource.get("dosageInstruction") or resource.get("dosage"))
                if text(d.get("text"))
            ),
            "",
        )
        since = parse_date(resource.get("authoredOn") or resource.get("dateAsserted"))
        detail = "; ".join(p for p in (dose, f"since {us_date(since)}" if since else "") if p)
        if not name:  # an active order whose drug cannot be read is said, never left out
            name, detail = UNREADABLE_MEDICATION, "; ".join(p for p in (detail, ASK_OFFICE) if p)
        items.setdefault(
            ref if name == UNREADABLE_MEDICATION else name.lower(),
            RecordItem(text=name, detail=detail, reference=ref),
        )
    return list(items.values())


def allergies(resources: Sequence[Json]) -> list[RecordItem]:
    items = []
    for resource in (r for r in resources if r.get("resourceType") == "AllergyIntolerance"):
        clinical = concept_text(resource.get("clinicalStatus")).lower()
        verification = concept_text(resource.get("verificationStatus")).lower()
        if clinical in ALLERGY_INACTIVE or verification in ALLERGY_WRONG:
            continue
        name = concept_text(resource.get("code")) or UNREADABLE_ALLERGY
        reactions = [
            concept_text(m) for r in objs(resource.get("reaction")) for m in as_list(r.get("manifestation"))
        ]
        criticality = text(resource.get("criticality"))
        detail = "; ".join(
            p
            for p in (
                ", ".join(r for r in reactions if r),
                f"criticality {criticality}" if criticality else "",
                ASK_PATIENT if name == UNREADABLE_ALLERGY else "",
            )
            if p
        )
        items.append(
            RecordItem(text=name, detail=detail, reference=f"AllergyIntolerance/{resource.get('id')}")
        )
    return items


def insurance(resources: Sequence[Json], own: Sequence[Json], unavailable: str) -> Insurance:
    if unavailable:
        return Insurance(
            available=False, note=f"Not available: {unavailable}", prior_authorization=PRIOR_AUTH
        )
    coverages = [
        r for r in own if r.get("resourceType") == "Coverage" and r.get("status") in (None, "active")
    ]
    if not coverages:
        return Insurance(
            available=False,
            note="Not available: the record has no active insurance coverage.",
            prior_authorization=PRIOR_AUTH,
        )
    coverage = coverages[0]
    by_ref = index(resources)
    payers = [
        text(by_ref.get(reference(p), {}).get("name")) or text(p.get("display"))
        for p in objs(coverage.get("payor"))
    ]
    plan = concept_text(coverage.get("type"))
    classes = [
        " ".join(
            dict.fromkeys(
                p for p in (concept_text(c.get("type")), text(c.get("value")), text(c.get("name"))) if p
            )
        )
        for c in objs(coverage.get("class"))
    ]
    note = MEDICARE_NOTE if "medicare" in plan.lower() else ""
    return Insurance(
        available=True,
        payer=", ".join(p for p in payers if p),
        plan="; ".join(p for p in [plan, *classes] if p),
        member_id=text(coverage.get("subscriberId")),
        note=note,
        prior_authorization=PRIOR_AUTH,
        reference=f"Coverage/{coverage.get('id')}",
    )


def unreadable(gaps: Mapping[str, str], *types: str) -> str:
    return next((gaps[t] for t in types if gaps.get(t)), "")

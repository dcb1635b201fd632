"""Treatments, plans, orders and appointments as Actions."""

from __future__ import annotations

from datetime import date
from functools import cache, lru_cache

from fhirmaps import codes
from fhirmaps.elements import (
    Code,
    Json,
    as_list,
    codes_of,
    concept_text,
    concepts_text,
    first_date,
    parse_date,
    ref_of,
)
from fhirmaps.record import ActivityType, CareActivity, Source, activity_type

_PROCEDURE_INTENT = "mcode-procedure-intent"


@lru_cache(maxsize=4096)
def _antineoplastic(text: str) -> bool:
    """Anticancer treatment by name; supportive care given for chemotherapy (antiemetics, growth
    factors) is not."""
    low = text.lower()
    cfg = codes.load("treatments")
    if any(term in low for term in cfg["supportive_terms"]):
        return False
    return any(term in low for term in cfg["antineoplastic_terms"])


@cache
def _rxnorm_antineoplastics() -> dict[str, str]:
    """RxNorm code -> ingredient name of antineoplastic agents (codes/rxnorm.json)."""
    return {d["code"]: d["name"] for d in codes.load("rxnorm")["drugs"]}


def rxnorm_antineoplastic(code_list: list[Code]) -> str:
    """The ingredient name when one of the codes is an RxNorm antineoplastic, else ""."""
    known = _rxnorm_antineoplastics()
    return next((known[c.code] for c in code_list if c.short_system == "rxnorm" and c.code in known), "")


def _medication_name(resource: Json, medications: dict[str, Json]) -> tuple[str, list[Code]]:
    concept = resource.get("medicationCodeableConcept")
    ref = resource.get("medicationReference") or {}
    target = medications.get(str(ref.get("reference", "")).split("/")[-1]) if isinstance(ref, dict) else None
    if isinstance(concept, dict):
        name, code_list = concept_text(concept), codes_of(concept)
    elif target:
        name, code_list = concept_text(target.get("code")), codes_of(target.get("code"))
    else:
        name, code_list = (str(ref.get("display", "")) if isinstance(ref, dict) else ""), []
    # Synthea and some EHRs send the RxNorm code alone (the "name" is then the code): name the drug
    # from the code.
    known = rxnorm_antineoplastic(code_list)
    if known and (not name or name in {c.code for c in code_list}):
        name = known
    return name, code_list


def read_activity(resource: Json, medications: dict[str, Json]) -> list[CareActivity]:
    rtype = activity_type(str(resource.get("resourceType")))
    if rtype is None:
        return []
    ref = ref_of(resource)
    if rtype in ("MedicationRequest", "MedicationAdministration", "MedicationStatement"):
        name, code_list = _medication_name(resource, medications)
        path = (
            f"{rtype}.medicationCodeableConcept"
            if "medicationCodeableConcept" in resource
            else f"{rtype}.medicationReference"
        )
        dosage = " ".join(
            str(d.get("text", "")) for d in as_list(resource.get("dosageInstruction")) if isinstance(d, dict)
        )
        start = first_date(resource, "authoredOn", "effectiveDateTime", "effectivePeriod", "dateAsserted")
        period = (
            (resource.get("dispenseRequest") or {}).get("validityPeriod")
            if isinstance(resource.get("dispenseRequest"), dict)
            else None
        )
        if rtype == "MedicationRequest" and isinstance(period, dict) and period.get("start"):
            start = parse_date(period.get("start")) or start
        end = (
            parse_date((resource.get("effectivePeriod") or {}).get("end"))
            if isinstance(resource.get("effectivePeriod"), dict)
            else None
        )
        return [_action(resource, rtype, path, name, code_list, start, end, None, extra=dosage)]
    if rtype == "Procedure":
        name = concept_text(resource.get("code"))
        start = first_date(resource, "performedDateTime", "performedPeriod")
        return [
            _action(
                resource, rtype, "Procedure.code", name, codes_of(resource.get("code")), start, None, None
            )
        ]
    if rtype == "ServiceRequest":
        name = concept_text(resource.get("code"))
        when = first_date(resource, "occurrenceDateTime", "occurrencePeriod")
        return [
            _action(
                resource,
                rtype,
                "ServiceRequest.code",
                name,
                codes_of(resource.get("code")),
                first_date(resource, "authoredOn"),
                None,
                when,
            )
        ]
    if rtype == "Appointment":
        name = (
            concepts_text(resource.get("serviceType"))
            or concepts_text(resource.get("appointmentType"))
            or str(resource.get("description", ""))
        )
        code_list = [c for cc in as_list(resource.get("serviceType")) for c in codes_of(cc)]
        return [
            _action(
                resource,
                rtype,
                "Appointment.serviceType",
                name,
                code_list,
                None,
                None,
                parse_date(resource.get("start")),
                extra=str(resource.get("description", "")) + " " + str(resource.get("comment", "")),
            )
        ]
    if rtype == "Encounter":
        name = concepts_text(resource.get("type"))
        code_list = [c for cc in as_list(resource.get("type")) for c in codes_of(cc)]
        return [
            _action(
                resource, rtype, "Encounter.type", name, code_list, first_date(resource, "period"), None, None
            )
        ]
    if rtype == "CarePlan":
        out = [
            _action(
                resource,
                rtype,
                "CarePlan.category",
                concepts_text(resource.get("category")) or str(resource.get("title", "")),
                [c for cc in as_list(resource.get("category")) for c in codes_of(cc)],
                first_date(resource, "period", "created"),
                parse_date((resource.get("period") or {}).get("end"))
                if isinstance(resource.get("period"), dict)
                else None,
                None,
                extra=str(resource.get("description", "")),
            )
        ]
        for i, activity in enumerate(as_list(resource.get("activity"))):
            detail = activity.get("detail") if isinstance(activity, dict) else None
            if not isinstance(detail, dict):
                continue
            name = concept_text(detail.get("code")) or str(detail.get("description", ""))
            when = first_date(detail, "scheduledPeriod", "scheduledString") or parse_date(
                detail.get("scheduledString")
            )
            status = detail.get("status")
            if resource.get("status") in ("revoked", "completed", "entered-in-error"):
                status = resource.get("status")  # a closed plan closes its open activities
            act = _action(
                detail
                | {
                    "resourceType": "CarePlan",
                    "id": resource.get("id"),
                    "intent": resource.get("intent"),
                    "status": status,
                },
                rtype,
                f"CarePlan.activity[{i}].detail",
                name,
                codes_of(detail.get("code")),
                None,
                None,
                when,
                extra=str(detail.get("description", "")),
                ref=ref,
            )
            out.append(act)
        return out
    return []


def _action(
    resource: Json,
    rtype: ActivityType,
    path: str,
    name: str,
    code_list: list[Code],
    start: date | None,
    end: date | None,
    scheduled: date | None,
    extra: str = "",
    ref: str = "",
) -> CareActivity:
    reasons = tuple(c for cc in as_list(resource.get("reasonCode")) for c in codes_of(cc))
    reason_text = concepts_text(resource.get("reasonCode"))
    notes = " ".join(str(n.get("text", "")) for n in as_list(resource.get("note")) if isinstance(n, dict))
    intent_ext = ""
    for ext in as_list(resource.get("extension")):
        if isinstance(ext, dict) and str(ext.get("url", "")).endswith(_PROCEDURE_INTENT):
            found = codes_of(ext.get("valueCodeableConcept"))
            intent_ext = found[0].code if found else ""
    status_reason = resource.get("statusReason")
    reason_codes = tuple(c for cc in as_list(status_reason) for c in codes_of(cc))
    reason_words = concepts_text(status_reason) if not isinstance(status_reason, str) else status_reason
    text = " ".join(t for t in (name, extra, notes) if t).strip()
    # A named drug is what its name says: its instructions may name another drug ("adrenal
    # replacement during mitotane") without making it anticancer treatment.
    identity = name if rtype.startswith("Medication") and name else text
    return CareActivity(
        source=Source(ref or ref_of(resource), path, name or extra[:120], when=start or scheduled or end),
        resource_type=rtype,
        name=name,
        codes=tuple(code_list),
        status=str(resource.get("status", "")).lower(),
        intent=str(resource.get("intent", "")).lower(),
        status_reason=reason_codes,
        status_reason_text=reason_words,
        start=start,
        end=end,
        scheduled=scheduled,
        reasons=reasons,
        reason_text=reason_text,
        categories=tuple(c for cc in as_list(resource.get("category")) for c in codes_of(cc)),
        note=" ".join(t for t in (extra, notes) if t).strip(),
        antineoplastic=_antineoplastic(identity) or bool(rxnorm_antineoplastic(list(code_list))),
        intent_extension=intent_ext,
        requester=requester_type(resource),
    )


def requester_type(resource: Json) -> str:
    """The resource type of who asked for it (requester, or a Communication's sender)."""
    who = resource.get("requester") or resource.get("sender")
    reference = str(who.get("reference", "")) if isinstance(who, dict) else ""
    return reference.rsplit("/", 2)[-2] if reference.count("/") >= 1 else ""

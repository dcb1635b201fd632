"""The referral packet: what SecondLook drafts from a record and its findings, and what a coordinator edits.

Plain pydantic models, JSON in and out, so the same body is stored, edited through the API,
rendered to HTML/PDF and mapped to FHIR.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field, field_validator

PACKET_IDENTIFIER_SYSTEM = "urn:secondlook:referral-packet"
ReviewType = Literal["pathology", "clinical", "both"]
Urgency = Literal["routine", "expedite"]
# attached: the record holds it and it travels with the packet; to-request: the holder named in
# `holder` sends it (glass slides, outside reports); not-applicable: decided by the coordinator;
# to-gather: not resolved yet (finalizing is refused while any item is). "found" is how drafts
# made before these states said "attached".
ItemStatus = Literal["attached", "to-request", "not-applicable", "to-gather"]
ITEM_STATUS_LABELS = {
    "attached": "Attached",
    "to-request": "To request",
    "not-applicable": "Not applicable",
    "to-gather": "To gather",
}
ChecklistCategory = Literal[
    "slides", "pathology-report", "imaging", "labs", "operative-note", "treatment", "insurance", "other"
]

REVIEW_TYPE_LABELS = {
    "pathology": "Pathology slide review",
    "clinical": "Clinical second opinion",
    "both": "Pathology slide review and clinical second opinion",
}
CATEGORY_LABELS = {
    "slides": "Pathology glass slides and blocks",
    "pathology-report": "Pathology reports",
    "imaging": "Imaging studies and reports",
    "labs": "Laboratory results and tumor markers",
    "operative-note": "Operative notes",
    "treatment": "Treatment records",
    "insurance": "Insurance card and identification",
    "other": "Other",
}


def new_id() -> str:
    return uuid.uuid4().hex


class Evidence(BaseModel):
    reference: str
    path: str = ""
    text: str = ""
    where: str = ""  # title, section and date in words, as the findings show it


class Reason(BaseModel):
    """One reason for referral: an engine finding in clinical words, or one the coordinator added."""

    id: str = Field(default_factory=new_id)
    trigger: str = "coordinator"
    urgency: Urgency = "routine"
    summary: str
    rationale: str = ""
    evidence: list[Evidence] = Field(default_factory=list)


class Question(BaseModel):
    id: str = Field(default_factory=new_id)
    text: str
    trigger: str = "coordinator"


class ChecklistItem(BaseModel):
    id: str = Field(default_factory=new_id)
    category: ChecklistCategory = "other"
    label: str
    detail: str = ""
    status: ItemStatus = "to-gather"
    holder: str = ""  # who to request it from (the originating laboratory, the imaging center, ...)
    reference: str | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _legacy_status(cls, value: object) -> object:
        return "attached" if value == "found" else value

    @property
    def resolved(self) -> bool:
        return self.status in ("attached", "not-applicable") or (
            self.status == "to-request" and bool(self.holder)
        )


class DiagnosisLine(BaseModel):
    text: str
    codes: list[str] = Field(default_factory=list)  # "ICD-10-CM C50.412", "ICD-O-3 8500/3"
    stage: str = ""
    grade: str = ""
    reference: str | None = None


class Biomarker(BaseModel):
    name: str
    value: str
    date: str = ""
    reference: str | None = None


class TreatmentLine(BaseModel):
    text: str
    status: str = ""
    date: str = ""
    reference: str | None = None


class PatientInfo(BaseModel):
    """Intake essentials; an empty field means the record does not hold it (shown as missing)."""

    reference: str  # "Patient/<id>"
    name: str = ""
    birth_date: str = ""
    gender: str = ""
    identifier: str = ""  # medical record number as shown to the receiving center
    identifier_system: str = ""
    phone: str = ""
    address: str = ""
    language: str = ""
    interpreter: str = ""  # "needed", "not needed" or "" (not recorded)


class RecordItem(BaseModel):
    """A current medication or an allergy, as the record states it."""

    text: str
    detail: str = ""
    reference: str | None = None


class Attachment(BaseModel):
    """A report's text as the EHR holds it (text or PDF): it travels inside the report's copy in
    `sources` (and so in the FHIR document); this is its line in the letter."""

    reference: str  # the report it belongs to, "DiagnosticReport/<id>"
    title: str
    content_type: str
    date: str = ""


class Destination(BaseModel):
    center_id: str
    name: str
    program: str = ""
    city: str = ""
    state: str = ""
    category: str = ""
    remote: bool = False
    contact: str = ""
    # The receiving center's FHIR endpoint for electronic referrals, from the directory; "" when the
    # center takes referrals by fax, portal or mail only.
    fhir_endpoint: str = ""
    # Intake contact, turnaround and caveats as the directory gave them when the center was chosen:
    # they travel in the letter. "" / [] when the directory has none (the letter says so).
    phone: str = ""
    fax: str = ""
    portal: str = ""
    email: str = ""
    turnaround: str = ""
    caveats: list[str] = Field(default_factory=list)

    @property
    def has_intake_contact(self) -> bool:
        return bool(self.phone or self.fax or self.portal or self.email)


class Insurance(BaseModel):
    available: bool
    payer: str = ""
    plan: str = ""
    member_id: str = ""
    note: str = ""  # why it is not available, or payer-specific advice
    prior_authorization: str = ""
    reference: str | None = None


class Sender(BaseModel):
    name: str = ""
    organization: str = ""
    contact: str = ""
    npi: str = ""
    phone: str = ""
    fax: str = ""
    reference: str | None = None  # Practitioner/<id> or PractitionerRole/<id> (the launch's fhirUser)
    organization_reference: str | None = None


class ReferralPacket(BaseModel):
    id: str = Field(default_factory=new_id)
    identifier_system: str = PACKET_IDENTIFIER_SYSTEM
    status: Literal["draft", "final"] = "draft"
    created: str  # ISO date-time, given by the caller
    patient: PatientInfo
    source: str = ""  # the FHIR base the record was read from (launch iss), "" for a file
    review_type: ReviewType = "clinical"
    urgency: Urgency = "routine"
    time_critical: str = ""  # the time-critical condition, if any
    timing_advice: str = ""
    cover_letter: str = ""
    reasons: list[Reason] = Field(default_factory=list)
    questions: list[Question] = Field(default_factory=list)
    diagnoses: list[DiagnosisLine] = Field(default_factory=list)
    biomarkers: list[Biomarker] = Field(default_factory=list)
    treatment_so_far: list[TreatmentLine] = Field(default_factory=list)
    treatment_proposed: list[TreatmentLine] = Field(default_factory=list)
    summary_note: str = ""
    checklist: list[ChecklistItem] = Field(default_factory=list)
    destination: Destination | None = None
    # Where the patient would like the second opinion: "" (not stated), "in-person" (near home),
    # "remote", or "center:<directory center id>". It orders the destination picker.
    preference: str = ""
    insurance: Insurance
    sender: Sender = Field(default_factory=Sender)
    medications: list[RecordItem] | None = None  # None: not read (or unreadable); [] read and none active
    allergies: list[RecordItem] | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    # Copies of the record's resources the packet cites (and what they cite), taken at drafting
    # time: the FHIR document must contain every resource it references.
    sources: list[dict[str, object]] = Field(default_factory=list)
    data_issues: list[str] = Field(default_factory=list)
    # The packet this one was started from: a new referral after a decline or for another center
    # (`follows`), or a corrected version of a final packet (`amends`).
    follows: str = ""
    amends: str = ""

    @field_validator("preference")
    @classmethod
    def _known_preference(cls, value: str) -> str:
        if value in ("", "in-person", "remote") or (value.startswith("center:") and len(value) > 7):
            return value
        raise ValueError('preference must be "", "in-person", "remote" or "center:<center id>"')

    @property
    def identifier_value(self) -> str:
        return self.id

    @property
    def review_type_label(self) -> str:
        return REVIEW_TYPE_LABELS[self.review_type]

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")

    def successor(self, *, created: str, amend: bool = False) -> ReferralPacket:
        """A new draft prefilled from this packet: another referral for the same patient (no
        destination chosen yet), or with `amend` a corrected version for the same center."""
        update: dict[str, object] = {"id": new_id(), "status": "draft", "created": created}
        update |= (
            {"amends": self.id, "follows": ""}
            if amend
            else {"follows": self.id, "amends": "", "destination": None}
        )
        return self.model_copy(deep=True, update=update)

    def finalize_problems(self) -> list[str]:
        """What stands between this draft and a final packet, in words for the editor."""
        problems = []
        if not self.reasons:
            problems.append("Give at least one reason for the referral.")
        if self.destination is None:
            problems.append("Choose the receiving center.")
        if not self.sender.name.strip():
            problems.append("Enter the referring clinician's name.")
        for item in self.checklist:
            if item.status == "to-request" and not item.holder:
                problems.append(f'Records checklist: say who to request "{item.label}" from.')
            elif not item.resolved:
                problems.append(
                    f'Records checklist: mark "{item.label}" attached, to request, or not applicable.'
                )
        return problems

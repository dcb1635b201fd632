"""The referral packet: what SecondLook drafts from a record and its findings, and what a coordinator edits.

Plain pydantic models, JSON in and out, so the same body is stored, edited through the API,
rendered to HTML/PDF and mapped to FHIR.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

PACKET_IDENTIFIER_SYSTEM = "urn:secondlook:referral-packet"
ReviewType = Literal["pathology", "clinical", "both"]
Urgency = Literal["routine", "expedite"]
ItemStatus = Literal["found", "to-gather"]
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
    reference: str | None = None


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
    reference: str  # "Patient/<id>"
    name: str = ""
    birth_date: str = ""
    gender: str = ""
    identifier: str = ""  # medical record number as shown to the receiving center


class Destination(BaseModel):
    center_id: str
    name: str
    program: str = ""
    city: str = ""
    state: str = ""
    category: str = ""
    remote: bool = False
    contact: str = ""


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
    insurance: Insurance
    sender: Sender = Field(default_factory=Sender)
    data_issues: list[str] = Field(default_factory=list)

    @property
    def identifier_value(self) -> str:
        return self.id

    @property
    def review_type_label(self) -> str:
        return REVIEW_TYPE_LABELS[self.review_type]

    def to_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")

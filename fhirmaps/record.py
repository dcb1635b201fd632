"""PatientRecord: the clinical facts of one patient, each keeping its source reference and element path."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal, get_args

from fhirmaps.context import RawMention
from fhirmaps.direct_init import direct_init
from fhirmaps.elements import Code
from fhirmaps.entities import Entity, Site

# What a report is for the rules, decided by fhirmaps.reports.classify (category, code, title).
TextKind = Literal["pathology", "imaging", "note"]
# Where a diagnosis was read: a Condition, a report (narrative or conclusion codes), an Observation.
DiagnosisOrigin = Literal["condition", "report", "observation"]
# What an Observation (or one of its components) measures, from fhirmaps.observations.classify.
MeasurementKind = Literal[
    "her2-ihc",
    "her2-ish",
    "er",
    "pr",
    "gleason-score",
    "gleason-group",
    "grade",
    "stage-group",
    "stage-m",
    "stage-t",
    "stage-n",
    "tumor-marker",
    "disease-status",
    "pdl1",
    "msi",
    "molecular",
    "histology",
    "prostate-volume",
    "psa-density",
    "tumor-size",
    "deauville",
    "other",
]
# The resources fhirmaps.activities.read_activity reads as treatments, plans, orders or appointments.
ActivityType = Literal[
    "MedicationRequest",
    "MedicationAdministration",
    "MedicationStatement",
    "Procedure",
    "ServiceRequest",
    "Appointment",
    "Encounter",
    "CarePlan",
]
ACTIVITY_TYPES: tuple[ActivityType, ...] = get_args(ActivityType)


def activity_type(resource_type: str) -> ActivityType | None:
    """`resource_type` as an ActivityType, or None when it is not read as an action."""
    return next((t for t in ACTIVITY_TYPES if t == resource_type), None)


@direct_init
@dataclass(frozen=True)
class Source:
    reference: str  # "DiagnosticReport/dr1"
    path: str  # "DiagnosticReport.presentedForm[0]"
    text: str  # the exact text or code that carries the fact
    section: str = ""  # report section heading, for narrative
    title: str = ""  # report title
    when: date | None = None


@dataclass(frozen=True)
class Mention:
    """A ConText target in a narrative section of one report/note."""

    raw: RawMention
    section: str  # section kind: diagnosis, comment, history, ...
    source: Source

    @property
    def label(self) -> str:
        return self.raw.label

    @property
    def key(self) -> str:
        return self.raw.key


@dataclass
class ClinicalText:
    """A pathology / imaging report or a clinical note with its narrative."""

    reference: str
    kind: TextKind
    status: str
    title: str
    when: date | None
    codes: tuple[Code, ...] = ()
    conclusion_codes: tuple[Code, ...] = ()
    specimens: tuple[str, ...] = ()
    text: str = ""
    mentions: list[Mention] = field(default_factory=list)
    author_is_patient: bool = False


@dataclass(frozen=True)
class Diagnosis:
    source: Source
    origin: DiagnosisOrigin
    entity: Entity | None
    site: Site | None
    codes: tuple[Code, ...]
    morphology: str | None  # "8936/1"
    topography: str | None
    clinical_status: str | None
    verification_status: str | None
    secondary: bool
    when: date | None
    uncertain: bool = False
    report: str = ""  # DiagnosticReport reference for narrative diagnoses
    report_status: str = ""
    stage: str = ""  # Condition.stage summary text ("Stage IVB", "cT2N1M1")

    @property
    def behavior(self) -> str | None:
        if self.morphology and "/" in self.morphology:
            return self.morphology.split("/")[1][:1]
        return None


@direct_init
@dataclass(frozen=True)
class Measurement:
    """An Observation reduced to what the rules need."""

    source: Source
    kind: MeasurementKind
    name: str  # marker / test name
    codes: tuple[Code, ...]
    value_text: str
    value_number: float | None
    unit: str
    value_codes: tuple[Code, ...]
    when: date | None
    specimen: str
    status: str
    body_site: str = ""


@direct_init
@dataclass(frozen=True)
class CareActivity:
    """A treatment, plan, order or appointment (MedicationRequest/-Administration/-Statement, Procedure,
    ServiceRequest, CarePlan activity, Appointment, Encounter)."""

    source: Source
    resource_type: ActivityType
    name: str
    codes: tuple[Code, ...]
    status: str
    intent: str
    status_reason: tuple[Code, ...]
    status_reason_text: str
    start: date | None
    end: date | None
    scheduled: date | None
    reasons: tuple[Code, ...] = ()
    reason_text: str = ""
    categories: tuple[Code, ...] = ()
    note: str = ""
    antineoplastic: bool = False
    intent_extension: str = ""  # mCODE procedure intent code
    requester: str = (
        ""  # resource type of the requester (Practitioner, Patient, RelatedPerson...), "" when absent
    )

    @property
    def when(self) -> date | None:
        return self.start or self.scheduled or self.end


@dataclass
class PatientRecord:
    patient: str  # "Patient/<id>"
    birth_date: date | None = None
    gender: str = ""
    deceased: bool = False  # Patient.deceasedBoolean true (no date)
    deceased_on: date | None = None  # Patient.deceasedDateTime
    diagnoses: list[Diagnosis] = field(default_factory=list)
    excluded_diagnoses: list[Diagnosis] = field(default_factory=list)  # history, family, refuted, resolved
    problems: list[Diagnosis] = field(
        default_factory=list
    )  # non-neoplastic Conditions (cord compression, SVC ...)
    texts: list[ClinicalText] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    activities: list[CareActivity] = field(default_factory=list)
    requests: list[Source] = field(default_factory=list)  # coded second-opinion requests
    trials: list[Source] = field(default_factory=list)  # ResearchSubject enrolments
    coverage: list[Source] = field(default_factory=list)
    family_history: list[Source] = field(default_factory=list)
    data_issues: list[dict[str, str]] = field(default_factory=list)

    def mentions(self, *labels: str, kinds: tuple[TextKind, ...] = ()) -> list[Mention]:
        """Narrative mentions with the given labels, optionally only in reports of the given kinds."""
        return [
            m for r in self.texts if not kinds or r.kind in kinds for m in r.mentions if m.label in labels
        ]

    def report(self, reference: str) -> ClinicalText | None:
        return next((r for r in self.texts if r.reference == reference), None)

"""The read plan: every FHIR resource type SecondLook reads for a patient, and how it is found.

Declared once, read three ways: the SMART scopes a launch requests (`SCOPE_READS`, handed to
`launch.flow.begin_launch` as data, since `launch` knows nothing about oncology), the record
loader's searches (`smartapp.chart_reader.build_searches`) and the CDS Hooks prefetch templates
(`smartapp.cds.discovery.PREFETCH`). tests/test_read_plan.py pins the three outputs.

DiagnosticReport is read across all categories: vendors disagree on pathology categories (Oracle
Health returns pathology with code 18782-3; see docs/vendors.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from launch.fhir_client import SearchParams
from launch.scopes import ResourceRead

# Placeholders in search templates: the patient's id, and the launch user's fhirUser reference.
PATIENT_ID = "{pid}"
USER = "{user}"

# Observations are by far the most numerous resources of an oncology record (years of labs), and
# next-page links can only be followed one after another. Reading them as disjoint date windows
# in parallel, plus the undated ones (`date:missing`), turns one long chain of pages into a few
# short ones; DiagnosticReports (hundreds of imaging and pathology reports) likewise. Window edges
# in days before today: 45 days for the last year (a patient on treatment has blood counts and
# chemistries every week or two: 60-130 results a month), quarters for the year before, then a
# year, then the rest. Servers cap pages at 100 (Oracle Health); in the benchmark record (1,450
# labs, 340 reports over two years) no window is longer than two pages.
OBSERVATION_WINDOWS = (0, 45, 90, 135, 180, 225, 270, 315, 365, 455, 545, 635, 730, 1095)
REPORT_WINDOWS = (0, 180, 365, 730)


@dataclass(frozen=True)
class PlannedRead:
    resource_type: str
    # Names this part of the record when it could not be read (a gap shown to the clinician).
    label: str
    # The search that finds it, with PATIENT_ID / USER placeholders; empty when the type is only
    # read by id or URL because another resource points to it.
    search: Mapping[str, str] = field(default_factory=dict)
    # fhirmaps.read maps it into the PatientRecord the triggers evaluate. False: only the referral
    # packet reads it, from the raw resources (intake, sender, checklist).
    mapped: bool = True
    # Its key in the CDS Hooks prefetch, when a hook call asks the EHR to send it.
    prefetch: str | None = None
    # Read as date windows (days before today) when the loader is given today's date.
    date_windows: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # One template serves several entries: keep it from being changed through any of them.
        object.__setattr__(self, "search", MappingProxyType(dict(self.search)))
        if (self.prefetch or self.date_windows) and not self.per_patient:
            raise ValueError(f"{self.resource_type}: prefetch and date windows need a per-patient search")

    @property
    def per_patient(self) -> bool:
        """Searched for each patient (the loader's searches, the prefetch templates)."""
        return PATIENT_ID in self.search.values()

    @property
    def permissions(self) -> str:
        """SMART v2 permissions: `rs` for a searched type. An `_id` search is a read (see
        `launch.fetch._as_read`), so the Patient, like types read by reference, needs only `r`."""
        return "rs" if set(self.search) - {"_id"} else "r"


_PAGED = {"patient": PATIENT_ID, "_count": "100"}

READ_PLAN: tuple[PlannedRead, ...] = (
    PlannedRead("Patient", "patient demographics", {"_id": PATIENT_ID}, prefetch="patient"),
    PlannedRead("Condition", "conditions", _PAGED, prefetch="conditions"),
    PlannedRead(
        "DiagnosticReport",
        "diagnostic reports",
        _PAGED,
        prefetch="diagnosticReports",
        date_windows=REPORT_WINDOWS,
    ),
    PlannedRead("DocumentReference", "clinical documents", _PAGED, prefetch="documents"),
    # The report texts behind presentedForm / attachment URLs.
    PlannedRead("Binary", "report text"),
    PlannedRead(
        "Observation", "observations", _PAGED, prefetch="observations", date_windows=OBSERVATION_WINDOWS
    ),
    PlannedRead("Procedure", "procedures", _PAGED, prefetch="procedures"),
    PlannedRead("MedicationRequest", "medication orders", _PAGED, prefetch="medicationRequests"),
    PlannedRead(
        "MedicationAdministration",
        "medication administrations",
        _PAGED,
        prefetch="medicationAdministrations",
    ),
    PlannedRead("ServiceRequest", "orders and referrals", _PAGED, prefetch="serviceRequests"),
    PlannedRead("CarePlan", "care plans", _PAGED, prefetch="carePlans"),
    PlannedRead("Coverage", "insurance coverage", {"patient": PATIENT_ID}, prefetch="coverage"),
    # Only the packet's checklist reads specimens; the prefetch template stays in the published
    # discovery document all the same.
    PlannedRead("Specimen", "specimens", _PAGED, mapped=False, prefetch="specimens"),
    # For the packet's intake section: what the patient is allergic to and takes now. Not
    # prefetched, although fhirmaps.read also maps MedicationStatement into the record's actions.
    PlannedRead("AllergyIntolerance", "allergies", _PAGED, mapped=False),
    PlannedRead("MedicationStatement", "medication statements", _PAGED),
    # The referring clinician (the launch's fhirUser, their roles) and the payer named by
    # Coverage, read by reference outside the patient's compartment.
    PlannedRead("Practitioner", "referring clinician", mapped=False),
    PlannedRead("PractitionerRole", "referring clinician", {"practitioner": USER}, mapped=False),
    PlannedRead("Organization", "organizations", mapped=False),
)

# (resource type, SMART v2 permissions), in plan order: what a launch asks the EHR to let it read.
SCOPE_READS: tuple[ResourceRead, ...] = tuple((r.resource_type, r.permissions) for r in READ_PLAN)


def planned(resource_type: str) -> PlannedRead:
    for read in READ_PLAN:
        if read.resource_type == resource_type:
            return read
    raise KeyError(f"{resource_type} is not in the read plan")


def fill(template: Mapping[str, str], *, patient_id: str = "", user: str = "") -> SearchParams:
    """A search template's parameters with the placeholders replaced."""
    return {k: v.replace(PATIENT_ID, patient_id).replace(USER, user) for k, v in template.items()}

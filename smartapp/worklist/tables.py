"""SQL tables of the worklist, on the app's metadata (smartapp.storage): one row per screening run,
one row per screened patient and source, and an audit row for every coordinator access."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Index, Integer, String, Table, Text

from launch.tables import UtcDateTime
from smartapp.encryption import EncryptedDate, EncryptedText
from smartapp.storage import metadata

# Coordinator-set status of a worklist entry; "new" until someone acts on it.
STATUSES = ("new", "reviewed", "referral-drafted", "referral-sent", "opinion-returned", "dismissed")

screening_runs = Table(
    "screening_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    # The EHR's issuer URL, or "file:" + the absolute folder/manifest path for an offline screen.
    Column("source", Text, nullable=False),
    Column("group_id", Text),
    Column("as_of", Date, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("status", String(16), nullable=False),  # running | finished | failed
    # Bulk Data transactionTime of the export this run read; the next `--since auto` starts here.
    Column("transaction_time", Text),
    Column("patients_total", Integer),
    Column("patients_done", Integer, nullable=False, default=0),
    Column("resources", Integer, nullable=False, default=0),
    # JSON: {"cause": count, ...} plus up to a few example messages per cause (no PHI).
    Column("errors_json", Text, nullable=False, default="{}"),
)

worklist_entries = Table(
    "worklist_entries",
    metadata,
    Column("source", Text, primary_key=True),
    Column("patient_id", String(128), primary_key=True),
    Column("display_name", EncryptedText),
    Column("birth_date", EncryptedDate),
    # The patient's result in the `secondlook evaluate` JSON schema (one element of "patients"),
    # as JSON text.
    Column("result_json", EncryptedText, nullable=False),
    # Space-separated trigger ids of the open findings, for filtering.
    Column("triggers", Text, nullable=False, default=""),
    Column("finding_count", Integer, nullable=False, default=0),
    Column("urgency", String(16), nullable=False, default="routine"),
    Column("time_critical", Boolean, nullable=False, default=False),
    # SHA-256 of the findings' triggers and summaries: a change marks the entry "changed".
    Column("fingerprint", String(64), nullable=False),
    Column("change", String(16), nullable=False),  # new | changed | unchanged | resolved
    Column("status", String(24), nullable=False, default="new"),
    # JSON list of group ids (clinic, tumor board) this patient was screened under.
    Column("groups_json", Text, nullable=False, default="[]"),
    Column("first_run_id", String(36), nullable=False),
    Column("last_run_id", String(36), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
Index("ix_worklist_last_run", worklist_entries.c.last_run_id)

worklist_audit = Table(
    "worklist_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("iss", Text, nullable=False),
    Column("actor", Text, nullable=False),  # the coordinator's fhirUser
    Column("action", String(32), nullable=False),  # view-worklist | open-patient | export-csv | set-status
    Column("patient_id", String(128)),
    Column("detail", Text),
)

"""Bulk Data `$export` jobs of the demo EHR (Bulk Data Access 2.0 behaviour).

A kick-off picks the resources at once (the export's `transactionTime`), then a worker thread
writes one NDJSON file per resource type into the job's folder under the demo's export directory,
so a large population never sits in memory twice. The status URL answers 202 (`Retry-After`,
`X-Progress`) until the files are written *and* the configured job time has passed, then 200 with
the manifest. DELETE cancels a running job or removes a finished one's files; afterwards the
status URL answers 404.

Bulk Data 3.0's `organizeOutputBy=Patient` gives files of resource blocks instead: a header
Parameters resource naming the patient, the Patient, then the rest of the patient's compartment
(a block is never split across files; resources of no patient's compartment are left out, with an
informational OperationOutcome saying how many). With `allowPartialManifests=true` a poll while
the job runs answers 202 with a manifest of the files already written; later files go to further
manifest pages linked with `next` (a page once served never changes but for gaining that link).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from .config import DemoEhrConfig
from .fhir_responses import FhirRefusal, compact_json
from .records import new_id
from .resource_store import SHARED_TYPES, ResourceStore
from .scopes import Access
from .search import parse_instant

NDJSON_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
# Types not exported unless `_type` names them: Binary content travels inside DocumentReference
# and DiagnosticReport.presentedForm (read by URL), Groups are the export's input.
NOT_EXPORTED_BY_DEFAULT = frozenset({"Binary", "Group"})
# Finished jobs (and their files) are forgotten this long after kick-off.
JOB_TTL = 3600.0
Resource = dict[str, Any]


class ExportRefused(FhirRefusal):
    """A kick-off the server refuses, with the HTTP status and OperationOutcome text to answer."""


@dataclass
class ExportParameters:
    output_format: str = "application/fhir+ndjson"
    since: datetime | None = None
    types: list[str] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    organize_by_patient: bool = False
    partial_manifests: bool = False


@dataclass
class ExportJob:
    job_id: str
    client_id: str
    request_url: str
    transaction_time: str
    folder: Path
    started: float
    ready_at: float
    selection: dict[str, list[str]]  # type -> ids, fixed at kick-off
    notes: list[str]  # informational OperationOutcomes for the error file
    total: int = 0
    written: int = 0
    # (type, file name, count); type None for files of resource blocks (organizeOutputBy)
    outputs: list[tuple[str | None, str, int]] = field(default_factory=list)
    error_file: str | None = None
    organize_by_patient: bool = False
    partial_manifests: bool = False
    pages: list[int] = field(default_factory=list)  # outputs[pages[n]:pages[n+1]] is manifest page n
    finished: bool = False
    failed: str | None = None
    cancelled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def parse_get_parameters(params: list[tuple[str, str]]) -> ExportParameters:
    """GET kick-off parameters; repeated `_type` values and comma lists are both accepted."""
    parsed = ExportParameters()
    for name, value in params:
        apply_parameter(parsed, name, value)
    return parsed


def parse_post_parameters(body: Any) -> ExportParameters:
    """POST kick-off: a FHIR Parameters resource (one entry per value, or comma lists)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise ExportRefused(400, "invalid", "The POST body must be a FHIR Parameters resource.")
    parsed = ExportParameters()
    for entry in body.get("parameter", []) or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ExportRefused(400, "invalid", "Every Parameters.parameter needs a name.")
        name = entry["name"]
        reference = entry.get("valueReference")
        if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
            value: Any = reference["reference"]
        else:
            value = next((entry[key] for key in entry if key.startswith("value")), None)
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str):
            raise ExportRefused(400, "invalid", f"Parameter {name} has no usable value.")
        apply_parameter(parsed, name, value)
    return parsed


def apply_parameter(parsed: ExportParameters, name: str, value: str) -> None:
    if name == "_outputFormat":
        if value not in NDJSON_FORMATS:
            raise ExportRefused(
                400,
                "not-supported",
                f"_outputFormat {value!r} is not supported; use application/fhir+ndjson.",
            )
        parsed.output_format = value
    elif name == "_since":
        moment = parse_instant(value) if len(value) > 10 else None
        if moment is None:
            raise ExportRefused(400, "invalid", f"_since {value!r} is not a FHIR instant.")
        parsed.since = moment[0]
    elif name == "_type":
        parsed.types += [item.strip() for item in value.split(",") if item.strip()]
    elif name == "organizeOutputBy":
        if value != "Patient":
            raise ExportRefused(
                400,
                "not-supported",
                f"organizeOutputBy {value!r} is not supported; the demo EHR organizes by Patient.",
            )
        parsed.organize_by_patient = True
    elif name == "allowPartialManifests":
        if value not in ("true", "false"):
            raise ExportRefused(400, "invalid", f"allowPartialManifests {value!r} is not true or false.")
        parsed.partial_manifests = value == "true"
    elif name == "patient":
        parsed.patients += [
            item.strip().removeprefix("Patient/") for item in value.split(",") if item.strip()
        ]
    elif name not in ("_format",):
        parsed.ignored.append(name)


def _header(patient_id: str) -> Resource:
    """The header of a patient's resource block (Bulk Data 3.0 `organizeOutputBy`)."""
    reference = {"reference": f"Patient/{patient_id}"}
    return {"resourceType": "Parameters", "parameter": [{"name": "header", "valueReference": reference}]}


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _last_updated(resource: Resource) -> datetime | None:
    text = (resource.get("meta") or {}).get("lastUpdated") if isinstance(resource.get("meta"), dict) else None
    moment = parse_instant(str(text)) if text else None
    return moment[0] if moment else None


class ExportManager:
    """The demo EHR's export jobs; files live under `root` (a temporary folder by default)."""

    def __init__(self, config: DemoEhrConfig, resources: ResourceStore):
        self.config = config
        self.resources = resources
        self.jobs: dict[str, ExportJob] = {}
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if config.export_dir is not None:
            self.root = config.export_dir
            self.root.mkdir(parents=True, exist_ok=True)
        else:
            self._temporary = tempfile.TemporaryDirectory(
                prefix="demo-ehr-export-", ignore_cleanup_errors=True
            )
            self.root = Path(self._temporary.name)
        self._tasks: set[asyncio.Task[None]] = set()

    def select(
        self, access: Access, level: str, group_members: list[str] | None, params: ExportParameters
    ) -> dict[str, list[str]]:
        """type -> ids of what this export contains, checked against the token's system scopes."""
        store = self.resources
        wanted = list(dict.fromkeys(params.types))
        for rtype in wanted:
            if not access.allows(rtype, "r"):
                raise ExportRefused(403, "forbidden", f"The granted scopes do not allow reading {rtype}.")
        patients: set[str] | None = None
        if level == "group":
            patients = set(group_members or [])
        elif level == "patient":
            patients = {pid for pid in store.resources.get("Patient", {})}
        if params.patients:
            if level == "system":
                raise ExportRefused(
                    400, "invalid", "The patient parameter applies to Patient and Group exports."
                )
            unknown = [pid for pid in params.patients if patients is not None and pid not in patients]
            if unknown:
                raise ExportRefused(400, "invalid", f"Not in this export's population: {', '.join(unknown)}.")
            patients = set(params.patients)
        types = wanted or [
            rtype
            for rtype in sorted(store.resources)
            if rtype not in NOT_EXPORTED_BY_DEFAULT and access.allows(rtype, "r")
        ]
        selection: dict[str, list[str]] = {}
        for rtype in types:
            ids = []
            for rid, resource in store.resources.get(rtype, {}).items():
                if patients is not None and store.owner(rtype, rid) not in patients:
                    continue
                if params.since is not None:
                    updated = _last_updated(resource)
                    if updated is not None and updated <= params.since:
                        continue
                ids.append(rid)
            if ids:
                selection[rtype] = ids
        return selection

    def start(
        self, client_id: str, request_url: str, selection: dict[str, list[str]], params: ExportParameters
    ) -> ExportJob:
        self._purge()
        job_id = new_id(16)
        folder = self.root / job_id
        folder.mkdir(parents=True)
        now = time.time()
        notes = [
            f"Parameter {name} is not supported by the demo EHR and was ignored." for name in params.ignored
        ]
        outside = sum(len(ids) for rtype, ids in selection.items() if rtype in SHARED_TYPES)
        if params.organize_by_patient and outside:
            notes.append(
                f"{outside} resources in no patient's compartment (such as Practitioner or Organization) "
                "were left out of this export organized by Patient."
            )
        job = ExportJob(
            job_id=job_id,
            client_id=client_id,
            request_url=request_url,
            transaction_time=_instant(datetime.now(UTC)),
            folder=folder,
            started=now,
            ready_at=now + self.config.export_seconds,
            selection=selection,
            notes=notes,
            total=sum(len(ids) for ids in selection.values()),
            organize_by_patient=params.organize_by_patient,
            partial_manifests=params.partial_manifests,
        )
        self.jobs[job_id] = job
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self._write, job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def _write(self, job: ExportJob) -> None:
        try:
            # Written first: every manifest page of the job lists the same error files (the spec's rule).
            if job.notes:
                with (job.folder / "OperationOutcome.ndjson").open("w", encoding="utf-8") as handle:
                    for note in job.notes:
                        issue = {"severity": "information", "code": "not-supported", "diagnostics": note}
                        handle.write(
                            json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}) + "\n"
                        )
                job.error_file = "OperationOutcome.ndjson"
            if job.organize_by_patient:
                self._write_blocks(job)
            else:
                self._write_by_type(job)
            if job.cancelled:
                return
            job.finished = True
        except OSError as exc:
            job.failed = f"Writing the export files failed: {exc.strerror or exc}"
        finally:
            if job.cancelled:
                shutil.rmtree(job.folder, ignore_errors=True)

    def _write_by_type(self, job: ExportJob) -> None:
        for rtype, ids in job.selection.items():
            name = f"{rtype}.ndjson"
            count = 0
            with (job.folder / name).open("wb") as handle:
                for rid in ids:
                    if job.cancelled:
                        return
                    resource = self.resources.get(rtype, rid)
                    if resource is None:  # removed since kick-off
                        continue
                    handle.write(compact_json(resource) + b"\n")
                    count += 1
                    with job.lock:
                        job.written += 1
            with job.lock:
                job.outputs.append((rtype, name, count))

    def _write_blocks(self, job: ExportJob) -> None:
        """Files of patient resource blocks, each file ended after the block that takes it past
        `export_block_file_bytes`, and listed as soon as it is closed."""
        blocks = self._blocks(job.selection)
        files = 0
        handle: BinaryIO | None = None
        name, count = "", 0
        try:
            for patient_id, items in blocks.items():
                if job.cancelled:
                    return
                if handle is None:
                    files += 1
                    name, count = f"patients-{files:05d}.ndjson", 0
                    handle = (job.folder / name).open("wb")
                handle.write(compact_json(_header(patient_id)) + b"\n")
                for rtype, rid in items:
                    resource = self.resources.get(rtype, rid)
                    if resource is not None:  # removed since kick-off
                        handle.write(compact_json(resource) + b"\n")
                        count += 1
                with job.lock:
                    job.written += len(items)
                if handle.tell() >= self.config.export_block_file_bytes:
                    handle.close()
                    handle = None
                    with job.lock:
                        job.outputs.append((None, name, count))
        finally:
            if handle is not None:
                handle.close()
                if not job.cancelled:
                    with job.lock:
                        job.outputs.append((None, name, count))

    def _blocks(self, selection: dict[str, list[str]]) -> dict[str, list[tuple[str, str]]]:
        """Patient id -> (type, id) of its block: the Patient first, then its compartment by type."""
        blocks: dict[str, list[tuple[str, str]]] = {}
        for rtype in sorted(selection, key=lambda name: name != "Patient"):
            for rid in selection[rtype]:
                owner = self.resources.owner(rtype, rid)
                if owner is not None:
                    blocks.setdefault(owner, []).append((rtype, rid))
        return blocks

    def ready(self, job: ExportJob) -> bool:
        return job.finished and time.time() >= job.ready_at

    def progress(self, job: ExportJob) -> str:
        by_time = (
            min(1.0, (time.time() - job.started) / self.config.export_seconds)
            if self.config.export_seconds
            else 1
        )
        by_files = job.written / job.total if job.total else 1.0
        percent = int(100 * min(by_time, by_files))
        return f"{percent}% ({job.written} of {job.total} resources written)"

    def seal(self, job: ExportJob) -> bool:
        """With partial manifests: the files written since the last page make a new page (and
        once the job is done, the rest make the last one). True when there is a page to serve."""
        with job.lock:
            sealed = job.pages[-1] if job.pages else 0
            if len(job.outputs) > sealed or (self.ready(job) and not job.pages):
                job.pages.append(len(job.outputs))
            return bool(job.pages)

    def manifest(self, job: ExportJob, page: int = 0) -> dict[str, Any] | None:
        """The manifest, or page `page` of it with partial manifests (None: no such page yet)."""
        with job.lock:
            if job.partial_manifests:
                if page >= len(job.pages):
                    return None
                outputs = job.outputs[job.pages[page - 1] if page else 0 : job.pages[page]]
                more = page + 1 < len(job.pages)
            elif page:
                return None
            else:
                outputs, more = list(job.outputs), False
        files = f"{self.config.fhir_base}/$export-file/{job.job_id}"
        errors = [{"type": "OperationOutcome", "url": f"{files}/{job.error_file}"}] if job.error_file else []
        document: dict[str, Any] = {
            "transactionTime": job.transaction_time,
            "request": job.request_url,
            "requiresAccessToken": True,
        }
        if job.organize_by_patient:
            document["outputOrganizedBy"] = "Patient"
        document["output"] = [
            {**({"type": rtype} if rtype else {}), "url": f"{files}/{name}", "count": count}
            for rtype, name, count in outputs
            if count
        ]
        document["error"] = errors
        if more:
            document["link"] = [
                {
                    "relation": "next",
                    "url": f"{self.config.fhir_base}/$export-manifest/{job.job_id}/{page + 1}",
                }
            ]
        return document

    def file(self, job: ExportJob, name: str) -> Path | None:
        """A file of the job once a manifest that lists it can have been served."""
        ready = self.ready(job)
        with job.lock:
            listed = job.outputs if ready else job.outputs[: job.pages[-1] if job.pages else 0]
            allowed = {file_name for _, file_name, _ in listed}
            if job.error_file and (ready or job.pages):
                allowed.add(job.error_file)
        if name not in allowed:
            return None
        path = job.folder / name
        return path if path.is_file() else None

    def _purge(self) -> None:
        oldest = time.time() - JOB_TTL
        for job in [
            job for job in self.jobs.values() if job.started < oldest and (job.finished or job.failed)
        ]:
            self.cancel(job)

    def close(self) -> None:
        """The EHR is stopping: every job is cancelled and its files removed, with the temporary
        folder they were in (a configured `export_dir` itself stays)."""
        for job in list(self.jobs.values()):
            job.cancelled = True
            shutil.rmtree(job.folder, ignore_errors=True)
        self.jobs.clear()
        if self._temporary is not None:
            self._temporary.cleanup()

    def cancel(self, job: ExportJob) -> None:
        job.cancelled = True
        self.jobs.pop(job.job_id, None)
        if job.finished or job.failed:
            shutil.rmtree(job.folder, ignore_errors=True)

"""One screening run: partition the input, run the bucket tasks on Dask, stream the results into the
worklist, and return what the CLI prints. The run row is "failed" if anything escapes."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from distributed import Client

from launch.bulk_manifest import iter_ndjson, summarize_outcomes
from launch.crypto import TokenCipher
from smartapp.db import create_sync_engine
from smartapp.schema import migrate_sync
from smartapp.screening.cluster import dask_client, run_buckets, run_chains, worker_count
from smartapp.screening.errors import BUCKET_FAILED, EXPORT_ERROR, REPEATED_PATIENT, ErrorLog
from smartapp.screening.inputs import BlockSource, ScreenInput
from smartapp.screening.partition import bucket_count
from smartapp.screening.progress import Progress
from smartapp.screening.shuffle import partition_on_cluster
from smartapp.screening.worklist_writer import WorklistWriter


@dataclass(frozen=True)
class ScreenOptions:
    as_of: date
    database_url: str
    cipher: TokenCipher  # the app's keys: worklist names, birth dates and results are encrypted
    rare_definition: str = "rarecare"
    scheduler: str | None = None
    workers: int | None = None
    work_dir: Path | None = None  # must be on a disk every worker sees when the cluster is remote
    group_id: str | None = None
    keep_results: bool = True  # keep flagged patients' results for printing


@dataclass
class ScreenOutcome:
    run_id: str
    patients: int = 0
    resources: int = 0
    seconds: float = 0.0
    partition_seconds: float = 0.0
    errors: ErrorLog = field(default_factory=ErrorLog)
    flagged: list[dict[str, Any]] = field(
        default_factory=list
    )  # evaluate-schema results with something to show
    changes: dict[str, int] = field(default_factory=dict)

    def run_json(self) -> dict[str, Any]:
        return {
            "id": self.run_id,
            "patients": self.patients,
            "resources": self.resources,
            "seconds": round(self.seconds, 3),
            "errors": dict(self.errors.counts),
        }


def run_screen(
    screen_input: ScreenInput,
    options: ScreenOptions,
    client: Client | None = None,
    progress: Progress | None = None,
    errors: ErrorLog | None = None,
) -> ScreenOutcome:
    """Screen `screen_input` into the worklist; `errors` may carry errors of an earlier step (download)."""
    engine = create_sync_engine(options.database_url, options.cipher)
    try:
        migrate_sync(engine)
        writer = WorklistWriter(engine, screen_input.source, options.group_id)
        outcome = ScreenOutcome(
            run_id=writer.start(options.as_of, screen_input.transaction_time), errors=errors or ErrorLog()
        )
        started = time.monotonic()
        try:
            _count_error_files(screen_input.error_files, outcome.errors)
            with ExitStack() as stack:
                if client is None:
                    client = stack.enter_context(dask_client(options.scheduler, options.workers))
                _screen(screen_input, _Run(options, client, writer, outcome, progress))
        except BaseException:
            outcome.seconds = time.monotonic() - started
            writer.finish("failed", outcome.errors.as_json())
            raise
        outcome.seconds = time.monotonic() - started
        outcome.patients = writer.patients_done
        outcome.changes = dict(writer.changes)
        blocks = screen_input.blocks
        writer.finish(
            "finished",
            outcome.errors.as_json(),
            resources=outcome.resources,
            transaction_time=blocks.transaction_time if blocks is not None else None,
        )
        outcome.flagged.sort(key=lambda r: str(r.get("patient")))
        return outcome
    finally:
        engine.dispose()


@dataclass
class _Run:
    """What every step of one screening run writes to: the worklist, the outcome, the progress line."""

    options: ScreenOptions
    client: Client
    writer: WorklistWriter
    outcome: ScreenOutcome
    progress: Progress | None

    def take(self, result: dict[str, Any]) -> None:
        """One task's results into the worklist (and the run's counts)."""
        self.outcome.errors.merge(result["errors"])
        self.writer.write(result["patients"], result["resources"])
        if self.options.keep_results:
            self.outcome.flagged.extend(
                p["result"] for p in result["patients"] if _worth_showing(p["result"])
            )
        if self.progress is not None:
            self.progress.update(self.writer.patients_done)

    def set_total(self, total: int) -> None:
        self.writer.set_total(total)
        if self.progress is not None:
            self.progress.total = total

    def task_failed(self, first: Path, exc: BaseException) -> None:
        """A lost task (a worker died, out of memory): its file counted, the others go on."""
        self.outcome.errors.add(BUCKET_FAILED, f"{first.name}: {type(exc).__name__}")


def _screen(screen_input: ScreenInput, run: _Run) -> None:
    try:
        if screen_input.blocks is None:
            _screen_partitioned(screen_input, run)
            return
        _screen_blocks(screen_input.blocks, run)
        by_type = screen_input.blocks.by_type()
        if by_type is not None:  # the EHR sent files by type after all
            _screen_partitioned(by_type, run)
        _count_error_files(screen_input.blocks.error_files, run.outcome.errors)
    finally:
        if run.progress is not None:
            run.progress.close()


def _screen_blocks(blocks: BlockSource, run: _Run) -> None:
    """Files of patient blocks screened as the export delivers them (no partition pass). The total
    shown while it runs is the Group's size; the patients screened replace it at the end."""
    arrivals = ErrorLog()  # written by the exporting thread while the stream runs
    total_known = False
    tasks = blocks.stream(arrivals)
    for result in run_chains(
        run.client, tasks, run.options.as_of, run.options.rare_definition, run.task_failed
    ):
        run.outcome.resources += int(result["resources"])
        if not total_known and blocks.expected_patients is not None:
            run.set_total(blocks.expected_patients)
            total_known = True
        run.take(result)
    run.outcome.errors.merge(arrivals.as_json())
    if run.writer.repeated:
        why = "a patient's blocks in files not chained by continuesInFile"
        run.outcome.errors.add(REPEATED_PATIENT, why, run.writer.repeated)
    run.set_total(run.writer.patients_done)


def _screen_partitioned(screen_input: ScreenInput, run: _Run) -> None:
    options, client, outcome = run.options, run.client, run.outcome
    n_buckets = bucket_count(screen_input.estimated_bytes(), worker_count(client))
    if options.work_dir is not None:
        options.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="secondlook-screen-", dir=options.work_dir))
    try:
        started = time.monotonic()
        parts = partition_on_cluster(client, screen_input.files, work, n_buckets, outcome.errors)
        outcome.partition_seconds = time.monotonic() - started
        outcome.resources += parts.resources
        run.set_total(run.writer.patients_done + parts.patients)
        hydration = ErrorLog()
        buckets: Iterable[Path] = parts.buckets
        if screen_input.hydrator is not None:
            buckets = screen_input.hydrator.stream(parts.buckets, hydration)
        for result in run_buckets(
            client, buckets, parts.side, options.as_of, options.rare_definition, run.task_failed
        ):
            run.take(result)
        outcome.errors.merge(hydration.as_json())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _worth_showing(result: dict[str, Any]) -> bool:
    return bool(result.get("findings") or result.get("data_issues") or result.get("time_critical"))


def _count_error_files(error_files: tuple[Path, ...], errors: ErrorLog) -> None:
    """Issues in the export's error files, counted by their code (their texts may name patients)."""
    for path in error_files:
        try:
            issues = summarize_outcomes(iter_ndjson(path))
        except ValueError:
            errors.add(f"{EXPORT_ERROR}:unreadable-error-file", path.name)
            continue
        for issue in issues:
            errors.add(f"{EXPORT_ERROR}:{issue.code}", count=issue.count)

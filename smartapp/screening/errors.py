"""Errors of a screening run, counted by cause, with a few examples that carry no patient data
(file names, line numbers, exception class names only)."""

from __future__ import annotations

from collections import Counter
from typing import Any

EXAMPLES_PER_CAUSE = 5

# Causes (the keys of `run.errors`):
MALFORMED_LINE = "malformed-line"  # an NDJSON line that is not JSON
NOT_A_RESOURCE = "not-a-resource"  # JSON without a resourceType
NO_PATIENT_REFERENCE = "no-patient-reference"  # a patient-level resource that names no patient
OUTSIDE_BLOCK = "outside-block"  # an export organized by patient: a resource before any block header
PATIENT_NOT_IN_EXPORT = "patient-not-in-export"  # resources refer to a Patient the export lacks
REPEATED_PATIENT = "patient-in-two-blocks"  # one patient's resources in blocks screened apart
ENGINE_ERROR = "engine-error"  # the engine raised on one patient; the others are kept
BUCKET_FAILED = "bucket-failed"  # a whole task failed (worker lost, out of memory)
DOWNLOAD_FAILED = "download-failed"  # an export file that could not be downloaded
EXPORT_ERROR = "export-error"  # OperationOutcome issues from the export's error files
ATTACHMENT_FAILED = (
    "attachment-failed"  # a report text behind a URL could not be fetched (the report is still read)
)


class ErrorLog:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, cause: str, example: str = "", count: int = 1) -> None:
        self.counts[cause] += count
        if example:
            kept = self.examples.setdefault(cause, [])
            if len(kept) < EXAMPLES_PER_CAUSE:
                kept.append(example)

    def merge(self, other: dict[str, Any]) -> None:
        """Add an `as_json()` document (from a worker) to this log."""
        for cause, count in other.get("counts", {}).items():
            self.counts[cause] += int(count)
        for cause, examples in other.get("examples", {}).items():
            kept = self.examples.setdefault(cause, [])
            kept.extend(examples[: max(0, EXAMPLES_PER_CAUSE - len(kept))])

    def as_json(self) -> dict[str, Any]:
        return {
            "counts": dict(sorted(self.counts.items())),
            "examples": {k: v for k, v in sorted(self.examples.items())},
        }

"""Bulk Data export manifests (2.0/3.0 and the 4.0 ballot), NDJSON files, and error-file summaries.

The 4.0 ballot renames the manifest's `error` array to `outcome` and drops `request`; both shapes
are read into one `Manifest`. Error (outcome) files are NDJSON OperationOutcomes, warnings and
information included; `summarize_outcomes` counts their issues per cause.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin

from launch.errors import FatalFhirError

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class ManifestFile:
    type: str  # resource type; "OperationOutcome" for error files, "Bundle" for deleted ones
    url: str
    count: int | None = None
    # Files organized by a type (`organizeOutputBy`): the file where this file's last resource
    # block goes on (the block's header is repeated there).
    continues_in: str | None = None


@dataclass(frozen=True)
class Manifest:
    transaction_time: str  # everything up to it is included: the next run's `_since`
    requires_access_token: bool
    output: tuple[ManifestFile, ...]
    errors: tuple[ManifestFile, ...]  # `error` (2.0/3.0) or `outcome` (4.0 ballot)
    deleted: tuple[ManifestFile, ...] = ()
    shape: Literal["2.0/3.0", "4.0-ballot"] = "2.0/3.0"
    next_url: str | None = None  # a partial manifest's `next` link (allowPartialManifests)
    organized_by: str | None = None  # `outputOrganizedBy`: files of resource blocks, e.g. "Patient"

    def merged(self, page: Manifest) -> Manifest:
        """This manifest followed by the files of a later page of the same export."""
        return Manifest(
            transaction_time=self.transaction_time,
            requires_access_token=self.requires_access_token,
            output=self.output + page.output,
            errors=self.errors + page.errors,
            deleted=self.deleted + page.deleted,
            shape=self.shape,
            next_url=page.next_url,
            organized_by=self.organized_by,
        )


def parse_manifest(document: Any, status_url: str) -> Manifest:
    """Read a completed export's manifest; relative file URLs are resolved against the status URL."""
    if not isinstance(document, dict):
        raise _unreadable("it is not a JSON object")
    transaction_time = document.get("transactionTime")
    if not isinstance(transaction_time, str) or not transaction_time:
        raise _unreadable("it has no transactionTime")
    requires = document.get("requiresAccessToken")
    if not isinstance(requires, bool):
        raise _unreadable("requiresAccessToken is missing or not true/false")
    ballot = "outcome" in document or "manifestType" in document
    errors_key = "outcome" if "outcome" in document else "error"
    next_url = None
    for link in document.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            next_url = urljoin(status_url, link["url"])
    return Manifest(
        transaction_time=transaction_time,
        requires_access_token=requires,
        output=_files(document, "output", status_url),
        errors=_files(document, errors_key, status_url),
        deleted=_files(document, "deleted", status_url),
        shape="4.0-ballot" if ballot else "2.0/3.0",
        next_url=next_url,
        organized_by=organized if isinstance(organized := document.get("outputOrganizedBy"), str) else None,
    )


def _files(document: dict[str, Any], key: str, status_url: str) -> tuple[ManifestFile, ...]:
    entries = document.get(key) or []
    if not isinstance(entries, list):
        raise _unreadable(f"{key} is not an array")
    files = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise _unreadable(f"an entry of {key} has no url")
        count = entry.get("count")
        continues = entry.get("continuesInFile")
        files.append(
            ManifestFile(
                # 3.0 `organizeOutputBy` files carry no type: they mix a patient's resources.
                type=str(entry.get("type") or "mixed"),
                url=urljoin(status_url, entry["url"]),
                count=count if isinstance(count, int) and not isinstance(count, bool) else None,
                continues_in=urljoin(status_url, continues) if isinstance(continues, str) else None,
            )
        )
    return tuple(files)


def _unreadable(why: str) -> FatalFhirError:
    return FatalFhirError(
        f"The EHR's bulk export manifest is unreadable: {why}.", operation="read the export manifest"
    )


def iter_ndjson(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of an NDJSON file, gzip-compressed or not (decided by the file's first bytes).

    Blank lines are skipped; a line that is not a JSON object raises ValueError naming its number.
    """
    with path.open("rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    with gzip.open(path, "rb") if compressed else path.open("rb") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path.name} line {number} is not valid JSON") from exc
            if not isinstance(value, dict):
                raise ValueError(f"{path.name} line {number} is not a JSON object")
            yield value


@dataclass(frozen=True)
class IssueCount:
    """How many issues of the export's error files share one severity, code and text."""

    severity: str
    code: str
    text: str
    count: int


def summarize_outcomes(outcomes: Iterable[dict[str, Any]]) -> list[IssueCount]:
    """Count OperationOutcome issues per (severity, code, text), most frequent first."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for outcome in outcomes:
        if outcome.get("resourceType") != "OperationOutcome":
            continue
        for issue in outcome.get("issue") or []:
            if not isinstance(issue, dict):
                continue
            details = issue.get("details")
            text = issue.get("diagnostics") or (details.get("text") if isinstance(details, dict) else None)
            counts[
                (str(issue.get("severity") or "error"), str(issue.get("code") or "unknown"), str(text or ""))
            ] += 1
    return [
        IssueCount(severity, code, text, count)
        for (severity, code, text), count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]

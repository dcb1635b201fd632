"""What a screen reads: the NDJSON files of a folder, one NDJSON file, or the local files a Bulk Data
manifest lists."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from launch.bulk_manifest import parse_manifest
from launch.errors import FatalFhirError, TemporaryFhirError
from smartapp.screening.blocks import Task, block_tasks, complete_chains
from smartapp.screening.errors import ErrorLog
from smartapp.screening.partition import is_gzip

NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
# A gzip file holds about this many times its size in NDJSON (sizing the buckets only).
GZIP_RATIO = 8


class InputError(Exception):
    """The input cannot be read; the message names the path, never file contents."""


def failure_text(exc: Exception) -> str:
    """The first line of what an EHR failure says (its description, message or text), for an
    InputError's one-line message."""
    text = getattr(exc, "description", None) or getattr(exc, "message", None) or str(exc)
    return str(text).splitlines()[0] if str(text) else type(exc).__name__


def export_failed(iss: str, exc: Exception, kept: bool) -> InputError:
    """What a failed bulk export says; `kept`: the export's status URL is kept for a resume."""
    resume = (
        " The export is kept: run the same command again to resume it."
        if isinstance(exc, TemporaryFhirError) and kept
        else ""
    )
    return InputError(f"bulk export from {iss} failed: {failure_text(exc)}{resume}")


class Hydrator(Protocol):
    """Fills in what the partitioned buckets still lack (smartapp/screening/hydrate.py)."""

    def stream(self, buckets: Sequence[Path], errors: ErrorLog) -> Iterator[Path]:
        """Each bucket once it is complete, in order."""
        ...


class BlockSource(Protocol):
    """Files of patient resource blocks that arrive while an export runs (block_export.py)."""

    transaction_time: str | None  # these two are known once the stream has ended
    error_files: tuple[Path, ...]
    expected_patients: int | None  # known (or not) once the stream has started

    def stream(self, errors: ErrorLog) -> Iterator[Task]:
        """The tasks (blocks.Task) of each file or `continuesInFile` chain once it can be screened."""
        ...

    def by_type(self) -> ScreenInput | None:
        """What the EHR sent by type after all (it ignored organizeOutputBy), for the partition pass."""
        ...


@dataclass(frozen=True)
class ScreenInput:
    source: str  # "file:" + absolute path: the worklist source of an offline screen
    files: tuple[Path, ...]
    error_files: tuple[Path, ...] = ()
    transaction_time: str | None = None
    # Report texts still behind URLs, fetched bucket by bucket while the screen runs (EHR exports).
    hydrator: Hydrator | None = None
    # An export organized by patient, screened as its files arrive (then `files` is empty).
    blocks: BlockSource | None = None

    def estimated_bytes(self) -> int:
        total = 0
        for path in self.files:
            size = path.stat().st_size
            total += size * GZIP_RATIO if is_gzip(path) else size
        return total


def resolve_input(path: Path) -> ScreenInput:
    path = path.expanduser()
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    path = path.resolve()
    if path.is_dir():
        files = tuple(
            sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(NDJSON_SUFFIXES))
        )
        if not files:
            raise InputError(f"{path}: folder has no .ndjson files")
        return ScreenInput(source=f"file:{path}", files=files)
    if path.name.lower().endswith(NDJSON_SUFFIXES):
        return ScreenInput(source=f"file:{path}", files=(path,))
    return _from_manifest(path)


def _from_manifest(path: Path) -> ScreenInput:
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable Bulk Data manifest ({exc.__class__.__name__})") from exc
    try:
        manifest = parse_manifest(document, path.as_uri())
    except FatalFhirError as exc:
        raise InputError(f"{path}: {exc}") from exc
    folder = path.parent
    files = tuple(_local(f.url, folder, path) for f in manifest.output)
    errors = tuple(_local(f.url, folder, path) for f in manifest.errors)
    if not files:
        raise InputError(f"{path}: the manifest lists no output files")
    if manifest.organized_by == "Patient":  # files of patient blocks: screened without a partition
        local = {f.url: target for f, target in zip(manifest.output, files, strict=True)}
        chains = complete_chains(manifest.output, local, set(), final=True)
        return ScreenInput(
            source=f"file:{path}",
            files=(),
            error_files=errors,
            transaction_time=manifest.transaction_time,
            blocks=LocalBlocks(chains),
        )
    return ScreenInput(
        source=f"file:{path}", files=files, error_files=errors, transaction_time=manifest.transaction_time
    )


@dataclass
class LocalBlocks:
    """The files of a downloaded export organized by patient, as its manifest chains them (its
    error files and transactionTime are the ScreenInput's, read before the screen)."""

    chains: list[list[Path]]
    transaction_time: str | None = None
    error_files: tuple[Path, ...] = ()
    expected_patients: int | None = None

    def stream(self, errors: ErrorLog) -> Iterator[Task]:
        for chain in self.chains:
            yield from block_tasks(chain)

    def by_type(self) -> ScreenInput | None:
        return None


def _local(url: str, folder: Path, manifest: Path) -> Path:
    parsed = urlparse(url)
    if parsed.scheme not in ("", "file"):
        raise InputError(f"{manifest}: output file {url} is not local; download the export first")
    target = Path(unquote(parsed.path)).resolve()
    if not target.is_relative_to(folder):
        raise InputError(f"{manifest}: output file {target.name} is outside the manifest's folder")
    if not target.is_file():
        raise InputError(f"{manifest}: output file {target.name} is missing")
    return target

"""The partition pass: stream every NDJSON line once and append it to the bucket file of its patient
(crc32(patient id) % N), prefixed with the patient id and a tab. Lines of types the engine never
reads are skipped before parsing; shared resources (Medication, Binary) go to one side file that
every bucket task reads. Memory is bounded by FLUSH_BYTES of buffered lines, whatever the size of
the input.

The input can be cut into chunks (`chunks`: byte ranges of the plain files, each gzip file whole)
that are partitioned apart, on the Dask workers (`smartapp/screening/shuffle.py`), each into its own
shard of bucket files; `partition` does the whole input in this process."""

from __future__ import annotations

import gzip
import math
import re
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fhirmaps import json_codec
from launch.bulk_manifest import GZIP_MAGIC
from smartapp.screening.errors import (
    EXAMPLES_PER_CAUSE,
    MALFORMED_LINE,
    NO_PATIENT_REFERENCE,
    NOT_A_RESOURCE,
    ErrorLog,
)
from smartapp.screening.patients import owner_id
from smartapp.screening.read_types import ReadTypes, read_types

BUCKET_BYTES = 128 * 1024 * 1024  # NDJSON per bucket task (~100–300 MB is the comfortable range)
FLUSH_BYTES = 32 * 1024 * 1024  # buffered lines before they are appended to the bucket files
SIDE_FILE = "shared.ndjson"
# The type of a line whose keys before resourceType all hold plain strings (resourceType first, as
# most Bulk Data servers write it, or after "id", as others do): read without parsing, since such a
# resourceType can only be the resource's own. Any other line is parsed to learn its type.
LEADING_TYPE = re.compile(
    rb'\A\s*\{(?:\s*"[A-Za-z_][A-Za-z0-9_]*"\s*:\s*"[^"\\]*(?:\\.[^"\\]*)*"\s*,){0,8}?\s*"resourceType"\s*:\s*"([A-Za-z]+)"'
)
BOM = b"\xef\xbb\xbf"


@dataclass
class Partition:
    work_dir: Path
    buckets: list[Path]  # the bucket files that received lines
    side: Path
    patients: int = 0  # Patient resources seen
    resources: int = 0  # lines written to buckets and the side file
    skipped: Counter[str] = field(default_factory=Counter)  # lines not read, by resource type


def bucket_count(estimated_bytes: int, workers: int, bucket_bytes: int = BUCKET_BYTES) -> int:
    return max(8 * max(1, workers), math.ceil(estimated_bytes / bucket_bytes))


def bucket_of(patient_id: str, n_buckets: int) -> int:
    return zlib.crc32(patient_id.encode("utf-8")) % n_buckets


@dataclass(frozen=True)
class Chunk:
    """The lines of `path` that start at a byte offset in [start, end); end None: to the file's end."""

    path: Path
    start: int = 0
    end: int | None = None


def chunks(files: Sequence[Path], chunk_bytes: int) -> list[Chunk]:
    """Each file cut into ranges of about `chunk_bytes`; a gzip file cannot be entered midway and is
    one chunk."""
    planned: list[Chunk] = []
    for path in files:
        size = path.stat().st_size
        if is_gzip(path) or size <= chunk_bytes:
            planned.append(Chunk(path))
            continue
        edges = list(range(0, size, chunk_bytes))
        planned.extend(Chunk(path, start, end) for start, end in zip(edges, [*edges[1:], None], strict=True))
    return planned


def partition(
    files: Sequence[Path], work_dir: Path, n_buckets: int, errors: ErrorLog, types: ReadTypes | None = None
) -> Partition:
    """The whole input in this process, in one pass: what `shuffle.partition_on_cluster` must give
    (tests/screening/test_shuffle.py holds it to that), for a caller without a cluster."""
    types = types or read_types()
    work_dir.mkdir(parents=True, exist_ok=True)
    writer = _BucketWriter(work_dir, n_buckets)
    result = Partition(work_dir=work_dir, buckets=[], side=writer.side)
    try:
        for path in files:
            for number, line in chunk_lines(Chunk(path)):
                failure = _route(line, types, writer, result)
                if failure is not None:
                    cause, what = failure
                    errors.add(cause, f"{what}{path.name} line {number}")
    finally:
        writer.flush()
    result.buckets = [writer.path(i) for i in sorted(writer.used)]
    return result


def partition_chunk(path: str, start: int, end: int | None, shard_dir: str, n_buckets: int) -> dict[str, Any]:
    """One chunk into its own shard of bucket files (the Dask task). Line numbers in the failures are
    counted from the chunk's first line; `lines` is how many lines start in the chunk, so the caller
    can number them in the whole file."""
    types = read_types()
    work_dir = Path(shard_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    writer = _BucketWriter(work_dir, n_buckets)
    result = Partition(work_dir=work_dir, buckets=[], side=writer.side)
    failures: dict[str, dict[str, Any]] = {}
    lines = 0
    try:
        for lines, line in chunk_lines(Chunk(Path(path), start, end), keep_count=True):
            if not line:
                continue
            failure = _route(line, types, writer, result)
            if failure is not None:
                cause, what = failure
                seen = failures.setdefault(cause, {"count": 0, "examples": []})
                seen["count"] += 1
                if len(seen["examples"]) < EXAMPLES_PER_CAUSE:
                    seen["examples"].append([what, lines])
    finally:
        writer.flush()
    return {
        "lines": lines,
        "patients": result.patients,
        "resources": result.resources,
        "skipped": dict(result.skipped),
        "used": sorted(writer.used),
        "failures": failures,
    }


def _route(line: bytes, types: ReadTypes, writer: _BucketWriter, result: Partition) -> tuple[str, str] | None:
    """Sends the line to its bucket (or skips it); a line that cannot be placed is returned as
    (cause, what to say before its file name and line number)."""
    leading = LEADING_TYPE.match(line)
    if leading and not types.wanted(leading.group(1).decode("ascii")):
        result.skipped[leading.group(1).decode("ascii")] += 1
        return None
    try:
        resource = json_codec.loads(line)
    except (ValueError, RecursionError):
        return MALFORMED_LINE, ""
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    if not isinstance(rtype, str):
        return NOT_A_RESOURCE, ""
    if not types.wanted(rtype):
        result.skipped[rtype] += 1
        return None
    if rtype in types.shared:
        writer.add(-1, line)
    else:
        patient_id = owner_id(resource)
        if not patient_id or "\t" in patient_id or "\n" in patient_id:
            return NO_PATIENT_REFERENCE, f"{rtype} in "
        result.patients += rtype == "Patient"
        # "<patient id>\t<line>": the bucket task groups raw lines without parsing them first.
        writer.add(bucket_of(patient_id, writer.n_buckets), patient_id.encode("utf-8") + b"\t" + line)
    result.resources += 1
    return None


def is_gzip(path: Path) -> bool:
    with path.open("rb") as probe:
        return probe.read(2) == GZIP_MAGIC


def chunk_lines(chunk: Chunk, keep_count: bool = False) -> Iterator[tuple[int, bytes]]:
    """(line number in the chunk, stripped line) for the lines that start in the chunk; blank lines
    are left out, or given as b"" when `keep_count` (so the caller sees every number)."""
    compressed = is_gzip(chunk.path)
    stream: IO[bytes] = gzip.open(chunk.path, "rb") if compressed else chunk.path.open("rb")  # type: ignore[assignment]
    with stream:
        if chunk.start > 0:
            # The line that holds byte start - 1 belongs to the chunk before (it ends at or after it).
            stream.seek(chunk.start - 1)
            stream.readline()
        position = stream.tell()
        number = 0
        for raw in stream:
            if chunk.end is not None and position >= chunk.end:
                break
            position += len(raw)
            number += 1
            line = raw.removeprefix(BOM).strip() if chunk.start == 0 and number == 1 else raw.strip()
            if line or keep_count:
                yield number, line


class _BucketWriter:
    """Buffers lines per bucket and appends them to the bucket files when FLUSH_BYTES is reached."""

    def __init__(self, work_dir: Path, n_buckets: int) -> None:
        self.work_dir = work_dir
        self.n_buckets = n_buckets
        self.side = work_dir / SIDE_FILE
        self.side.write_bytes(b"")
        self.used: set[int] = set()
        self._buffers: dict[int, list[bytes]] = {}
        self._size = 0

    def path(self, bucket: int) -> Path:
        return self.side if bucket < 0 else self.work_dir / f"bucket-{bucket:05d}.ndjson"

    def add(self, bucket: int, line: bytes) -> None:
        self._buffers.setdefault(bucket, []).append(line)
        self._size += len(line) + 1
        if self._size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        for bucket, lines in self._buffers.items():
            with self.path(bucket).open("ab") as out:
                out.write(b"\n".join(lines) + b"\n")
            if bucket >= 0:
                self.used.add(bucket)
        self._buffers.clear()
        self._size = 0

"""The partition pass: stream every NDJSON line once and append it to the bucket file of its patient
(crc32(patient id) % N), prefixed with the patient id and a tab. Lines of types the engine never
reads are skipped before parsing; shared resources (Medication, Binary) go to one side file that
every bucket task reads. Memory is bounded by FLUSH_BYTES of buffered lines, whatever the size of
the input."""

from __future__ import annotations

import gzip
import math
import re
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fhirmaps import json_codec
from launch.bulk_manifest import GZIP_MAGIC
from smartapp.screening.errors import MALFORMED_LINE, NO_PATIENT_REFERENCE, NOT_A_RESOURCE, ErrorLog
from smartapp.screening.patients import owner_id
from smartapp.screening.read_types import ReadTypes, read_types

BUCKET_BYTES = 128 * 1024 * 1024  # NDJSON per bucket task (~100–300 MB is the comfortable range)
FLUSH_BYTES = 32 * 1024 * 1024  # buffered lines before they are appended to the bucket files
SIDE_FILE = "shared.ndjson"
# The type of a line whose first key is resourceType (as Bulk Data servers write them): read
# without parsing. Any other line is parsed to learn its type.
_LEADING_TYPE = re.compile(rb'\A\s*\{\s*"resourceType"\s*:\s*"([A-Za-z]+)"')
_BOM = b"\xef\xbb\xbf"


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


def partition(
    files: Sequence[Path], work_dir: Path, n_buckets: int, errors: ErrorLog, types: ReadTypes | None = None
) -> Partition:
    types = types or read_types()
    work_dir.mkdir(parents=True, exist_ok=True)
    writer = _BucketWriter(work_dir, n_buckets)
    result = Partition(work_dir=work_dir, buckets=[], side=writer.side)
    try:
        for path in files:
            for number, line in _lines(path):
                _route(path.name, number, line, types, writer, result, errors)
    finally:
        writer.flush()
    result.buckets = [writer.path(i) for i in sorted(writer.used)]
    return result


def _route(
    name: str,
    number: int,
    line: bytes,
    types: ReadTypes,
    writer: _BucketWriter,
    result: Partition,
    errors: ErrorLog,
) -> None:
    leading = _LEADING_TYPE.match(line)
    if leading and not types.wanted(leading.group(1).decode("ascii")):
        result.skipped[leading.group(1).decode("ascii")] += 1
        return
    try:
        resource = json_codec.loads(line)
    except (ValueError, RecursionError):
        errors.add(MALFORMED_LINE, f"{name} line {number}")
        return
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    if not isinstance(rtype, str):
        errors.add(NOT_A_RESOURCE, f"{name} line {number}")
        return
    if not types.wanted(rtype):
        result.skipped[rtype] += 1
        return
    if rtype in types.shared:
        writer.add(-1, line)
    else:
        patient_id = owner_id(resource)
        if not patient_id or "\t" in patient_id or "\n" in patient_id:
            errors.add(NO_PATIENT_REFERENCE, f"{rtype} in {name} line {number}")
            return
        result.patients += rtype == "Patient"
        # "<patient id>\t<line>": the bucket task groups raw lines without parsing them first.
        writer.add(bucket_of(patient_id, writer.n_buckets), patient_id.encode("utf-8") + b"\t" + line)
    result.resources += 1


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    stream: IO[bytes] = gzip.open(path, "rb") if compressed else path.open("rb")  # type: ignore[assignment]
    with stream:
        for number, raw in enumerate(stream, start=1):
            line = raw.removeprefix(_BOM).strip() if number == 1 else raw.strip()
            if line:
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

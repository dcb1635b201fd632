"""The task for an export organized by patient (Bulk Data 3.0 `organizeOutputBy=Patient`): its files
hold resource blocks, each a header Parameters resource naming the patient followed by that
patient's resources, so a file is screened as it is, without the partition pass.

A block may go on in the next file (the manifest's `continuesInFile`, the header repeated there):
such files are screened together, in order, by one task. Lines of types the engine never reads are
skipped before parsing, as the partition pass skips them. Resources in no patient's compartment
(a Medication) may be in any block, or repeated in every one (the spec allows both): as with the
side file of the partition pass, each patient gets those of its file that it refers to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

from fhirmaps import json_codec
from launch.bulk_manifest import ManifestFile
from smartapp.screening.bucket import screen_groups, settle_worker
from smartapp.screening.errors import MALFORMED_LINE, NOT_A_RESOURCE, OUTSIDE_BLOCK, ErrorLog
from smartapp.screening.partition import BOM, LEADING_TYPE, Chunk, chunk_lines, is_gzip
from smartapp.screening.read_types import read_types
from smartapp.screening.search import lines_containing
from smartapp.screening.texts import Texts, read_texts

HEADER_TYPE = "Parameters"
# A file of blocks larger than this is screened by several tasks (byte ranges at block headers), so
# a server that writes its whole export into one file still spreads over the workers.
TASK_BYTES = 2 * 1024 * 1024
HEADER_NEEDLE = b'"Parameters"'  # in every block header line (searched for, then parsed)
Chain = list[Path]  # a file of patient blocks and the files its last block continues in
Task = tuple[Chain, int, int | None]  # a chain, and the byte range of its file whose blocks it takes


def screen_blocks(
    paths: list[str], as_of: date, rare_definition: str = "rarecare", start: int = 0, end: int | None = None
) -> dict[str, Any]:
    """The files of one `continuesInFile` chain (usually one file), or of one file the blocks whose
    header starts at a byte in [start, end) (`block_tasks`). Returns what `screen_bucket` returns,
    plus "patients_seen" (Patient resources read) and "skipped" (lines not read, by type)."""
    settle_worker()
    errors = ErrorLog()
    groups: dict[str, list[bytes]] = {}
    shared: dict[str, dict[str, Any]] = {}
    texts: Texts = {}
    skipped: Counter[str] = Counter()
    count = seen = 0
    types = read_types()
    for name in paths:
        path = Path(name)
        texts.update(read_texts(path))
        current: str | None = None
        for where, line, past_end in _block_lines(path, start, end):
            leading = LEADING_TYPE.match(line)
            rtype = leading.group(1).decode("ascii") if leading else None
            if rtype is not None and rtype != HEADER_TYPE and not types.wanted(rtype):
                if current is not None:
                    skipped[rtype] += 1
                continue
            if rtype is None or rtype == HEADER_TYPE or rtype in types.shared:
                try:
                    resource = json_codec.loads(line)
                except (ValueError, RecursionError):
                    if current is not None or start == 0:
                        errors.add(MALFORMED_LINE, f"{path.name} {where}")
                    continue
                rtype = resource.get("resourceType") if isinstance(resource, dict) else None
                if not isinstance(rtype, str):
                    if current is not None or start == 0:
                        errors.add(NOT_A_RESOURCE, f"{path.name} {where}")
                    continue
                if rtype == HEADER_TYPE:
                    if past_end:  # the next block is the next task's
                        break
                    current = header_patient(resource)
                    if current is None:
                        errors.add(OUTSIDE_BLOCK, f"header naming no patient: {path.name} {where}")
                    continue
                if not types.wanted(rtype):
                    if current is not None:
                        skipped[rtype] += 1
                    continue
                if rtype in types.shared:
                    if current is not None or start == 0:
                        shared[f"{rtype}/{resource.get('id')}"] = resource
                        count += 1
                    continue
            if current is None:
                if start == 0:  # in a later range, the lines of the block the range before reads
                    errors.add(OUTSIDE_BLOCK, f"{rtype} before any block header: {path.name} {where}")
                continue
            groups.setdefault(current, []).append(line)
            count += 1
            seen += rtype == "Patient"
    label = Path(paths[0]).name if paths else ""
    patients = screen_groups(groups, shared, texts, label, as_of, rare_definition, errors)
    return {
        "patients": patients,
        "resources": count,
        "patients_seen": seen,
        "skipped": dict(skipped),
        "errors": errors.as_json(),
    }


def block_tasks(chain: Chain, task_bytes: int = TASK_BYTES) -> list[Task]:
    """The tasks a chain is screened in (`tasks_at`, the file's headers found here)."""
    if len(chain) != 1 or is_gzip(chain[0]) or chain[0].stat().st_size <= task_bytes:
        return [(chain, 0, None)]
    with chain[0].open("rb") as source:
        return tasks_at(chain, header_offsets(source), task_bytes)


def tasks_at(chain: Chain, headers: list[tuple[int, str]], task_bytes: int = TASK_BYTES) -> list[Task]:
    """(files, start, end) of the tasks a chain is screened in, given the block headers (byte
    offset, patient id) of its file. A plain file larger than `task_bytes` is cut at block headers
    into ranges of about that size (each task takes the blocks whose header starts in its range),
    so a server's one-file export still spreads over the workers. A chain of several files, a gzip
    file, and a file that has two blocks for one patient (a task could not put them together) are
    one task."""
    if len(chain) != 1 or is_gzip(chain[0]) or chain[0].stat().st_size <= task_bytes:
        return [(chain, 0, None)]
    if len({patient for _, patient in headers}) < len(headers):
        return [(chain, 0, None)]
    edges = [0]
    for offset, _ in headers:
        if offset - edges[-1] >= task_bytes:
            edges.append(offset)
    return [(chain, start, end) for start, end in zip(edges, [*edges[1:], None], strict=True)]


def header_offsets(source: BinaryIO) -> list[tuple[int, str]]:
    """(byte offset, patient id) of the block header lines of a file, found by searching its bytes
    for "Parameters" (only those lines are parsed)."""
    return [
        (offset, patient)
        for _, offset, line in lines_containing(source, (HEADER_NEEDLE,))
        if (patient := header_at(line)) is not None
    ]


def header_at(line: bytes) -> str | None:
    """The patient a line names when it is a block header."""
    try:
        resource = json_codec.loads(line)
    except (ValueError, RecursionError):
        return None
    if isinstance(resource, dict) and resource.get("resourceType") == HEADER_TYPE:
        return header_patient(resource)
    return None


def _block_lines(path: Path, start: int, end: int | None) -> Iterator[tuple[str, bytes, bool]]:
    """(where, stripped line, starts at or after `end`) for the lines from the first that starts at
    or after `start` to the end of the file (the caller stops at the first header past `end`).
    `where` names the line for errors: its number in a whole file, its byte offset in a range."""
    if start == 0 and end is None:
        for number, line in chunk_lines(Chunk(path)):
            yield f"line {number}", line, False
        return
    with path.open("rb") as stream:
        if start > 0:  # the line that holds byte start - 1 is the range before's
            stream.seek(start - 1)
            stream.readline()
        position = stream.tell()
        for raw in stream:
            line = raw.removeprefix(BOM).strip() if position == 0 else raw.strip()
            if line:
                yield f"byte {position}", line, end is not None and position >= end
            position += len(raw)


def header_patient(resource: dict[str, Any]) -> str | None:
    """The patient id a block header names ("Patient/<id>", relative or absolute), or None."""
    for parameter in resource.get("parameter") or []:
        if not isinstance(parameter, dict) or parameter.get("name") != "header":
            continue
        value = parameter.get("valueReference")
        reference = value.get("reference") if isinstance(value, dict) else None
        if isinstance(reference, str):
            parts = reference.split("/_history/")[0].rstrip("/").split("/")
            if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1] and "\t" not in parts[-1]:
                return parts[-1]
    return None


def complete_chains(
    files: tuple[ManifestFile, ...], paths: dict[str, Path], emitted: set[str], final: bool
) -> list[Chain]:
    """The chains of `files` (a file, and the files its last block continues in) whose files are
    all downloaded (`paths`: URL -> local file) and not yet given (`emitted`, URLs, updated). Once
    the export is `final`, every file not yet given is: a chain with the files that could be
    downloaded (the caller counts the others), and files a `continuesInFile` loop left unreached."""
    continued = {file.continues_in for file in files if file.continues_in}
    by_url = {file.url: file for file in files}
    starts = [file for file in files if file.url not in continued]
    if final:
        starts += [file for file in files if file.url in continued]
    chains: list[Chain] = []
    for first in starts:
        if first.url in emitted:
            continue
        chain, listed = [first], True
        while (following := chain[-1].continues_in) is not None:
            nxt = by_url.get(following)
            if nxt is None:
                listed = False  # its continuation is not listed yet
                break
            if nxt in chain or nxt.url in emitted:
                break  # a loop ends the chain
            chain.append(nxt)
        if final or (listed and all(file.url in paths for file in chain)):
            emitted.update(file.url for file in chain)
            local = [paths[file.url] for file in chain if file.url in paths]
            if local:
                chains.append(local)
    return chains

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
from datetime import date
from pathlib import Path
from typing import Any

from fhirmaps import json_codec
from launch.bulk_manifest import ManifestFile
from smartapp.screening.bucket import screen_groups, settle_worker
from smartapp.screening.errors import MALFORMED_LINE, NOT_A_RESOURCE, OUTSIDE_BLOCK, ErrorLog
from smartapp.screening.partition import LEADING_TYPE, Chunk, chunk_lines
from smartapp.screening.read_types import read_types
from smartapp.screening.texts import Texts, read_texts

HEADER_TYPE = "Parameters"
Chain = list[Path]  # a file of patient blocks and the files its last block continues in


def screen_blocks(paths: list[str], as_of: date, rare_definition: str = "rarecare") -> dict[str, Any]:
    """The files of one `continuesInFile` chain (usually one file). Returns what `screen_bucket`
    returns, plus "patients_seen" (Patient resources read) and "skipped" (lines not read, by type)."""
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
        for number, line in chunk_lines(Chunk(path)):
            leading = LEADING_TYPE.match(line)
            rtype = leading.group(1).decode("ascii") if leading else None
            if rtype is not None and rtype != HEADER_TYPE and not types.wanted(rtype):
                skipped[rtype] += 1
                continue
            if rtype is None or rtype == HEADER_TYPE or rtype in types.shared:
                try:
                    resource = json_codec.loads(line)
                except (ValueError, RecursionError):
                    errors.add(MALFORMED_LINE, f"{path.name} line {number}")
                    continue
                rtype = resource.get("resourceType") if isinstance(resource, dict) else None
                if not isinstance(rtype, str):
                    errors.add(NOT_A_RESOURCE, f"{path.name} line {number}")
                    continue
                if rtype == HEADER_TYPE:
                    current = header_patient(resource)
                    if current is None:
                        errors.add(OUTSIDE_BLOCK, f"header naming no patient: {path.name} line {number}")
                    continue
                if not types.wanted(rtype):
                    skipped[rtype] += 1
                    continue
                if rtype in types.shared:
                    shared[f"{rtype}/{resource.get('id')}"] = resource
                    count += 1
                    continue
            if current is None:
                errors.add(OUTSIDE_BLOCK, f"{rtype} before any block header: {path.name} line {number}")
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

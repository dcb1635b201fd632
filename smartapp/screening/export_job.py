"""The bulk export a download folder belongs to: its request and status URL, kept in the folder so
that a screen interrupted while the export runs (or while its files download) picks the same
export up on the next run instead of starting another one on the EHR. And which request is sent:
the leanest one the EHR accepts (`types_first`, `resume_or_start`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from launch.bulk_export import BulkExportClient, ExportRequest, PartialCallback, ProgressCallback
from launch.bulk_manifest import Manifest
from launch.errors import FatalFhirError
from smartapp.screening.read_types import read_types

JOB_FILE = "export-job.json"


# The downloads are patients' records in clear text while a screen runs (and after an interrupted
# one, for the resume): only the account running SecondLook may enter the folders that hold them.
PRIVATE = 0o700


def private_folder(folder: Path) -> Path:
    """`folder`, created if missing, with mode 0700 even when it existed with a wider one."""
    folder.mkdir(mode=PRIVATE, parents=True, exist_ok=True)
    folder.chmod(PRIVATE)
    return folder


def export_folder(root: Path, source: str, group_id: str, since: str | None) -> Path:
    """The download folder of one screen (EHR, group, since), private to this account: the same on
    a re-run, so an interrupted export and its finished files are found again."""
    digest = hashlib.sha256(f"{source}\n{group_id}\n{since or ''}".encode()).hexdigest()[:16]
    exports = private_folder(root / "secondlook-exports")
    return private_folder(exports / digest)


class ExportJob:
    def __init__(self, folder: Path) -> None:
        self.path = folder / JOB_FILE

    @staticmethod
    def key(request: ExportRequest) -> dict[str, object]:
        plain: dict[str, object] = json.loads(json.dumps(dataclasses.asdict(request), default=list))
        return plain

    def status_url(self, request: ExportRequest) -> str | None:
        """The status URL of this folder's export of `request`, or None (none, or another request)."""
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("request") != self.key(request):
            return None
        url = saved.get("status_url")
        return url if isinstance(url, str) and url else None

    def remember(self, request: ExportRequest, status_url: str) -> None:
        private_folder(self.path.parent)
        partial = self.path.with_suffix(".part")
        partial.write_text(
            json.dumps({"request": self.key(request), "status_url": status_url}), encoding="utf-8"
        )
        os.replace(partial, self.path)

    def forget(self) -> None:
        """The export is gone: so are the files downloaded for it (a new export numbers its files
        anew, and a finished file of the old one must not be taken for the new one's)."""
        folder = self.path.parent
        if folder.exists():
            shutil.rmtree(folder)
        private_folder(folder)


def types_first(*requests: ExportRequest) -> list[ExportRequest]:
    """`requests` asking only for the types the engine reads (`_type`: no Claims, no
    ExplanationOfBenefits, which are half of a Synthea export), then as given for an EHR that
    refuses that; for `resume_or_start`."""
    types = read_types().requested()
    return [dataclasses.replace(request, types=types) for request in requests] + list(requests)


# A kick-off refused for its parameters (the spec asks a server that cannot honour one to say so),
# or for a `_type` naming a type the token's scopes do not cover (403: such a server refuses the
# list rather than leave the type out): asked again with the next, plainer request. A token that
# may not export at all is refused that too, and the last refusal is the one reported.
REFUSALS = (400, 403, 422)


async def resume_or_start(
    client: BulkExportClient,
    requests: Sequence[ExportRequest],
    dest: Path,
    on_progress: ProgressCallback | None = None,
    on_partial: PartialCallback | None = None,
) -> Manifest:
    """The export's manifest. `requests` go from the leanest to the plainest; the first one the EHR
    accepts is exported. An export this folder started earlier (the run was interrupted while it
    ran on the EHR, or while its files were downloading) is picked up by its status URL instead of
    being started again; one the EHR no longer knows is started anew."""
    job = ExportJob(dest)
    earlier = next((url for request in requests if (url := job.status_url(request)) is not None), None)
    if earlier is not None:
        try:
            return await client.wait_for_manifest(earlier, on_progress, on_partial)
        except FatalFhirError as gone:
            sys.stderr.write(
                f"secondlook screen: the earlier export is no longer available ({gone}); starting anew\n"
            )
            job.forget()
    request, status_url = await _kick_off(client, requests)
    job.remember(request, status_url)
    return await client.wait_for_manifest(status_url, on_progress, on_partial)


async def _kick_off(client: BulkExportClient, requests: Sequence[ExportRequest]) -> tuple[ExportRequest, str]:
    """The first of `requests` the EHR accepts, with its status URL; the last refusal is raised."""
    *leaner, plainest = requests
    for request, plainer in zip(leaner, requests[1:], strict=True):
        try:
            return request, await client.kick_off(request)
        except FatalFhirError as refused:
            if refused.status not in REFUSALS:
                raise
            sys.stderr.write(
                f"secondlook screen: {str(refused).rstrip('.')}; "
                f"asking again without {_dropped(request, plainer)}\n"
            )
    return plainest, await client.kick_off(plainest)


def _dropped(request: ExportRequest, plainer: ExportRequest) -> str:
    """The parameters `request` has and `plainer` has not, as the EHR names them."""
    plain = {name for name, _ in plainer.query()}
    names = list(dict.fromkeys(name for name, _ in request.query() if name not in plain))
    return ", ".join(names)

"""A Bulk export's downloads (patients' records in clear text) sit in folders only the account
running SecondLook may enter, also when the folders existed before with wider modes."""

from __future__ import annotations

import stat
from pathlib import Path

from launch.bulk_export import ExportRequest
from smartapp.screening.export_job import ExportJob, export_folder


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_download_folders_are_private_even_when_they_existed_wider(tmp_path: Path) -> None:
    (tmp_path / "secondlook-exports").mkdir(mode=0o755)
    (tmp_path / "secondlook-exports").chmod(0o755)
    folder = export_folder(tmp_path, "https://ehr.example/fhir", "onc-clinic", None)
    assert folder.parent == tmp_path / "secondlook-exports"
    assert mode(folder) == 0o700 and mode(folder.parent) == 0o700
    assert export_folder(tmp_path, "https://ehr.example/fhir", "onc-clinic", None) == folder  # resumable
    assert export_folder(tmp_path, "https://ehr.example/fhir", "other-group", None) != folder


def test_a_forgotten_export_leaves_an_empty_private_folder(tmp_path: Path) -> None:
    folder = export_folder(tmp_path, "https://ehr.example/fhir", "onc-clinic", None)
    job = ExportJob(folder)
    job.remember(ExportRequest(level="group", group_id="onc-clinic"), "https://ehr.example/status/1")
    (folder / "Patient.000.ndjson").write_text("{}\n")
    job.forget()
    assert list(folder.iterdir()) == [] and mode(folder) == 0o700

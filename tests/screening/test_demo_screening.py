"""`secondlook demo` fills the coordinator's worklist with no configuration: the demo EHR's
oncology clinic is exported through Backend Services and Bulk Data and screened on Dask."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from demo_ehr.groups import ONCOLOGY_CLINIC_ID
from demo_ehr.screening import screen_demo_population
from demo_ehr.stack import build_demo
from distributed import Client
from sqlalchemy import select

from launch.fhir_client import FhirClient
from smartapp.db import create_sync_engine
from smartapp.screening.bulk_source import export_group
from smartapp.screening.errors import ErrorLog
from smartapp.screening.pipeline import ScreenOptions, run_screen
from smartapp.worklist.tables import screening_runs, worklist_entries
from tests.support import app_cipher, free_port, serve_in_thread


def test_the_demo_populates_the_worklist_from_its_oncology_clinic(tmp_path: Path, capsys) -> None:
    ehr_port, app_port = free_port(), free_port()
    stack = build_demo("127.0.0.1", ehr_port, app_port, 0, tmp_path, patients=12)
    with serve_in_thread(stack.ehr.app, ehr_port), serve_in_thread(stack.app.app, app_port):
        cipher = app_cipher(stack.settings.database_url)
        screen_demo_population(
            stack.registration, stack.settings.database_url, cipher, tmp_path / "screening"
        )
    assert "Demo worklist ready" in capsys.readouterr().out
    engine = create_sync_engine(stack.settings.database_url, cipher)
    with engine.connect() as conn:
        runs = conn.execute(select(screening_runs)).mappings().all()
        entries = conn.execute(select(worklist_entries)).mappings().all()
    engine.dispose()
    assert [r["status"] for r in runs] == ["finished"] and runs[0]["source"] == stack.registration.iss
    members = stack.ehr.app.state.demo_ehr.resources.get("Group", "oncology-clinic")["member"]
    assert {e["patient_id"] for e in entries} == {m["entity"]["reference"].split("/")[1] for m in members}
    flagged = [e for e in entries if e["finding_count"] > 0]
    assert flagged, "the demo's oncology stories must put patients on the worklist"
    assert all(json.loads(e["result_json"])["findings"] for e in flagged)


def test_report_texts_read_in_batches_give_the_worklist_single_reads_give(
    tmp_path: Path, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo EHR offers batch: its oncology clinic screened with the texts read 64 to a batch
    and again with single reads gives the same result for every patient."""
    batches: list[int] = []
    batch = FhirClient.batch

    async def counted(self: FhirClient, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        batches.append(len(entries))
        return await batch(self, entries)

    async def refused(self: FhirClient) -> bool:
        return False

    monkeypatch.setattr(FhirClient, "batch", counted)
    ehr_port, app_port = free_port(), free_port()
    stack = build_demo("127.0.0.1", ehr_port, app_port, 0, tmp_path, patients=12)
    results: dict[str, dict[str, Any]] = {}
    sent = 0
    with serve_in_thread(stack.ehr.app, ehr_port), serve_in_thread(stack.app.app, app_port):
        for mode in ("batch", "single"):
            if mode == "single":
                monkeypatch.setattr(FhirClient, "supports_batch", refused)
            url = f"sqlite:///{tmp_path / f'{mode}.db'}"
            cipher = app_cipher(url)
            errors = ErrorLog()
            screen_input = export_group(stack.registration, ONCOLOGY_CLINIC_ID, None, tmp_path / mode, errors)
            options = ScreenOptions(as_of=date(2026, 3, 1), database_url=url, cipher=cipher)
            outcome = run_screen(screen_input, options, client=client, errors=errors)
            assert outcome.patients > 0 and "attachment-failed" not in outcome.errors.counts
            engine = create_sync_engine(url, cipher)
            with engine.connect() as conn:
                entries = conn.execute(select(worklist_entries)).mappings().all()
            engine.dispose()
            results[mode] = {e["patient_id"]: json.loads(e["result_json"]) for e in entries}
            if mode == "batch":
                assert batches and max(batches) > 1  # the texts did travel in batches
                sent = len(batches)
    assert len(batches) == sent  # none with single reads
    assert results["batch"] == results["single"]
    assert any(result["findings"] for result in results["batch"].values())

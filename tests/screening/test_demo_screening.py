"""`secondlook demo` fills the coordinator's worklist with no configuration: the demo EHR's
oncology clinic is exported through Backend Services and Bulk Data and screened on Dask."""

from __future__ import annotations

import json
from pathlib import Path

from demo_ehr.screening import screen_demo_population
from demo_ehr.stack import build_demo
from sqlalchemy import select

from smartapp.db import create_sync_engine
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

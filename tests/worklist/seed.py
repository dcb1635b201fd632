"""Worklist rows written straight into the app's database, as the screening run would leave them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from smartapp.db import create_sync_engine
from smartapp.worklist.tables import screening_runs, worklist_audit, worklist_entries
from tests.support import app_cipher

OTHER_SOURCE = "https://other-ehr.example/fhir"
OLD_RUN, NEW_RUN = "run-1", "run-2"
# patient id -> (name, triggers, urgency, time-critical, change, status, groups, last run)
ENTRIES: dict[str, tuple[str, str, str, bool, str, str, list[str], str]] = {
    # Time-critical but screened in the older run: still first.
    "demo-aml": ("Ana Leukos", "rare-cancer", "expedite", True, "new", "new", ["oncology-clinic"], OLD_RUN),
    "demo-gist": (
        "Gustav Ist",
        "rare-cancer discordant-findings uncertain-pathology",
        "expedite",
        False,
        "changed",
        "reviewed",
        ["tumor-board-2026-12-08", "oncology-clinic"],
        NEW_RUN,
    ),
    "demo-crc-metastatic": (
        "Carl Colon",
        "not-responding",
        "routine",
        False,
        "new",
        "new",
        ["tumor-board-2026-12-08"],
        NEW_RUN,
    ),
    "demo-her2-ihc2": (
        "Hera Two",
        "incomplete-biomarker",
        "routine",
        False,
        "unchanged",
        "referral-drafted",
        ["oncology-clinic", "Brustzentrum Süd"],
        OLD_RUN,
    ),
    "demo-formula": (
        '=HYPERLINK("http://evil.example","x")',
        "patient-request",
        "routine",
        False,
        "unchanged",
        "dismissed",
        ["-2+3"],
        OLD_RUN,
    ),
    # Screened, nothing found: not on the worklist.
    "demo-benign-adh": ("Bea Nign", "", "routine", False, "unchanged", "new", ["oncology-clinic"], NEW_RUN),
}
FLAGGED = {pid for pid, entry in ENTRIES.items() if entry[1]}


def engine_for(data_dir: Path) -> Engine:
    """The test app's database (tests/web/conftest.py), with the app's keys."""
    url = f"sqlite:///{data_dir / 'app.db'}"
    return create_sync_engine(url, app_cipher(url))


def seed(data_dir: Path, source: str) -> None:
    engine = engine_for(data_dir)
    with engine.begin() as conn:
        conn.execute(
            insert(screening_runs).values(
                id=OLD_RUN,
                source=source,
                as_of=date(2026, 11, 20),
                started_at=datetime(2026, 11, 20, 8, tzinfo=UTC),
                finished_at=datetime(2026, 11, 20, 9, tzinfo=UTC),
                status="finished",
                patients_total=6,
                patients_done=6,
                resources=1200,
                errors_json="{}",
            )
        )
        conn.execute(
            insert(screening_runs).values(
                id=NEW_RUN,
                source=source,
                as_of=date(2026, 12, 4),
                started_at=datetime(2026, 12, 4, 8, tzinfo=UTC),
                status="running",
                patients_total=100,
                patients_done=40,
                resources=9000,
                errors_json=json.dumps(
                    {
                        "malformed-ndjson-line": 2,
                        "validation": {"count": 3, "examples": ["Observation.value: bad"]},
                    }
                ),
            )
        )
        # Another EHR's worklist: never shown to this EHR's coordinators.
        conn.execute(
            insert(screening_runs).values(
                id="run-other",
                source=OTHER_SOURCE,
                as_of=date(2026, 12, 5),
                started_at=datetime(2026, 12, 5, 8, tzinfo=UTC),
                status="finished",
                patients_total=1,
                patients_done=1,
                resources=10,
                errors_json="{}",
            )
        )
        for pid, (name, triggers, urgency, critical, change, status, groups, run) in ENTRIES.items():
            conn.execute(
                insert(worklist_entries).values(
                    **_entry(source, pid, name, triggers, urgency, critical, change, status, groups, run)
                )
            )
        conn.execute(
            insert(worklist_entries).values(
                **_entry(
                    OTHER_SOURCE,
                    "demo-pancreas",
                    "Other Ehr",
                    "stopping-treatment",
                    "expedite",
                    True,
                    "new",
                    "new",
                    ["oncology-clinic"],
                    "run-other",
                )
            )
        )
    engine.dispose()


def _entry(
    source: str,
    pid: str,
    name: str,
    triggers: str,
    urgency: str,
    critical: bool,
    change: str,
    status: str,
    groups: list[str],
    run: str,
) -> dict[str, Any]:
    findings = [
        {"trigger": t, "urgency": urgency, "summary": "", "rationale": "", "evidence": []}
        for t in triggers.split()
    ]
    return {
        "source": source,
        "patient_id": pid,
        "display_name": name,
        "birth_date": date(1970, 1, 2),
        "result_json": json.dumps(
            {"patient": f"Patient/{pid}", "time_critical": None, "findings": findings, "data_issues": []}
        ),
        "triggers": triggers,
        "finding_count": len(findings),
        "urgency": urgency,
        "time_critical": critical,
        "fingerprint": "0" * 64,
        "change": change,
        "status": status,
        "groups_json": json.dumps(groups, ensure_ascii=False),
        "first_run_id": OLD_RUN if run != "run-other" else run,
        "last_run_id": run,
        "updated_at": datetime(2026, 12, 4, 9, tzinfo=UTC),
    }


def statuses(data_dir: Path, source: str) -> dict[str, str]:
    engine = engine_for(data_dir)
    with engine.connect() as conn:
        rows = conn.execute(
            select(worklist_entries.c.patient_id, worklist_entries.c.status).where(
                worklist_entries.c.source == source
            )
        ).all()
    engine.dispose()
    return dict((pid, status) for pid, status in rows)


def audit_rows(data_dir: Path) -> list[dict[str, Any]]:
    engine = engine_for(data_dir)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(worklist_audit).order_by(worklist_audit.c.id))]
    engine.dispose()
    return rows


def clear_audit(data_dir: Path) -> None:
    engine = engine_for(data_dir)
    with engine.begin() as conn:
        conn.execute(delete(worklist_audit))
    engine.dispose()

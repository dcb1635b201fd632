"""`secondlook screen` end to end on a real 2-worker Dask LocalCluster and a SQLite worklist."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from datetime import date
from pathlib import Path
from typing import Any

import psutil
import pytest
from distributed import Client, LocalCluster, Worker
from sqlalchemy import Engine, select, update

from smartapp.cli.main import main
from smartapp.db import create_sync_engine
from smartapp.screening.cluster import local_cluster
from smartapp.screening.inputs import resolve_input
from smartapp.screening.pipeline import ScreenOptions, ScreenOutcome, run_screen
from smartapp.worklist.tables import screening_runs, worklist_entries
from tests.screening.export import write_export
from tests.support import app_cipher

AS_OF = date(2026, 3, 1)


def _screen(export: Path, db: Path, client: Client, **kwargs: Any) -> ScreenOutcome:
    url = f"sqlite:///{db}"
    options = ScreenOptions(as_of=AS_OF, database_url=url, cipher=app_cipher(url), **kwargs)
    return run_screen(resolve_input(export), options, client=client)


def _engine(db: Path) -> Engine:
    """The worklist database with the keys `secondlook screen` uses (the development key)."""
    return create_sync_engine(f"sqlite:///{db}", app_cipher(f"sqlite:///{db}"))


def _entries(db: Path) -> dict[str, Any]:
    with _engine(db).connect() as conn:
        return {row.patient_id: row for row in conn.execute(select(worklist_entries))}


def _runs(db: Path) -> list[Any]:
    with _engine(db).connect() as conn:
        return list(conn.execute(select(screening_runs).order_by(screening_runs.c.started_at)))


def _set_status(db: Path, patient_id: str, status: str) -> None:
    with _engine(db).begin() as conn:
        conn.execute(
            update(worklist_entries).where(worklist_entries.c.patient_id == patient_id).values(status=status)
        )


def test_cli_prints_flagged_patients_and_the_run_and_writes_the_worklist(
    tmp_path: Path, cluster: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    export = write_export(tmp_path / "export")
    db = tmp_path / "wl.db"
    code = main(
        [
            "screen",
            str(export),
            "--as-of",
            "2026-03-01",
            "--format",
            "json",
            "--scheduler",
            cluster.scheduler_address,
            "--database-url",
            f"sqlite+aiosqlite:///{db}",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    assert set(document) == {"patients", "run"}
    assert set(document["run"]) == {"id", "patients", "resources", "seconds", "errors"}
    assert document["run"]["patients"] == 4
    assert (
        document["run"]["resources"] == 11
    )  # 3 Patients, 4 Conditions, 2 Observations, 1 MedicationRequest, 1 Medication
    assert document["run"]["errors"] == {
        "malformed-line": 1,
        "no-patient-reference": 1,
        "patient-not-in-export": 1,
    }
    shown = {p["patient"]: p for p in document["patients"]}
    assert set(shown) == {"Patient/p-rare", "Patient/p-ghost", "Patient/p-her2"}  # p-none has nothing to show
    # The Medication of the shared side file reached p-her2's bucket: anti-HER2 therapy is seen.
    assert "guideline-deviation" not in [f["trigger"] for f in shown["Patient/p-her2"]["findings"]]
    assert set(shown["Patient/p-rare"]) >= {"patient", "time_critical", "findings", "data_issues"}
    assert [f["trigger"] for f in shown["Patient/p-rare"]["findings"]] == ["rare-cancer"]
    assert set(shown["Patient/p-rare"]["findings"][0]["evidence"][0]) >= {"reference", "path", "text"}
    entries = _entries(db)
    assert set(entries) == {"p-rare", "p-none", "p-her2", "p-ghost"}
    rare = entries["p-rare"]
    assert (rare.triggers, rare.finding_count, rare.change, rare.status) == ("rare-cancer", 1, "new", "new")
    assert rare.display_name == "Ada Rare" and rare.birth_date == date(1960, 5, 1)
    assert rare.source == f"file:{export.resolve()}"
    assert json.loads(rare.result_json)["patient"] == "Patient/p-rare"
    assert entries["p-none"].finding_count == 0 and "guideline-deviation" not in entries["p-her2"].triggers
    [run] = _runs(db)
    assert (run.status, run.patients_total, run.patients_done, run.resources) == ("finished", 3, 4, 11)
    assert json.loads(run.errors_json)["counts"]["malformed-line"] == 1
    assert "Ada" not in run.errors_json and "p-rare" not in run.errors_json


def test_text_format_lists_findings_and_the_run_line(
    tmp_path: Path, cluster: LocalCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    export = write_export(tmp_path / "export")
    assert (
        main(
            [
                "screen",
                str(export),
                "--as-of",
                "2026-03-01",
                "--format",
                "text",
                "--scheduler",
                cluster.scheduler_address,
                "--database-url",
                f"sqlite:///{tmp_path / 'wl.db'}",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Patient/p-rare\n  [routine] rare-cancer:" in out
    assert re.search(
        r"^run [0-9a-f-]{36}: 4 patients, 11 resources, [\d.]+ s; errors: malformed-line: 1, "
        r"no-patient-reference: 1, patient-not-in-export: 1$",
        out,
        re.M,
    )


def test_rerun_is_idempotent_and_keeps_the_coordinators_status(tmp_path: Path, client: Client) -> None:
    export = write_export(tmp_path / "export")
    db = tmp_path / "wl.db"
    _screen(export, db, client)
    first = _entries(db)
    _set_status(db, "p-rare", "reviewed")
    outcome = _screen(export, db, client)
    again = _entries(db)
    assert set(again) == set(first)
    assert {pid: row.change for pid, row in again.items()} == dict.fromkeys(first, "unchanged")
    assert again["p-rare"].status == "reviewed"
    assert again["p-rare"].first_run_id == first["p-rare"].first_run_id != again["p-rare"].last_run_id
    assert again["p-rare"].fingerprint == first["p-rare"].fingerprint
    assert outcome.changes == {"unchanged": 4}
    assert [r.status for r in _runs(db)] == ["finished", "finished"]


def test_changed_resolved_and_a_dismissed_entry_that_changed_is_new_again(
    tmp_path: Path, client: Client
) -> None:
    db = tmp_path / "wl2.db"
    export = write_export(tmp_path / "export")
    _screen(export, db, client)
    _set_status(db, "p-rare", "referral-drafted")
    _set_status(db, "p-none", "dismissed")
    _set_status(db, "p-her2", "dismissed")
    write_export(export, rare=False, none_gets_cancer=True)
    _screen(export, db, client)
    entries = _entries(db)
    assert (entries["p-rare"].change, entries["p-rare"].finding_count, entries["p-rare"].status) == (
        "resolved",
        0,
        "referral-drafted",
    )
    assert (entries["p-none"].change, entries["p-none"].triggers, entries["p-none"].status) == (
        "changed",
        "rare-cancer",
        "new",
    )
    assert (entries["p-her2"].change, entries["p-her2"].status) == ("unchanged", "dismissed")


def test_a_run_after_a_crash_picks_up_without_duplicates(tmp_path: Path, client: Client) -> None:
    export = write_export(tmp_path / "export")
    db = tmp_path / "wl.db"
    _screen(export, db, client)
    with _engine(db).begin() as conn:
        # Simulate a crash: the last run stayed "running" and its entries are still "new".
        conn.execute(update(screening_runs).values(status="running", finished_at=None))
    _screen(export, db, client)
    entries = _entries(db)
    assert len(entries) == 4
    assert {row.change for row in entries.values()} == {"new"}  # the crashed run's news are not lost
    assert [r.status for r in _runs(db)] == ["running", "finished"]


def test_manifest_input_records_transaction_time_and_export_errors(tmp_path: Path, client: Client) -> None:
    export = write_export(tmp_path / "export")
    (export / "errors.ndjson").write_text(
        json.dumps(
            {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "error",
                        "code": "forbidden",
                        "diagnostics": "Patient/p-secret is restricted",
                    }
                ],
            }
        )
        + "\n"
    )
    manifest = export / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "transactionTime": "2026-02-28T10:00:00Z",
                "requiresAccessToken": False,
                "request": "x",
                "output": [
                    {"type": p.stem, "url": p.name}
                    for p in sorted(export.glob("*.ndjson"))
                    if p.name != "errors.ndjson"
                ],
                "error": [{"type": "OperationOutcome", "url": (export / "errors.ndjson").as_uri()}],
            }
        )
    )
    db = tmp_path / "wl.db"
    outcome = _screen(manifest, db, client)
    assert outcome.errors.counts["export-error:forbidden"] == 1
    [run] = _runs(db)
    assert run.transaction_time == "2026-02-28T10:00:00Z" and run.source == f"file:{manifest.resolve()}"
    assert "p-secret" not in run.errors_json
    assert len(_entries(db)) == 4


@pytest.mark.parametrize("case", ["missing", "empty-folder", "remote-manifest", "not-json"])
def test_unreadable_input_is_a_one_line_error_with_exit_2(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "input"
    if case == "empty-folder":
        target.mkdir()
    elif case == "remote-manifest":
        target.write_text(
            json.dumps(
                {
                    "transactionTime": "t",
                    "requiresAccessToken": True,
                    "output": [{"type": "Patient", "url": "https://ehr.example/f.ndjson"}],
                    "error": [],
                }
            )
        )
    elif case == "not-json":
        target.write_text("{not json")
    assert main(["screen", str(target), "--database-url", f"sqlite:///{tmp_path / 'wl.db'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("secondlook screen:") and err.count("\n") == 1 and "Traceback" not in err


def test_embedded_cluster_workers_do_not_outlive_the_run(tmp_path: Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    export = write_export(tmp_path / "export")
    outcome = run_screen(
        resolve_input(export),
        ScreenOptions(
            as_of=AS_OF,
            database_url=f"sqlite:///{tmp_path / 'wl.db'}",
            cipher=app_cipher(f"sqlite:///{tmp_path / 'wl.db'}"),
            workers=1,
        ),
    )
    assert outcome.patients == 4
    left = [
        p
        for p in psutil.Process().children(recursive=True)
        if p.pid not in before
        and p.is_running()
        and p.status() != psutil.STATUS_ZOMBIE
        # multiprocessing's resource tracker: started with the first worker of this pytest
        # process when this test runs first, and meant to live as long as it does
        and "multiprocessing.resource_tracker" not in " ".join(p.cmdline())
    ]
    assert left == []


def test_the_embedded_cluster_workers_do_not_run_the_statistical_profiler(client: Client) -> None:
    def callbacks(dask_worker: Worker) -> set[str]:
        return set(dask_worker.periodic_callbacks)

    running = client.run(callbacks)
    assert len(running) == 2
    for names in running.values():
        assert "heartbeat" in names  # the worker's own callbacks are listed
        assert "profile" not in names and "profile-cycle" not in names


def test_the_embedded_cluster_leaves_ctrl_c_to_the_screen() -> None:
    """Ctrl-C in a terminal reaches every process of its group. The worker processes ignore it: the
    screen's own process stops the run with one line and closes the cluster, instead of every
    worker dying with pages of stack traces (or its nanny starting a new one)."""
    with local_cluster(2) as cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
        workers = client.run(os.getpid)
        processes = [psutil.Process(pid) for pid in workers.values()]
        assert len(processes) == 2 and all(p.ppid() == os.getpid() for p in processes)
        for process in processes:
            os.kill(process.pid, signal.SIGINT)
        time.sleep(1.0)
        assert all(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)
        assert client.run(os.getpid) == workers  # the same worker, still serving
    # Nothing was ignored in this process: a Ctrl-C here still interrupts.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

"""`secondlook screen --ehr ISS --group ID` end to end: Bulk Data export of a whole synthetic
population from the demo EHR (its own process, a fixed latency per response) into a fresh SQLite
worklist, screened on an embedded Dask LocalCluster. Prints JSON.

    .venv/bin/python bench/screen_e2e.py [--patients 1000,10000] [--latency-ms 50] [--workers 2]
        [--visit-scale 8] [--layout patient,type]

For each population size the demo EHR starts with that many synthetic patients
(demo_ehr/synthetic.py, about 15 % oncology charts of 380-700 resources) and nothing else, plus a
Group of all of them (bench/ehr_server.py). The backend key is made here and only its public JWKS
goes to the EHR, as an EHR admin would register it. Each worker count then runs the product's own
path, as the CLI does: `export_group` and `run_screen` into a fresh worklist, whose rows are counted
afterwards; a count other than the population fails the benchmark. With `--layout patient` (the
default, the CLI's path) the export is organized by patient and screened as its files arrive (token,
kick-off, partial manifests, downloads, report texts of patients with cancer, a task per file, all
while the EHR writes); with `--layout type` (the path before, and for EHRs without Bulk Data 3.0)
the export by type is downloaded, then partitioned and screened bucket by bucket. The cluster
starts, loads the NLP model and settles its heap before the clock (reported apart). Peak RSS is
sampled every 0.1 s for this process, each Dask worker and the EHR."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
from demo_ehr.backend_auth import generate_backend_key
from demo_ehr.config import BackendClientConfig
from demo_ehr.stack import demo_backend_client, demo_registry
from screen_common import AS_OF, RssSampler, cpu_seconds, machine, mib, warm_cluster, worker_pids
from sqlalchemy import func, select

from launch.crypto import TokenCipher, generate_key
from launch.registry import Registration
from smartapp.db import create_sync_engine
from smartapp.screening.bulk_source import export_group
from smartapp.screening.errors import ErrorLog
from smartapp.screening.export_job import export_folder
from smartapp.screening.pipeline import ScreenOptions, run_screen
from smartapp.worklist.tables import screening_runs, worklist_entries

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import free_port  # noqa: E402

GROUP_ID = "everyone"
EHR_SERVER = Path(__file__).with_name("ehr_server.py")
EHR_START_TIMEOUT = 1800.0  # seconds; 10,000 patients are built in memory before the port opens


class BenchmarkFailed(SystemExit):
    pass


@contextmanager
def ehr_process(
    port: int, latency_ms: int, patients: int, backend: BackendClientConfig, visit_scale: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """The demo EHR (bench/ehr_server.py) starting on 127.0.0.1:`port`; stopped on the way out."""
    settings = {
        "port": port,
        "latency_ms": latency_ms,
        "patients": patients,
        "visit_scale": visit_scale,
        "group_id": GROUP_ID,
        # Public keys only: the private key stays in this process, in the registration.
        "backend_client": {"client_id": backend.client_id, "jwks": backend.jwks, "scopes": backend.scopes},
    }
    process = subprocess.Popen([sys.executable, str(EHR_SERVER), json.dumps(settings)])  # noqa: S603
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_ehr(origin: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + EHR_START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{origin}/_bench/requests", timeout=5).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        if process.poll() is not None:
            raise BenchmarkFailed(f"the demo EHR exited ({process.returncode}) before it answered")
        time.sleep(0.5)
    raise BenchmarkFailed(f"the demo EHR did not answer within {EHR_START_TIMEOUT:.0f} s")


def ehr_requests(origin: str) -> dict[str, Any]:
    """The EHR's request log since the last call (the call starts it afresh)."""
    return dict(httpx2.get(f"{origin}/_bench/requests", timeout=30).json())


def checked_worklist(database_url: str, cipher: TokenCipher, source: str, run_id: str, patients: int) -> int:
    """Worklist rows the run wrote; the benchmark fails unless there is one per patient."""
    engine = create_sync_engine(database_url, cipher)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(func.count()).where(
                    worklist_entries.c.source == source, worklist_entries.c.last_run_id == run_id
                )
            ).scalar_one()
            run = conn.execute(
                select(screening_runs.c.status, screening_runs.c.patients_done).where(
                    screening_runs.c.id == run_id
                )
            ).one()
    finally:
        engine.dispose()
    if rows != patients or run.status != "finished" or run.patients_done != patients:
        raise BenchmarkFailed(
            f"worklist check failed: {rows} rows for {patients} patients; "
            f"run {run_id} is {run.status} with {run.patients_done} patients done"
        )
    return int(rows)


def export_size(folder: Path) -> tuple[int, float]:
    """Lines and megabytes of the downloaded output files (report texts are inlined in the screen's
    bucket files, not in these)."""
    lines, size = 0, 0
    for path in folder.rglob("*.ndjson"):
        if "output" in path.parts:
            size += path.stat().st_size
            with path.open("rb") as handle:
                lines += sum(1 for _ in handle)
    return lines, round(size / 2**20, 1)


def screen_end_to_end(
    registration: Registration,
    origin: str,
    ehr_pid: int,
    patients: int,
    workers: int,
    work: Path,
    layout: str = "patient",
) -> dict[str, Any]:
    with warm_cluster(workers) as (client, startup), RssSampler() as rss:
        rss.track("main", os.getpid())
        rss.track("ehr", ehr_pid)
        pids = worker_pids(client)
        for n, pid in enumerate(pids):
            rss.track(f"worker-{n}", pid, group="workers")
        database_url = f"sqlite:///{work / f'worklist-{patients}-{workers}.db'}"
        cipher = TokenCipher([generate_key()])  # a fresh worklist, encrypted as the product's is
        options = ScreenOptions(
            as_of=AS_OF,
            database_url=database_url,
            cipher=cipher,
            work_dir=work,
            group_id=GROUP_ID,
            keep_results=False,
        )
        ehr_requests(origin)  # start the EHR's log afresh
        cpu = {
            "main": cpu_seconds(),
            "workers": sum(client.run(cpu_seconds).values()),
            "ehr": cpu_seconds(ehr_pid),
        }
        load_before = os.getloadavg()[0]
        errors = ErrorLog()
        began = time.time()
        t0 = time.perf_counter()
        download = export_folder(work, registration.iss, GROUP_ID, None)
        screen_input = export_group(
            registration, GROUP_ID, None, download, errors, by_patient=layout == "patient"
        )
        t1 = time.perf_counter()
        outcome = run_screen(screen_input, options, client=client, errors=errors)
        t2 = time.perf_counter()
        served = ehr_requests(origin)
        cpu = {
            "main": cpu_seconds() - cpu["main"],
            "workers": sum(client.run(cpu_seconds).values()) - cpu["workers"],
            "ehr": cpu_seconds(ehr_pid) - cpu["ehr"],
        }
        load_after = os.getloadavg()[0]
    rows = checked_worklist(database_url, cipher, registration.iss, outcome.run_id, patients)
    lines, megabytes = export_size(download)
    shutil.rmtree(download, ignore_errors=True)
    kinds = served["by_kind"]
    kick_off, downloads = kinds["export-kick-off"], kinds["export-download"]
    texts = [kinds[kind] for kind in ("fhir-batch", "fhir-read") if kind in kinds]
    fetch_seconds, screen_seconds = t1 - t0, t2 - t1
    return {
        "workers": workers,
        "export_layout": layout,
        "patients": outcome.patients,
        "worklist_rows": rows,
        "resources_screened": outcome.resources,
        "export_lines": lines,
        "export_megabytes": megabytes,
        "seconds": {
            "before_kick_off": round(kick_off["first_started"] - began, 2),
            "export": round(downloads["last_ended"] - kick_off["first_started"], 2),
            # Report texts are fetched bucket by bucket while the cluster screens (smartapp/screening/
            # hydrate.py): from the first to the last text the EHR served, inside "screen".
            "report_texts_during_screen": round(
                max(kind["last_ended"] for kind in texts) - min(kind["first_started"] for kind in texts), 2
            )
            if texts
            else 0.0,
            # By patient the export runs inside the screen ("fetch_total" is 0: nothing waits for it).
            "fetch_total": round(fetch_seconds, 2),
            "screen": round(screen_seconds, 2),
            "partition": round(outcome.partition_seconds, 2),
            "end_to_end": round(fetch_seconds + screen_seconds, 2),
            "cluster_startup": round(startup, 2),
        },
        "patients_per_second": {
            "end_to_end": round(patients / (fetch_seconds + screen_seconds), 1),
            "screen": round(patients / screen_seconds, 1),
        },
        "ehr_requests": {
            "total": served["total"],
            "peak_in_flight": served["peak_in_flight"],
            **{kind: figures["count"] for kind, figures in sorted(kinds.items())},
        },
        "peak_rss_mib": {
            "main": mib(rss.peaks["main"]),
            "workers": [mib(rss.peaks.get(f"worker-{n}", 0)) for n in range(len(pids))],
            "workers_total": mib(rss.group_peaks.get("workers", 0)),
            "ehr": mib(rss.peaks["ehr"]),
        },
        "cpu_seconds": {name: round(value, 2) for name, value in cpu.items()},
        "load_average_1min_before_after": [round(load_before, 2), round(load_after, 2)],
        "errors": dict(outcome.errors.counts),
        "changes": outcome.changes,
    }


def population(
    patients: int,
    latency_ms: int,
    worker_counts: list[int],
    work: Path,
    visit_scale: int = 1,
    layouts: tuple[str, ...] = ("patient",),
) -> dict[str, Any]:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    # The app's registry holds the backend key; the EHR gets what an admin would register.
    registry = demo_registry(origin, generate_backend_key("ES384"))
    registration = registry.all()[0]
    t0 = time.perf_counter()
    with (
        RssSampler() as rss,
        ehr_process(port, latency_ms, patients, demo_backend_client(registry), visit_scale) as process,
    ):
        rss.track("ehr", process.pid)
        wait_for_ehr(origin, process)
        ehr = {
            "startup_seconds": round(time.perf_counter() - t0, 1),
            "peak_rss_startup_mib": mib(rss.peaks["ehr"]),
            "rss_loaded_mib": mib(rss.latest["ehr"]),
        }
        runs = []
        for workers in worker_counts:
            for layout in layouts:
                run_dir = work / f"{patients}-{workers}-{layout}"
                run_dir.mkdir()
                runs.append(
                    screen_end_to_end(registration, origin, process.pid, patients, workers, run_dir, layout)
                )
    return {"synthetic_patients": patients, "visit_scale": visit_scale, "ehr": ehr, "runs": runs}


def git_commit() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]
    git = shutil.which("git") or "git"

    def run(*args: str) -> str:
        done = subprocess.run([git, *args], cwd=root, capture_output=True, text=True, check=False)  # noqa: S603
        return done.stdout.strip()

    return {"commit": run("rev-parse", "HEAD"), "dirty": bool(run("status", "--porcelain"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", default="1000,10000", help="population sizes, comma-separated")
    parser.add_argument("--latency-ms", type=int, default=50, help="added to every EHR response")
    parser.add_argument("--workers", default="2", help="Dask worker counts, comma-separated (e.g. 1,2)")
    parser.add_argument(
        "--visit-scale",
        type=int,
        default=1,
        help="visits of the charts without cancer, times this (8: Synthea-sized, ~300 resources)",
    )
    parser.add_argument(
        "--layout",
        default="patient",
        help="export layouts, comma-separated: patient (organizeOutputBy=Patient, screened as it "
        "arrives; the CLI's path), type (files by type, partitioned after the download)",
    )
    args = parser.parse_args()
    layouts = tuple(dict.fromkeys(args.layout.split(",")))
    if not set(layouts) <= {"patient", "type"}:
        parser.error("--layout takes patient, type or both")
    sizes = [int(n) for n in args.patients.split(",")]
    worker_counts = sorted({int(w) for w in args.workers.split(",")})
    report: dict[str, Any] = {
        "benchmark": "screen_e2e",
        "git": git_commit(),
        "machine": machine() | {"load_average_start": [round(x, 2) for x in os.getloadavg()]},
        "latency_ms": args.latency_ms,
        "as_of": AS_OF.isoformat(),
    }
    with tempfile.TemporaryDirectory(prefix="screen-e2e-") as tmp:
        report["populations"] = [
            population(n, args.latency_ms, worker_counts, Path(tmp), args.visit_scale, layouts) for n in sizes
        ]
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

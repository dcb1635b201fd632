"""Bounded load on loopback: concurrent SMART launches, findings and packet requests against TWO app
processes sharing ONE PostgreSQL behind a local round-robin reverse proxy, with the demo EHR in its
own process. Every response is checked against its own launch's patient. Prints JSON.

    .venv/bin/python bench/load.py [--launches 60] [--concurrency 20] [--latency-ms 0]

PostgreSQL: `--database-url URL`, or a throw-away one started with scripts/postgres on port 54339
(its own data folder, so it never touches the test suite's). Targets (issue 12): 0 errors,
0 cross-patient responses, p95 findings <= 1.5 s at 20 concurrent launches, RSS growth < 10 %.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The demo EHR process and the start-up wait are launch_latency's (this folder is on sys.path).
from launch_latency import run_ehr, wait_until_up  # noqa: E402

from tests.support import Browser, free_port  # noqa: E402
from tests.web.conftest import demo_patient_ids  # noqa: E402

TARGET_P95_S = 1.5


def run_app(port: int, public_url: str, ehr_url: str, database_url: str, secret_key: str) -> None:
    import uvicorn
    from demo_ehr.stack import demo_registry

    from smartapp.config import Settings
    from smartapp.logs import configure_logging
    from smartapp.web.app import create_app

    configure_logging("WARNING")
    settings = Settings(public_url=public_url, database_url=database_url, secret_key=secret_key)
    uvicorn.run(
        create_app(settings, demo_registry(ehr_url)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


def run_proxy(port: int, backends: list[str]) -> None:
    """A minimal round-robin HTTP reverse proxy (no redirects followed, cookies and Host passed on)."""
    import itertools

    import uvicorn

    turn = itertools.cycle(backends)
    client: dict[str, httpx2.AsyncClient] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    client["c"] = httpx2.AsyncClient(timeout=60, follow_redirects=False)
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await client["c"].aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = scope.get("query_string", b"").decode()
        url = next(turn) + scope["path"] + (f"?{query}" if query else "")
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k != b"content-length"]
        response = await client["c"].request(scope["method"], url, headers=headers, content=body)
        drop = {"content-length", "transfer-encoding", "connection", "content-encoding"}
        out = [
            (k.lower().encode(), v.encode())
            for k, v in response.headers.multi_items()
            if k.lower() not in drop
        ]
        out.append((b"content-length", str(len(response.content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        await send({"type": "http.response.body", "body": response.content})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def one_launch(ehr_url: str, proxy_url: str, patient_id: str) -> dict[str, Any]:
    browser = Browser()
    try:
        started = time.perf_counter()
        consent = browser.get(f"{ehr_url}/launch", params={"patient": patient_id})
        if consent.status_code != 200:
            return {"error": f"consent page {consent.status_code}"}
        landing = browser.submit(consent, button=("decision", "allow"))
        landed = time.perf_counter()
        path = str(landing.request.url)
        if landing.status_code != 200 or "/s/" not in path:
            return {"error": f"landing {landing.status_code}"}
        sid = path.split("/s/", 1)[1].split("/", 1)[0]
        findings = browser.get(f"{proxy_url}/api/s/{sid}/findings")
        found = time.perf_counter()
        packet = browser.get(f"{proxy_url}/api/s/{sid}/packet")
        done = time.perf_counter()
        if findings.status_code != 200:
            return {"error": f"findings {findings.status_code}"}
        if packet.status_code != 200:
            return {"error": f"packet {packet.status_code}"}
        wanted = f"Patient/{patient_id}"
        cross = findings.json()["patients"][0]["patient"] != wanted or wanted not in packet.text
        return {
            "launch_s": landed - started,
            "findings_s": found - landed,
            "packet_s": done - found,
            "cross": cross,
        }
    except (httpx2.HTTPError, KeyError, IndexError, ValueError) as exc:
        return {"error": type(exc).__name__}
    finally:
        browser.close()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def rss_mib(pids: list[int]) -> list[float]:
    return [round(psutil.Process(pid).memory_info().rss / 2**20, 1) for pid in pids]


def cpu_seconds(pid: int, children: bool) -> float:
    """CPU time (user + system) of a process, with its live children (an app's validation worker)
    when asked: the benchmark's own process is counted alone, its children are the servers."""
    process = psutil.Process(pid)
    total = 0.0
    for one in [process, *(process.children(recursive=True) if children else [])]:
        try:
            times = one.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def cpu_by_role(roles: dict[str, int]) -> dict[str, float]:
    return {role: cpu_seconds(pid, children=role != "bench") for role, pid in roles.items()}


# The repository's own throw-away PostgreSQL script, on a port and folder of the benchmark's own.
PG_ENV = {"SECONDLOOK_PG_PORT": "54339", "SECONDLOOK_PG_DIR": "/tmp/secondlook-pg-bench"}  # noqa: S108


def start_postgres() -> str:
    command = [str(ROOT / "scripts" / "postgres"), "start"]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ | PG_ENV)  # noqa: S603
    return done.stdout.strip()


def stop_postgres() -> None:
    command = [str(ROOT / "scripts" / "postgres"), "stop"]
    subprocess.run(command, check=False, capture_output=True, env=os.environ | PG_ENV)  # noqa: S603


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--launches", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="stop submitting launches after this"
    )
    args = parser.parse_args()

    from cryptography.fernet import Fernet

    own_postgres = args.database_url is None
    database_url = args.database_url or start_postgres()
    secret = Fernet.generate_key().decode()
    ehr_port, proxy_port, a_port, b_port = free_port(), free_port(), free_port(), free_port()
    ehr_url, proxy_url = f"http://127.0.0.1:{ehr_port}", f"http://127.0.0.1:{proxy_port}"
    spawn = multiprocessing.get_context("spawn")
    apps = [
        spawn.Process(target=run_app, args=(port, proxy_url, ehr_url, database_url, secret))
        for port in (a_port, b_port)
    ]
    ehr = spawn.Process(target=run_ehr, args=(ehr_port, proxy_url, args.latency_ms))
    proxy = spawn.Process(
        target=run_proxy, args=(proxy_port, [f"http://127.0.0.1:{a_port}", f"http://127.0.0.1:{b_port}"])
    )
    processes = [ehr, *apps, proxy]
    try:
        ehr.start()
        apps[0].start()
        wait_until_up(f"http://127.0.0.1:{a_port}/healthz", apps[0])  # the first one migrates the schema
        apps[1].start()
        proxy.start()
        wait_until_up(f"{ehr_url}/fhir/.well-known/smart-configuration", ehr)
        wait_until_up(f"http://127.0.0.1:{b_port}/healthz", apps[1])
        wait_until_up(f"{proxy_url}/healthz", proxy)
        app_pids = [p.pid for p in apps if p.pid is not None]
        roles = {"ehr": ehr.pid or 0, "app_a": app_pids[0], "app_b": app_pids[1], "proxy": proxy.pid or 0}
        roles |= {"bench": os.getpid()}
        patients = demo_patient_ids()
        # Warm-up, not counted: one wave at the run's concurrency, so that what grows with
        # concurrency once (worker threads, database and HTTP connection pools, the hot results)
        # is in the starting RSS and the growth measured is what the run itself adds.
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(
                pool.map(
                    lambda i: one_launch(ehr_url, proxy_url, patients[i % len(patients)]),
                    range(args.concurrency),
                )
            )
        rss_start = rss_mib(app_pids)
        cpu_start = cpu_by_role(roles)
        deadline = time.monotonic() + args.max_seconds
        results: list[dict[str, Any]] = []
        lock = threading.Lock()

        def task(index: int) -> None:
            if time.monotonic() > deadline:
                return
            outcome = one_launch(ehr_url, proxy_url, patients[index % len(patients)])
            with lock:
                results.append(outcome)

        samples: list[list[float]] = []
        running = threading.Event()
        running.set()

        def sample_rss() -> None:
            # Every second: whether memory settles or keeps climbing shows here, not in two points.
            while running.is_set():
                samples.append([round(time.perf_counter() - started, 1), *rss_mib(app_pids)])
                time.sleep(1.0)

        started = time.perf_counter()
        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(task, range(args.launches)))
        elapsed = time.perf_counter() - started
        running.clear()
        sampler.join()
        rss_end = rss_mib(app_pids)
        cpu_used = {role: round(cpu - cpu_start[role], 1) for role, cpu in cpu_by_role(roles).items()}
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join(10)
        if own_postgres:
            stop_postgres()

    ok = [r for r in results if "error" not in r]
    findings = [r["findings_s"] for r in ok]
    growth = [round((end - start) / start * 100, 1) for start, end in zip(rss_start, rss_end, strict=True)]
    print(
        json.dumps(
            {
                "machine": {
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "load_avg": os.getloadavg(),
                },
                "setup": {
                    "app_processes": 2,
                    "database": "postgresql",
                    "proxy": "round-robin",
                    "latency_ms": args.latency_ms,
                    "launches": len(results),
                    "concurrency": args.concurrency,
                    "seconds": round(elapsed, 1),
                },
                "errors": dict(Counter(r["error"] for r in results if "error" in r)),
                "cross_patient_responses": sum(1 for r in ok if r["cross"]),
                "findings_s": {
                    "p50": percentile(findings, 0.5),
                    "p95": percentile(findings, 0.95),
                    "p99": percentile(findings, 0.99),
                    "target_p95": TARGET_P95_S,
                },
                "launch_s": {
                    "p50": percentile([r["launch_s"] for r in ok], 0.5),
                    "p95": percentile([r["launch_s"] for r in ok], 0.95),
                },
                "packet_s": {
                    "p50": percentile([r["packet_s"] for r in ok], 0.5),
                    "p95": percentile([r["packet_s"] for r in ok], 0.95),
                },
                "cpu_seconds_by_process": cpu_used,
                "rss_mib": {
                    "start": rss_start,
                    "end": rss_end,
                    "growth_percent": growth,
                    "every_second": samples,
                },
                "median_findings_s": round(statistics.median(findings), 3) if findings else None,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

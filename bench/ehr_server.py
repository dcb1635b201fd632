"""The demo EHR in a process of its own, for bench/screen_e2e.py: `N` synthetic patients and
nothing else (no fixture charts, no large benchmark patient), a Group `everyone` of all of them,
a fixed latency per response, and the app's backend client registered with its public JWKS.

A separate script rather than a multiprocessing target, so this process imports the demo EHR and
uvicorn only: its RSS is the EHR's, not the benchmark's (a spawned child re-imports the parent's
main module, Dask and spaCy included).

    python bench/ehr_server.py SETTINGS_JSON
    settings: {"port", "latency_ms", "patients", "group_id",
               "backend_client": {"client_id", "jwks", "scopes"}}
    (public keys only)

`GET /_bench/requests` (not counted, no latency) answers what the EHR has served since the last
call and starts afresh: per kind of request, the count and the wall-clock times (epoch seconds)
the first one arrived and the last one was answered.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvicorn
from demo_ehr import DemoEhrConfig, create_demo_ehr
from demo_ehr.config import BackendClientConfig
from demo_ehr.groups import group_resource
from demo_ehr.resource_store import ResourceStore

STATS_PATH = "/_bench/requests"


def request_kind(method: str, path: str) -> str:
    if path.startswith("/auth/"):
        return "token" if path == "/auth/token" else "authorization"
    if "/.well-known/" in path or path.endswith("/metadata"):
        return "discovery"
    if "/$export-status/" in path:
        return "export-cancel" if method == "DELETE" else "export-status"
    if "/$export-file/" in path:
        return "export-download"
    if path.endswith("/$export"):
        return "export-kick-off"
    if method == "POST" and path.rstrip("/") == "/fhir":
        return "fhir-batch"  # hydration: report texts, many Binary reads per batch Bundle
    if path.startswith("/fhir/"):
        return "fhir-read"  # hydration: report texts behind Binary URLs, one at a time
    return "other"


class RequestLog:
    """Outermost ASGI middleware (the added latency counts as part of a request). The demo EHR
    answers on one event loop, so the counters need no lock."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        self.kinds: dict[str, dict[str, Any]] = {}
        self.peak_in_flight = 0

    def report(self) -> dict[str, Any]:
        report = {
            "by_kind": self.kinds,
            "total": sum(kind["count"] for kind in self.kinds.values()),
            "peak_in_flight": self.peak_in_flight,
        }
        self.reset()
        return report

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == STATS_PATH:
            body = json.dumps(self.report()).encode()
            headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        kind = self.kinds.setdefault(
            request_kind(scope["method"], scope["path"]),
            {"count": 0, "first_started": None, "last_ended": None},
        )
        kind["count"] += 1
        if kind["first_started"] is None:
            kind["first_started"] = time.time()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            kind["last_ended"] = time.time()


def add_everyone(store: ResourceStore, group_id: str) -> int:
    """A Group of every Patient the EHR holds: the whole population, exported the way a
    coordinator's group is."""
    members = list(store.resources.get("Patient", {}))
    store.add(group_resource(group_id, "Everyone", members), None)
    return len(members)


def main() -> None:
    settings = json.loads(sys.argv[1])
    port = int(settings["port"])
    backend = settings["backend_client"]
    with tempfile.TemporaryDirectory(prefix="bench-ehr-no-fixtures-") as no_fixtures:
        ehr = create_demo_ehr(
            DemoEhrConfig(
                base_url=f"http://127.0.0.1:{port}",
                patients_dir=Path(no_fixtures),
                include_large_patient=False,
                latency_ms=int(settings["latency_ms"]),
                backend_clients=(
                    BackendClientConfig(
                        backend["client_id"], jwks=backend["jwks"], scopes=tuple(backend["scopes"])
                    ),
                ),
                synthetic_patients=int(settings["patients"]),
                synthetic_visit_scale=int(settings.get("visit_scale", 1)),
            )
        )
    members = add_everyone(ehr.state.demo_ehr.resources, str(settings["group_id"]))
    if members != int(settings["patients"]):
        sys.exit(f"ehr_server: the EHR holds {members} patients, not {settings['patients']}")
    uvicorn.run(RequestLog(ehr), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

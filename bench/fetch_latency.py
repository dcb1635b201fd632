"""Time to read the large demo patient's record (≈2,000 resources, pathology text behind Binary
URLs) from the demo EHR with a fixed latency per response: SecondLook's reader with the app's own
client settings vs two peers used as their documentation shows — fhirpy's `AsyncFHIRClient`
(asyncio.gather across resource types, `fetch_all()` per search, attachments gathered) and the
SMART Python client `fhirclient` (one request at a time). The three alternate within one run after
an explicit warm-up run of each (not counted); all must read the same resources (ids per type)
and the same attachment bytes. The EHR counts what it sees: requests, peak requests in flight,
and the longest chain of requests that ran one after another (sequential round trips), of the
timed reads only; SecondLook's longest chain is printed request by request.
Prints JSON.

    .venv/bin/python bench/fetch_latency.py [--latency-ms 50] [--runs 5] [--throttle]

`--throttle` adds one SecondLook read against an EHR that answers 429 (Retry-After: 1) to a
quarter of the first requests: the record must still come back complete.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import platform
import secrets
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from authlib.oauth2.rfc7636 import create_s256_code_challenge

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo_ehr import DemoEhrConfig, create_demo_ehr  # noqa: E402

from fhirmaps.r4b import forget_validations  # noqa: E402
from launch.fhir_client import FhirClient  # noqa: E402
from launch.http import create_http_client  # noqa: E402
from launch.registry import Registration  # noqa: E402
from launch.scopes import GrantedScopes  # noqa: E402
from launch.session_clients import ehr_concurrency  # noqa: E402
from smartapp.chart_reader import PATIENT_SEARCHES, read_chart  # noqa: E402
from smartapp.config import Settings  # noqa: E402
from smartapp.heap import settle  # noqa: E402
from smartapp.workers import VALIDATION_POOL  # noqa: E402
from tests.support import Form, free_port, parse_forms  # noqa: E402

PATIENT = "bench-large"
CLIENT_ID = "secondlook-demo"
SCOPE = "launch/patient openid fhirUser patient/*.rs"


def obtain_token(ehr: str, redirect_uri: str) -> dict[str, Any]:
    """Standalone authorization-code + PKCE flow against the demo EHR, as a browser would."""
    verifier = secrets.token_urlsafe(48)
    with httpx2.Client(follow_redirects=False, timeout=30) as http:
        consent = http.get(
            f"{ehr}/auth/authorize",
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": redirect_uri,
                "scope": SCOPE,
                "state": secrets.token_urlsafe(16),
                "aud": f"{ehr}/fhir",
                "code_challenge": create_s256_code_challenge(verifier),
                "code_challenge_method": "S256",
            },
        )
        consent.raise_for_status()
        form: Form = parse_forms(consent.text)[0]
        data = [(n, PATIENT if n == "patient" else v) for n, v in form.fields] + form.checkboxes
        data.append(("decision", "allow"))
        redirect = http.post(
            f"{ehr}{form.action}", data=dict(data) | {"scope": [v for n, v in data if n == "scope"]}
        )
        code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
        token = http.post(
            f"{ehr}/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": CLIENT_ID,
                "code_verifier": verifier,
            },
        )
        token.raise_for_status()
        return dict(token.json())


class StaticToken:
    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    async def reauthenticate(self, stale: str | None = None) -> str:
        raise RuntimeError("the benchmark token does not refresh")


# What each reader returns: resource ids per type, and attachment bytes per URL (as written in
# the resource that points at it).
Read = tuple[dict[str, list[str]], dict[str, bytes]]
# (type, label, params with the {pid} placeholder): the app's per-patient searches, for the peers.
SEARCHES = [(read.resource_type, read.label, dict(read.search)) for read in PATIENT_SEARCHES]


# Set by --max-concurrency: as if the EHR's registry entry had `max_concurrency` (None: no entry).
REGISTRY_LIMIT: int | None = None


def app_client_settings() -> dict[str, Any]:
    """The client settings the app itself uses for the EHR: its registry limit, if one was given,
    else the app's setting (SECONDLOOK_FHIR_MAX_CONCURRENCY)."""
    settings = Settings()
    entry = None
    if REGISTRY_LIMIT is not None:
        entry = Registration(iss="http://127.0.0.1/fhir", client_id=CLIENT_ID, max_concurrency=REGISTRY_LIMIT)
    return {
        "max_concurrency": ehr_concurrency(entry, settings.fhir_max_concurrency),
        "timeout_s": settings.fhir_timeout_seconds,
    }


def ids_by_type(resources: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for resource in resources:
        found[str(resource.get("resourceType"))].add(str(resource.get("id")))
    return {rtype: sorted(ids) for rtype, ids in sorted(found.items())}


def report_attachments(resources: list[dict[str, Any]]) -> dict[str, str]:
    """URL → contentType of every report text behind a URL (DiagnosticReport.presentedForm,
    DocumentReference.content.attachment), written out here so the peers do not use our code."""
    found: dict[str, str] = {}
    for resource in resources:
        forms = resource.get("presentedForm") or []
        forms += [c.get("attachment") or {} for c in resource.get("content") or []]
        for form in forms:
            if form.get("url") and "data" not in form:
                found.setdefault(str(form["url"]), str(form.get("contentType") or "*/*"))
    return found


def payors(resources: list[dict[str, Any]]) -> list[str]:
    return sorted(
        {
            str(p["reference"]).split("/", 1)[1]
            for r in resources
            if r.get("resourceType") == "Coverage"
            for p in r.get("payor") or []
            if str(p.get("reference", "")).startswith("Organization/")
        }
    )


async def read_with_secondlook(fhir_base: str, token: dict[str, Any], http: httpx2.AsyncClient) -> Read:
    """The app's own reader with the app's own client settings; a record never seen before (the
    validation memos are emptied first, here and in the validation worker, as `launch_latency.py`
    does)."""
    forget_validations()
    await VALIDATION_POOL.run(forget_validations)
    config = app_client_settings()
    client = FhirClient(
        fhir_base, http, StaticToken(token["access_token"]), max_concurrency=config["max_concurrency"]
    )
    snapshot = await read_chart(client, PATIENT, GrantedScopes.parse(token["scope"]))
    if snapshot.gaps:
        raise RuntimeError(f"SecondLook read had gaps: {[g.message for g in snapshot.gaps]}")
    return ids_by_type(snapshot.resources), {
        url: content for url, (content, _ctype) in snapshot.attachments.items()
    }


class AppProcess:
    """What the app process keeps from one launch to the next: its event loop and the one HTTP client
    (connection pool, TLS context) it makes at start-up (smartapp/web/app.py). The warm-up read
    makes them, and then the heap is settled as the app's start-up settles it (smartapp/heap.py);
    the timed reads reuse them, as the app's launches after its first do."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.http: httpx2.AsyncClient | None = None

    def read(self, fhir_base: str, token: dict[str, Any]) -> Read:
        return self.runner.run(self._read(fhir_base, token))

    async def _read(self, fhir_base: str, token: dict[str, Any]) -> Read:
        if self.http is not None:
            return await read_with_secondlook(fhir_base, token, self.http)
        self.http = create_http_client(app_client_settings()["timeout_s"])
        read = await read_with_secondlook(fhir_base, token, self.http)
        settle()
        return read

    def close(self) -> None:
        if self.http is not None:
            self.runner.run(self.http.aclose())
        self.runner.close()


async def read_with_fhirpy(fhir_base: str, token: dict[str, Any]) -> Read:
    """fhirpy as its README shows: one `AsyncFHIRClient`, `asyncio.gather` of one
    `resources(type).search(...).limit(100).fetch_all()` per type, then the attachments (Binary
    resources, base64) and the payor Organizations gathered."""
    from fhirpy import AsyncFHIRClient

    client = AsyncFHIRClient(fhir_base, authorization=f"Bearer {token['access_token']}")

    async def search(resource_type: str, params: dict[str, str]) -> list[Any]:
        if resource_type == "Patient":
            return [await client.reference("Patient", PATIENT).to_resource()]
        query = {k: v.replace("{pid}", PATIENT) for k, v in params.items() if k != "_count"}
        searchset = client.resources(resource_type).search(**query)
        if "_count" in params:
            searchset = searchset.limit(int(params["_count"]))
        return list(await searchset.fetch_all())

    found = await asyncio.gather(*(search(rtype, params) for rtype, _label, params in SEARCHES))
    resources = [client.dump_resource(r) for chunk in found for r in chunk]
    texts = report_attachments(resources)
    binaries, organizations = await asyncio.gather(
        asyncio.gather(*(client.get("Binary", url.rsplit("/", 1)[1]) for url in texts)),
        asyncio.gather(*(client.get("Organization", oid) for oid in payors(resources))),
    )
    resources += [dict(o) for o in organizations]
    attachments = {url: base64.b64decode(binary["data"]) for url, binary in zip(texts, binaries, strict=True)}
    return ids_by_type(resources), attachments


def read_with_fhirclient(fhir_base: str, token: dict[str, Any]) -> Read:
    """The peer, as its documentation shows: a FHIRClient restored from saved state, then
    `Model.read` / `Model.where(...).perform_resources_iter(server)` per resource type, then the
    report attachments through `server.request_data` and the payors through `Model.read`."""
    from fhirclient import client
    from fhirclient.models import fhirelementfactory

    smart = client.FHIRClient(
        state={
            "app_id": CLIENT_ID,
            "server": {
                "base_uri": fhir_base + "/",
                "auth_type": "oauth2",
                "auth": {"app_id": CLIENT_ID, "access_token": token["access_token"]},
            },
        }
    )

    def model_of(resource_type: str) -> Any:
        return fhirelementfactory.FHIRElementFactory.instantiate(resource_type, None).__class__

    resources: list[Any] = []
    for resource_type, _label, params in SEARCHES:
        model = model_of(resource_type)
        if resource_type == "Patient":
            resources.append(model.read(PATIENT, smart.server))
            continue
        struct = {k: v.replace("{pid}", PATIENT) for k, v in params.items()}
        resources.extend(model.where(struct=struct).perform_resources_iter(smart.server))
    as_json = [r.as_json() for r in resources]
    as_json += [model_of("Organization").read(oid, smart.server).as_json() for oid in payors(as_json)]
    attachments: dict[str, bytes] = {}
    for url, content_type in report_attachments(as_json).items():
        path = url[len(fhir_base) + 1 :] if url.startswith(fhir_base) else url
        attachments[url] = smart.server.request_data(path, headers={"Accept": content_type})
    return ids_by_type(as_json), attachments


class EhrCounter:
    """ASGI middleware around the demo EHR (outermost, so the added latency counts as in flight):
    what one reader's run looks like to the EHR. `GET /_bench/stats` returns the figures since the
    last call and starts afresh; `POST /_bench/throttle?n=N` answers the next N FHIR requests
    with 429 (Retry-After: 1) — every fourth one, the rest pass."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.reset()
        self.throttle_left = 0
        self.throttle_seen = 0

    def reset(self) -> None:
        self.current = 0
        self.peak = 0
        self.intervals: list[tuple[float, float, str]] = []
        self.throttled = 0

    def stats(self) -> dict[str, Any]:
        with self.lock:
            intervals, peak, throttled = sorted(self.intervals, key=lambda i: i[1]), self.peak, self.throttled
            self.reset()
        # Longest chain of requests each started after the previous one ended: the sequential
        # round trips the reader paid for (its dependencies plus any queueing behind its limit).
        depth: list[int] = []
        after: list[int | None] = []
        for index, (begin, _end, _what) in enumerate(intervals):
            done = [j for j in range(index) if intervals[j][1] <= begin]
            before = max(done, key=lambda j: depth[j], default=None)
            after.append(before)
            depth.append(1 + (depth[before] if before is not None else 0))
        chain: list[str] = []
        index = max(range(len(depth)), key=lambda i: depth[i], default=None)
        start = min((begin for begin, _end, _what in intervals), default=0.0)
        while index is not None:
            begin, end, what = intervals[index]
            chain.append(f"{begin - start:.3f}-{end - start:.3f} {what}")
            index = after[index]
        return {
            "requests": len(intervals),
            "peak_concurrency": peak,
            "round_trips": max(depth, default=0),
            "throttled_429": throttled,
            "longest_chain": chain[::-1],
        }

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith("/_bench/"):
            if path == "/_bench/throttle":
                self.throttle_left = int(parse_qs(scope.get("query_string", b"").decode()).get("n", ["0"])[0])
                body = b"{}"
            else:
                body = json.dumps(self.stats()).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if not (path == "/fhir" or path.startswith("/fhir/")) or path.startswith(
            "/fhir/.well-known"
        ):  # pages: /fhir?_getpages=
            await self.app(scope, receive, send)
            return
        begin = time.monotonic()
        with self.lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
            throttle = False
            if self.throttle_left > 0:
                self.throttle_left -= 1
                self.throttle_seen += 1
                throttle = self.throttle_seen % 4 == 0
                self.throttled += throttle
        try:
            if throttle:
                await asyncio.sleep(0.05)
                await send(
                    {
                        "type": "http.response.start",
                        "status": 429,
                        "headers": [(b"content-type", b"application/fhir+json"), (b"retry-after", b"1")],
                    }
                )
                await send(
                    {
                        "type": "http.response.body",
                        "body": b'{"resourceType": "OperationOutcome", '
                        b'"issue": [{"severity": "error", "code": "throttled"}]}',
                    }
                )
            else:
                await self.app(scope, receive, send)
        finally:
            with self.lock:
                self.current -= 1
                query = scope.get("query_string", b"").decode()
                self.intervals.append((begin, time.monotonic(), path + ("?" + query if query else "")))


def run_ehr(port: int, latency_ms: int, redirect_uri: str) -> None:
    """The demo EHR in its own process, so its CPU work does not share the clients' interpreter."""
    import uvicorn

    ehr = create_demo_ehr(
        DemoEhrConfig(
            base_url=f"http://127.0.0.1:{port}",
            app_launch_url="http://127.0.0.1:9/launch",
            app_standalone_url=None,
            redirect_uris=[redirect_uri],
            latency_ms=latency_ms,
            include_large_patient=True,
        )
    )
    uvicorn.run(EhrCounter(ehr), host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextmanager
def ehr_process(port: int, latency_ms: int, redirect_uri: str) -> Iterator[str]:
    process = multiprocessing.get_context("spawn").Process(
        target=run_ehr, args=(port, latency_ms, redirect_uri)
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx2.get(f"{url}/fhir/.well-known/smart-configuration", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline or not process.is_alive():
                raise RuntimeError("demo EHR did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.join(10)


def ehr_stats(ehr_url: str) -> dict[str, Any]:
    return dict(httpx2.get(f"{ehr_url}/_bench/stats", timeout=10).json())


def timed(fn: Callable[[], Read]) -> tuple[float, Read]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def describe(read: Read) -> dict[str, Any]:
    ids, attachments = read
    return {
        "resources": sum(len(v) for v in ids.values()),
        "attachments": len(attachments),
        "attachment_bytes": sum(len(b) for b in attachments.values()),
    }


def same_read(name: str, reference: Read, other: Read) -> None:
    if other[0] != reference[0]:
        differing = sorted(
            t for t in set(reference[0]) | set(other[0]) if reference[0].get(t) != other[0].get(t)
        )
        raise RuntimeError(f"{name} read different resources than SecondLook: {differing}")
    if other[1] != reference[1]:
        raise RuntimeError(f"{name} read different attachment bytes than SecondLook")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--throttle", action="store_true", help="add one SecondLook read from a throttling EHR"
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=None,
        help="as if the EHR's registry entry set max_concurrency (default: no entry, the app's setting)",
    )
    args = parser.parse_args()
    global REGISTRY_LIMIT  # noqa: PLW0603
    REGISTRY_LIMIT = args.max_concurrency

    redirect_uri = "http://127.0.0.1:9/callback"  # never contacted: the code is read from the redirect
    app = AppProcess()
    readers: dict[str, Callable[[str, dict[str, Any]], Read]] = {
        "secondlook": app.read,
        "fhirpy": lambda base, token: asyncio.run(read_with_fhirpy(base, token)),
        "fhirclient": read_with_fhirclient,
    }
    names = list(readers)
    times: dict[str, list[float]] = {name: [] for name in names}
    seen: dict[str, dict[str, Any]] = {}
    warmup: dict[str, float] = {}
    load_before = os.getloadavg()
    throttled: dict[str, Any] | None = None
    with ehr_process(free_port(), args.latency_ms, redirect_uri) as ehr_url:
        token = obtain_token(ehr_url, redirect_uri)
        fhir_base = f"{ehr_url}/fhir"
        reference: Read | None = None
        for name in names:  # warm-up: imports, the validation worker, connection set-up — not counted
            ehr_stats(ehr_url)
            warmup[name], read = timed(lambda n=name: readers[n](fhir_base, token))
            if name == "secondlook":
                reference = read
            assert reference is not None  # noqa: S101
            same_read(name, reference, read)
            warm_stats = ehr_stats(ehr_url)
            seen[name] = {
                **describe(read),
                "requests": warm_stats["requests"],
                "peak_concurrency": 0,
                "round_trips_runs": [],
            }
        assert reference is not None  # noqa: S101
        for run in range(args.runs):
            for name in names[run % len(names) :] + names[: run % len(names)]:  # rotate who goes first
                ehr_stats(ehr_url)
                seconds, read = timed(lambda n=name: readers[n](fhir_base, token))
                same_read(name, reference, read)
                times[name].append(seconds)
                stats = ehr_stats(ehr_url)
                if stats["requests"] != seen[name]["requests"]:
                    raise RuntimeError(
                        f"{name} sent {stats['requests']} requests, {seen[name]['requests']} in warm-up"
                    )
                # The warm-up read is not counted here either: only the timed reads' round trips.
                seen[name]["round_trips_runs"].append(stats["round_trips"])
                if stats["round_trips"] >= max(seen[name]["round_trips_runs"]):
                    seen[name]["longest_chain"] = stats["longest_chain"]
                seen[name]["peak_concurrency"] = max(
                    seen[name]["peak_concurrency"], stats["peak_concurrency"]
                )
        if args.throttle:
            httpx2.post(f"{ehr_url}/_bench/throttle", params={"n": 40}, timeout=10)
            ehr_stats(ehr_url)
            seconds, read = timed(lambda: readers["secondlook"](fhir_base, token))
            same_read("secondlook (throttled)", reference, read)
            throttled = {"seconds": round(seconds, 3), "complete": True, **ehr_stats(ehr_url)}
    app.close()
    load_after = os.getloadavg()

    def summary(name: str) -> dict[str, Any]:
        return {
            "median_s": round(statistics.median(times[name]), 3),
            "runs_s": [round(s, 3) for s in times[name]],
            "warmup_s": round(warmup[name], 3),
            **{k: v for k, v in seen[name].items() if k not in ("round_trips_runs", "longest_chain")},
        }

    ours = statistics.median(times["secondlook"])
    result = {
        "benchmark": "fetch_latency",
        "patient": PATIENT,
        "latency_ms_per_response": args.latency_ms,
        "runs": args.runs,
        "client_settings": app_client_settings(),
        "secondlook": summary("secondlook"),
        "peers": {
            name: {**summary(name), "ratio_to_secondlook": round(statistics.median(times[name]) / ours, 2)}
            for name in names[1:]
        },
        "round_trips": {name: max(seen[name]["round_trips_runs"]) for name in names},
        "round_trips_runs": {name: seen[name]["round_trips_runs"] for name in names},
        # The longest chain of SecondLook's timed reads: each request started after the one before
        # it was answered (seconds from the read's first request).
        "secondlook_longest_chain": seen["secondlook"]["longest_chain"],
        "requests": seen["secondlook"]["requests"],
        "peak_concurrency": seen["secondlook"]["peak_concurrency"],
        "same_resources_and_attachment_bytes": True,
        **({"throttled_run": throttled} if throttled else {}),
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in load_after],
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

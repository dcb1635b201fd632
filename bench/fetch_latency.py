"""Time to read the large demo patient's record (≈2,000 resources, pathology text behind Binary
URLs) from the demo EHR with a fixed latency per response: SecondLook's async FHIR client vs the
SMART Python client `fhirclient` used as its documentation shows. Prints JSON.

    .venv/bin/python bench/fetch_latency.py [--latency-ms 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import secrets
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from authlib.oauth2.rfc7636 import create_s256_code_challenge

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo_ehr import DemoEhrConfig, create_demo_ehr  # noqa: E402

from launch.fhir_client import FhirClient  # noqa: E402
from launch.http import create_http_client  # noqa: E402
from launch.scopes import GrantedScopes  # noqa: E402
from smartapp.record_loader import PATIENT_SEARCHES, load_patient_record  # noqa: E402
from tests.support import Form, free_port, parse_forms  # noqa: E402

PATIENT = "bench-large"
CLIENT_ID = "secondlook-demo"
SCOPE = "launch/patient openid fhirUser patient/*.rs"


def obtain_token(ehr: str, redirect_uri: str) -> dict[str, Any]:
    """Standalone authorization-code + PKCE flow against the demo EHR, as a browser would."""
    verifier = secrets.token_urlsafe(48)
    with httpx2.Client(follow_redirects=False, timeout=30) as http:
        consent = http.get(f"{ehr}/auth/authorize", params={
            "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect_uri, "scope": SCOPE,
            "state": secrets.token_urlsafe(16), "aud": f"{ehr}/fhir",
            "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256",
        })
        consent.raise_for_status()
        form: Form = parse_forms(consent.text)[0]
        data = [(n, PATIENT if n == "patient" else v) for n, v in form.fields] + form.checkboxes
        data.append(("decision", "allow"))
        redirect = http.post(f"{ehr}{form.action}", data=dict(data) | {"scope": [v for n, v in data if n == "scope"]})
        code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
        token = http.post(f"{ehr}/auth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": CLIENT_ID, "code_verifier": verifier,
        })
        token.raise_for_status()
        return dict(token.json())


class StaticToken:
    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    async def reauthenticate(self) -> str:
        raise RuntimeError("the benchmark token does not refresh")


async def read_with_secondlook(fhir_base: str, token: dict[str, Any]) -> dict[str, int]:
    async with create_http_client() as http:
        client = FhirClient(fhir_base, http, StaticToken(token["access_token"]))
        snapshot = await load_patient_record(client, PATIENT, GrantedScopes.parse(token["scope"]))
    if snapshot.gaps:
        raise RuntimeError(f"SecondLook read had gaps: {[g.message for g in snapshot.gaps]}")
    return {"resources": len(snapshot.resources), "attachments": len(snapshot.attachments)}


def read_with_fhirclient(fhir_base: str, token: dict[str, Any]) -> dict[str, int]:
    """The peer, as its documentation shows: a FHIRClient restored from saved state, then
    `Model.read` / `Model.where(...).perform_resources_iter(server)` per resource type, then the
    report attachments through `server.request_data`."""
    from fhirclient import client
    from fhirclient.models import fhirelementfactory

    smart = client.FHIRClient(state={
        "app_id": CLIENT_ID,
        "server": {"base_uri": fhir_base + "/", "auth_type": "oauth2",
                   "auth": {"app_id": CLIENT_ID, "access_token": token["access_token"]}},
    })
    resources: list[Any] = []
    for resource_type, _label, params in PATIENT_SEARCHES:
        model = fhirelementfactory.FHIRElementFactory.instantiate(resource_type, None).__class__
        if resource_type == "Patient":
            resources.append(model.read(PATIENT, smart.server))
            continue
        struct = {k: v.replace("{pid}", PATIENT) for k, v in params.items()}
        resources.extend(model.where(struct=struct).perform_resources_iter(smart.server))
    attachments = 0
    seen: set[str] = set()
    for resource in resources:
        for form in getattr(resource, "presentedForm", None) or []:
            if form.url and form.url not in seen:
                seen.add(form.url)
                path = form.url[len(fhir_base) + 1:] if form.url.startswith(fhir_base) else form.url
                smart.server.request_data(path, headers={"Accept": form.contentType or "*/*"})
                attachments += 1
    return {"resources": len(resources), "attachments": attachments}


def run_ehr(port: int, latency_ms: int, redirect_uri: str) -> None:
    """The demo EHR in its own process, so its CPU work does not share the clients' interpreter."""
    import uvicorn

    ehr = create_demo_ehr(DemoEhrConfig(base_url=f"http://127.0.0.1:{port}", app_launch_url="http://127.0.0.1:9/launch",
                                        app_standalone_url=None, redirect_uris=[redirect_uri],
                                        latency_ms=latency_ms, include_large_patient=True))
    uvicorn.run(ehr, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextmanager
def ehr_process(port: int, latency_ms: int, redirect_uri: str) -> Iterator[str]:
    process = multiprocessing.get_context("spawn").Process(target=run_ehr, args=(port, latency_ms, redirect_uri))
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


def timed(fn: Any, *args: Any) -> tuple[float, dict[str, int]]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    redirect_uri = "http://127.0.0.1:9/callback"  # never contacted: the code is read from the redirect
    ours: list[float] = []
    peer: list[float] = []
    with ehr_process(free_port(), args.latency_ms, redirect_uri) as ehr_url:
        token = obtain_token(ehr_url, redirect_uri)
        fhir_base = f"{ehr_url}/fhir"
        for _ in range(args.runs):
            seconds, our_counts = timed(lambda: asyncio.run(read_with_secondlook(fhir_base, token)))
            ours.append(seconds)
            seconds, peer_counts = timed(read_with_fhirclient, fhir_base, token)
            peer.append(seconds)
    result = {
        "benchmark": "fetch_latency",
        "patient": PATIENT,
        "latency_ms_per_response": args.latency_ms,
        "runs": args.runs,
        "secondlook": {"median_s": round(statistics.median(ours), 3), "runs_s": [round(s, 3) for s in ours],
                       **our_counts},
        "fhirclient": {"median_s": round(statistics.median(peer), 3), "runs_s": [round(s, 3) for s in peer],
                       **peer_counts},
        "speedup": round(statistics.median(peer) / statistics.median(ours), 2),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": __import__("os").cpu_count()},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

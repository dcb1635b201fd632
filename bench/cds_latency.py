"""CDS Hooks latency: `patient-view` calls at 10 concurrent requests, printed as JSON.

Runs the demo EHR (50 ms added to every response) and `secondlook serve` in two child
processes, trusts a throw-away CDS client whose JWKS this script serves, gets one access
token per demo patient by driving the demo EHR's SMART launch and consent form over HTTP, then
measures two modes:

  prefetch     every prefetch key filled from the demo patient's bundle; report attachments
               (Binary) are still read from the EHR with the hook's fhirAuthorization
  no_prefetch  no prefetch: the service reads the whole record from the EHR

Usage: .venv/bin/python bench/cds_latency.py [--requests 200] [--concurrency 10] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from demo_ehr.config import PACKAGED_PATIENTS_DIR
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from smartapp.cds.discovery import PREFETCH, SERVICE_ID

ISS = "https://bench.invalid/cds-client"
SCOPE = (
    "launch openid fhirUser patient/Patient.rs patient/Condition.rs patient/DiagnosticReport.rs "
    "patient/DocumentReference.rs patient/Binary.r patient/Observation.rs patient/Procedure.rs "
    "patient/MedicationRequest.rs patient/MedicationAdministration.rs patient/ServiceRequest.rs "
    "patient/CarePlan.rs patient/Coverage.rs patient/Specimen.rs"
)


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on loopback now (the sockets are held until all are chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def serve_jwks(document: dict[str, Any]) -> tuple[ThreadingHTTPServer, str]:
    body = json.dumps(document).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's method name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/jwks.json"


EHR_SCRIPT = """
import sys, uvicorn
from demo_ehr import DemoEhrConfig, create_demo_ehr
port, app_port, latency = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ehr = create_demo_ehr(DemoEhrConfig(base_url=f"http://127.0.0.1:{port}", latency_ms=latency,
                                    app_launch_url=f"http://127.0.0.1:{app_port}/launch",
                                    redirect_uris=[f"http://127.0.0.1:{app_port}/callback"],
                                    include_large_patient=False))
uvicorn.run(ehr, host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx2.get(url, timeout=1)
            return
        except httpx2.HTTPError:
            time.sleep(0.2)
    said = log.read_text(errors="replace")[-1500:] if log.exists() else ""
    state = f"exited with {process.returncode}" if process.poll() is not None else "still not answering"
    raise RuntimeError(f"{url} did not come up ({state}); its output ends:\n{said}")


def start_servers(
    port: int, app_port: int, args: argparse.Namespace, clients_file: Path, data_dir: Path
) -> list[subprocess.Popen[bytes]]:
    """The demo EHR and `secondlook serve` in two processes, as an EHR and the service would be.
    Their output goes to files in `data_dir`, shown if one does not come up."""
    ehr_log, app_log = data_dir / "ehr.log", data_dir / "app.log"
    with ehr_log.open("wb") as out:
        ehr = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", EHR_SCRIPT, str(port), str(app_port), str(args.latency_ms)],
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    env = {
        **os.environ,
        "SECONDLOOK_PUBLIC_URL": f"http://127.0.0.1:{app_port}",
        "SECONDLOOK_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'app.db'}",
        "SECONDLOOK_SECRET_KEY_FILE": str(data_dir / "keys" / "secret.key"),  # never beside the database
        "SECONDLOOK_CDS_CLIENTS": str(clients_file),
        "SECONDLOOK_FHIR_MAX_CONCURRENCY": str(args.fhir_concurrency),
        "SECONDLOOK_LOG_LEVEL": "WARNING",
    }
    with app_log.open("wb") as out:
        app = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "smartapp.cli.main", "serve", "--port", str(app_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    processes = [ehr, app]
    try:
        wait_for(f"http://127.0.0.1:{port}/fhir/metadata", ehr, ehr_log)
        wait_for(f"http://127.0.0.1:{app_port}/healthz", app, app_log)
    except RuntimeError:
        stop(processes)
        raise
    return processes


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=20)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def access_token(ehr: str, app: str, patient: str) -> dict[str, Any]:
    """One EHR launch through the demo EHR's pages: launch, authorize, consent form, token."""
    with httpx2.Client(timeout=30, follow_redirects=False) as http:
        launched = http.post(f"{ehr}/launch", data={"patient": patient, "need_patient_banner": "true"})
        launch = parse_qs(urlsplit(launched.headers["location"]).query)["launch"][0]
        verifier, redirect = secrets.token_urlsafe(48), f"{app}/callback"
        page = http.get(
            f"{ehr}/auth/authorize",
            params={
                "response_type": "code",
                "client_id": "secondlook-demo",
                "redirect_uri": redirect,
                "scope": SCOPE,
                "state": secrets.token_urlsafe(16),
                "aud": f"{ehr}/fhir",
                "launch": launch,
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
            },
        )
        consent = re.search(r'name="consent_id" value="([^"]+)"', page.text)
        if consent is None:
            raise RuntimeError("no consent form from the demo EHR")
        scopes = re.findall(r'name="scope" value="([^"]+)"', page.text)
        answer = http.post(
            f"{ehr}/auth/consent", data={"consent_id": consent.group(1), "decision": "allow", "scope": scopes}
        )
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        token = http.post(
            f"{ehr}/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "code_verifier": verifier,
                "client_id": "secondlook-demo",
            },
        )
        token.raise_for_status()
        result: dict[str, Any] = token.json()
        return result


def demo_patients() -> list[tuple[str, list[dict[str, Any]]]]:
    patients = []
    for entry in json.loads((PACKAGED_PATIENTS_DIR / "index.json").read_text()):
        bundle = json.loads((PACKAGED_PATIENTS_DIR / entry["file"]).read_text())
        patients.append((entry["patient_id"], [e["resource"] for e in bundle["entry"]]))
    return patients


def prefetch_of(resources: list[dict[str, Any]]) -> dict[str, Any]:
    prefetch: dict[str, Any] = {}
    for key, (rtype, _) in PREFETCH.items():
        matches = [r for r in resources if r["resourceType"] == rtype]
        if rtype == "Patient":
            prefetch[key] = matches[0]
        else:
            prefetch[key] = {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": r} for r in matches],
            }
    return prefetch


def hook_request(
    patient: str, token: dict[str, Any], fhir: str, prefetch: dict[str, Any] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir,
        "fhirAuthorization": {
            "access_token": token["access_token"],
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": token["scope"],
            "subject": "secondlook-demo",
            "patient": patient,
        },
        "context": {"userId": "Practitioner/bench", "patientId": patient},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


async def run_mode(
    url: str, key: ECKey, bodies: list[dict[str, Any]], requests: int, concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(index)

    async def worker(http: httpx2.AsyncClient) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            body = dict(bodies[index % len(bodies)], hookInstance=str(uuid.uuid4()))
            now = int(time.time())
            claims = {"iss": ISS, "aud": url, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
            signed = jwt.encode(
                {"alg": "ES384", "typ": "JWT", "kid": key.kid}, claims, key, algorithms=["ES384"]
            )
            started = time.perf_counter()
            response = await http.post(url, json=body, headers={"Authorization": f"Bearer {signed}"})
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    async with httpx2.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    latencies.sort()
    return {
        "requests": requests,
        "concurrency": concurrency,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(latencies[max(0, int(len(latencies) * 0.95) - 1)], 1),
        "max_ms": round(latencies[-1], 1),
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    key = ECKey.generate_key("P-384", parameters={"kid": "bench-1"}, private=True)
    jwks_server, jwks_url = serve_jwks(KeySet([key]).as_dict(private=False))
    port, app_port = free_ports(2)
    ehr, app = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{app_port}"
    with tempfile.TemporaryDirectory() as tmp:
        clients = Path(tmp) / "cds-clients.toml"
        clients.write_text(
            f'[[client]]\niss = "{ISS}"\njwks_url = "{jwks_url}"\nfhir_servers = ["{ehr}/fhir"]\n'
        )
        processes = start_servers(port, app_port, args, clients, Path(tmp))
        try:
            patients = demo_patients()
            tokens = {pid: access_token(ehr, app, pid) for pid, _ in patients}
            url = f"{app}/cds-services/{SERVICE_ID}"
            with_prefetch = [
                hook_request(pid, tokens[pid], f"{ehr}/fhir", prefetch_of(res)) for pid, res in patients
            ]
            without = [hook_request(pid, tokens[pid], f"{ehr}/fhir", None) for pid, _ in patients]
            # The first hook calls after start-up (the service's worker processes were started and
            # warmed before /healthz answered), then a warm-up round that is not counted.
            first = await run_mode(url, key, with_prefetch, args.concurrency, args.concurrency)
            await run_mode(url, key, with_prefetch, len(patients), args.concurrency)
            prefetch = await run_mode(url, key, with_prefetch, args.requests, args.concurrency)
            no_prefetch = await run_mode(url, key, without, args.requests, args.concurrency)
        finally:
            stop(processes)
            jwks_server.shutdown()
    return {
        "benchmark": "cds_latency",
        "cpu_count": os.cpu_count(),
        "ehr_latency_ms": args.latency_ms,
        "fhir_max_concurrency": args.fhir_concurrency,
        "patients": len(patients),
        "first_calls_after_start": first,
        "prefetch": {**prefetch, "target_p95_ms": 500},
        "no_prefetch": {**no_prefetch, "target_p95_ms": 1000},
    }


def main() -> int:
    from smartapp.config import Settings

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument(
        "--fhir-concurrency",
        type=int,
        default=Settings.model_fields["fhir_max_concurrency"].default,
        help="SECONDLOOK_FHIR_MAX_CONCURRENCY: parallel requests to one EHR (default: the app's)",
    )
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

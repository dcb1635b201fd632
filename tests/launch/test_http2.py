"""HTTP/2 to an EHR that offers it over TLS: every request of a chart read shares one connection.

The server is Hypercorn on loopback with a certificate from a throw-away authority made here; the
client is the app's own (`create_http_client`), trusting only that authority.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypercorn.asyncio import serve
from hypercorn.config import Config

from launch.fhir_client import FhirClient
from launch.http import create_http_client
from tests.support import free_port

from .fakes import StaticTokens, bundle


def authority_and_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) files for 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test authority")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


class FhirOverHttp2:
    """An ASGI FHIR server that answers every search with one Observation and records, per request,
    the HTTP version and the client's port (one port = one connection)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.seen.append((scope["http_version"], scope["client"][1]))
        await asyncio.sleep(0.05)  # requests overlap, as a chart read's do
        body = json.dumps(bundle([{"resourceType": "Observation", "id": scope["path"].rsplit("/", 1)[-1]}]))
        headers = [(b"content-type", b"application/fhir+json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body.encode()})


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, FhirOverHttp2, Path]]:
    ca, certificate, key = authority_and_certificate(tmp_path)
    app = FhirOverHttp2()
    config = Config()
    config.bind = [f"127.0.0.1:{free_port()}"]
    config.certfile, config.keyfile = str(certificate), str(key)
    config.alpn_protocols = ["h2", "http/1.1"]
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()

    async def run() -> None:
        started.set()
        await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    started.wait(10)
    yield f"https://{config.bind[0]}/fhir", app, ca
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


async def test_a_chart_read_shares_one_http2_connection(tls_server: tuple[str, FhirOverHttp2, Path]) -> None:
    base, app, ca = tls_server
    trust = ssl.create_default_context(cafile=str(ca))
    async with create_http_client(verify=trust) as http:
        client = FhirClient(base, http, StaticTokens(), max_concurrency=8)
        for _attempt in range(50):  # the server thread may still be binding
            try:
                await client.search("Patient", {"_id": "p1"})
                break
            except Exception:  # noqa: BLE001 - not up yet
                await asyncio.sleep(0.1)
        app.seen.clear()
        types = ["Condition", "Observation", "DiagnosticReport", "Procedure", "MedicationRequest"] * 4
        results = await asyncio.gather(*(client.search(t, {"patient": "p1"}) for t in types))
    assert all(len(result.resources) == 1 for result in results)
    assert {version for version, _port in app.seen} == {"2"}
    assert len({port for _version, port in app.seen}) == 1  # twenty requests, one connection
    assert len(app.seen) == len(types)

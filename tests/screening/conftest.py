"""A real 2-worker Dask LocalCluster (the embedded cluster `secondlook screen` starts), created once
per test module that asks for it; and the registry of one EHR with a backend services key (for
`secondlook screen --ehr`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from distributed import Client, LocalCluster
from pytest_httpserver import HTTPServer

from smartapp.config import get_settings
from smartapp.screening.cluster import local_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster(2) as local:
        yield local


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster) as connected:
        yield connected


@pytest.fixture
def registry(tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "backend.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    iss = httpserver.url_for("/fhir")
    (tmp_path / "ehrs.toml").write_text(f'''
[[ehr]]
iss = "{iss}"
client_id = "launch-client"

[ehr.backend_services]
client_id = "secondlook-backend"
keys = [{{ kid = "k1", private_key_path = "backend.pem" }}]
''')
    monkeypatch.setenv("SECONDLOOK_EHR_CONFIG", str(tmp_path / "ehrs.toml"))
    get_settings.cache_clear()
    yield iss
    get_settings.cache_clear()

"""The CDS client allowlist file and the sandbox switch."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from launch.registry import Registration, Registry
from smartapp.cds.clients import SANDBOX_ISS, SANDBOX_JKU, CdsClientError, load_clients
from smartapp.config import Settings


def settings(tmp_path: Path, text: str | None, **extra: object) -> Settings:
    path = None
    if text is not None:
        path = tmp_path / "cds.toml"
        path.write_text(text)
    return Settings(cds_clients=path, secret_key_file=tmp_path / "k", **extra)  # type: ignore[arg-type]


def test_no_file_and_no_sandbox_trusts_nobody(tmp_path: Path) -> None:
    assert load_clients(settings(tmp_path, None)).all() == []


def test_sandbox_is_off_by_default_and_refused_in_production(tmp_path: Path) -> None:
    assert Settings().cds_allow_sandbox is False
    clients = load_clients(settings(tmp_path, None, cds_allow_sandbox=True))
    sandbox = clients.get(SANDBOX_ISS)
    assert sandbox is not None and sandbox.jku == (SANDBOX_JKU,) and sandbox.jwks_url is None
    production = Settings(
        environment="production",
        secret_key=Fernet.generate_key().decode(),
        public_url="https://app.test",
        ehr_config=tmp_path / "ehrs.toml",
        cds_allow_sandbox=True,
    )
    with pytest.raises(CdsClientError):
        load_clients(production)


def test_entry_needs_a_key_source(tmp_path: Path) -> None:
    with pytest.raises(CdsClientError, match="jwks_url or a jku"):
        load_clients(settings(tmp_path, '[[client]]\niss = "https://a.test"\n'))


def test_duplicate_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    entry = '[[client]]\niss = "https://a.test"\njwks_url = "https://a.test/jwks"\n'
    with pytest.raises(CdsClientError, match="twice"):
        load_clients(settings(tmp_path, entry + entry))
    with pytest.raises(CdsClientError):
        load_clients(settings(tmp_path, entry + 'secret = "x"\n'))


def test_fhir_servers_listed_or_registered(tmp_path: Path) -> None:
    text = (
        '[[client]]\niss = "https://a.test"\njwks_url = "https://a.test/jwks"\nfhir_servers = ["https://fhir.a.test/r4/"]\n'
        '[[client]]\niss = "https://b.test"\njwks_url = "https://b.test/jwks"\n'
    )
    clients = load_clients(settings(tmp_path, text))
    registry = Registry([Registration(iss="https://registered.test/fhir", client_id="x")])
    a, b = clients.get("https://a.test"), clients.get("https://b.test")
    assert a is not None and b is not None
    assert a.allows_fhir_server("https://fhir.a.test/r4", registry)
    assert not a.allows_fhir_server(
        "https://registered.test/fhir", registry
    )  # an explicit list is the whole list
    assert not a.allows_fhir_server("https://fhir.a.test/r4/../other", registry)
    assert b.allows_fhir_server("https://registered.test/fhir/", registry)
    assert not b.allows_fhir_server("https://evil.test/fhir", registry)

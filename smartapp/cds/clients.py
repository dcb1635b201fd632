"""Trusted CDS clients (EHRs that call our CDS Hooks service), read from a TOML file.

One `[[client]]` table per CDS client::

    [[client]]
    iss = "https://ehr.example.org/cds-client"       # the JWT `iss` the EHR signs with
    jwks_url = "https://ehr.example.org/jwks.json"   # key set used when the JWT has no `jku`
    jku = ["https://ehr.example.org/jwks.json"]      # `jku` header values we may dereference
    fhir_servers = ["https://ehr.example.org/fhir/r4"]  # `fhirServer` bases we send its token to
    tenant = "hospital-a"                            # optional: required `tenant` claim
    cors_origins = ["https://ehr.example.org"]       # optional: browser-based clients

An issuer needs `jwks_url` or a `jku` allowlist (or both). A `fhirServer` is only used when it
is listed for the client that signed the request, or (if no list is given) when it is an EHR of
the SMART registry; anything else means the token is never sent and missing data gives 412.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from launch.registry import Registry, normalize_issuer
from smartapp.config import Settings

SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"


class CdsClientError(ValueError):
    """The CDS client file is missing or invalid."""


class CdsClient(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1)
    jwks_url: str | None = None
    jku: tuple[str, ...] = ()
    fhir_servers: tuple[str, ...] | None = None
    tenant: str | None = None
    cors_origins: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> CdsClient:
        if not self.jwks_url and not self.jku:
            raise ValueError("a CDS client needs jwks_url or a jku allowlist")
        for url in (self.jwks_url, *self.jku):
            if url and not url.startswith(("https://", "http://")):
                raise ValueError(f"key set URLs must be http(s), got {url!r}")
        return self

    def allows_fhir_server(self, fhir_server: str, registry: Registry) -> bool:
        base = normalize_issuer(fhir_server)
        if self.fhir_servers is not None:
            return base in {normalize_issuer(s) for s in self.fhir_servers}
        return registry.get(base) is not None


class CdsClients:
    """The allowlist of CDS client issuers, keyed by exact `iss`."""

    def __init__(self, clients: Iterable[CdsClient]) -> None:
        self._by_iss: dict[str, CdsClient] = {}
        for client in clients:
            if client.iss in self._by_iss:
                raise CdsClientError(f"CDS client {client.iss} is listed twice")
            self._by_iss[client.iss] = client

    def get(self, iss: str) -> CdsClient | None:
        return self._by_iss.get(iss)

    def all(self) -> list[CdsClient]:
        return list(self._by_iss.values())

    def cors_origins(self) -> frozenset[str]:
        return frozenset(o.rstrip("/") for c in self._by_iss.values() for o in c.cors_origins)


def read_clients_file(path: Path) -> list[CdsClient]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CdsClientError(f"cannot read CDS client file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CdsClientError(f"CDS client file {path} is not valid TOML: {exc}") from exc
    entries = document.get("client", [])
    if not isinstance(entries, list):
        raise CdsClientError(f"{path}: 'client' must be an array of tables ([[client]])")
    clients = []
    for index, entry in enumerate(entries, start=1):
        try:
            clients.append(CdsClient.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors()
            )
            raise CdsClientError(f"{path}: [[client]] entry #{index}: {problems}") from exc
    return clients


def sandbox_client() -> CdsClient:
    # The sandbox signs ES384 with a key whose private half is public (cds-hooks/sandbox
    # jwt-generator.js), so anyone can forge its tokens: development only. It sends
    # fhirAuthorization only for secured servers; those must be EHRs of our SMART registry.
    return CdsClient(iss=SANDBOX_ISS, jku=(SANDBOX_JKU,), cors_origins=(SANDBOX_ORIGIN,))


def cds_configured(settings: Settings) -> bool:
    """Whether any CDS client can call the service (a clients file, or the development sandbox)."""
    return settings.cds_clients is not None or settings.cds_allow_sandbox


def load_clients(settings: Settings) -> CdsClients:
    clients = read_clients_file(settings.cds_clients) if settings.cds_clients else []
    if settings.cds_allow_sandbox:
        if settings.environment == "production":
            raise CdsClientError("SECONDLOOK_CDS_ALLOW_SANDBOX must not be set in production")
        clients.append(sandbox_client())
    return CdsClients(clients)

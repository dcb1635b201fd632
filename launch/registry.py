"""Registered EHRs, read from a TOML file: issuer → client id, client authentication, scopes.

The file holds one `[[ehr]]` table per EHR::

    [[ehr]]
    iss = "https://fhir.example.org/r4"
    client_id = "secondlook"
    client_auth = "private_key_jwt"          # public | client_secret_basic | private_key_jwt
    signing_alg = "ES384"                     # RS384 | ES384
    private_key_path = "keys/example.pem"     # or private_key_jwk_path = "keys/example.jwk.json"
    kid = "secondlook-2026"
    scope_syntax = "auto"                     # v2 | v1 | auto
    frame_ancestors = ["https://ehr.example.org"]
    display_name = "Example Hospital"
    max_concurrency = 8                       # requests in flight to this EHR (default: the app's)

    [ehr.backend_services]                    # optional: system access for Bulk Data export
    client_id = "secondlook-backend"
    keys = [{ kid = "sl-backend-1", private_key_path = "keys/backend.pem" }]

A secret may be given inline (`client_secret`) or, better, by the name of an environment
variable (`client_secret_env`). Relative key paths are resolved against the file's folder.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from joserfc.jwk import ECKey, RSAKey
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)

from launch.backend_keys import BackendServices, SigningAlg, SigningKey
from launch.errors import LaunchError

ClientAuth = Literal["public", "client_secret_basic", "private_key_jwt"]


class RegistryError(ValueError):
    """The EHR registration file is missing or invalid."""


def normalize_issuer(iss: str) -> str:
    """Strip surrounding whitespace and trailing slashes; issuers are then compared exactly."""
    return iss.strip().rstrip("/")


class Registration(BaseModel):
    """One EHR (FHIR server) the app may be launched from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str
    client_id: str = Field(min_length=1)
    client_auth: ClientAuth = "public"
    client_secret: SecretStr | None = None
    client_secret_env: str | None = None
    signing_alg: SigningAlg | None = None
    private_key_path: Path | None = None
    private_key_jwk_path: Path | None = None
    kid: str | None = None
    scopes: str | None = None
    scope_syntax: Literal["v2", "v1", "auto"] = "v2"
    write_back: bool = False
    frame_ancestors: list[str] = Field(default_factory=list)
    display_name: str = Field("", validation_alias=AliasChoices("display_name", "name"))
    # Offer this EHR on the app's standalone-launch page.
    standalone: bool = False
    # Servers that refuse a search without `category` for some types (Epic partitions
    # Observation by category): the categories to search, per resource type.
    required_categories: dict[str, list[str]] = Field(default_factory=dict)
    # SMART Backend Services (system-level access, Bulk Data) with this EHR; see launch/backend_keys.py.
    backend_services: BackendServices | None = None
    # Who may use the app's user-level (population) pages with this EHR: `fhirUser` references as
    # the EHR sends them (relative, e.g. "Practitioner/abc", or absolute under `iss`), and/or role
    # codes ("code" or "system|code") of the user's PractitionerRole resources.
    worklist_users: list[str] = Field(default_factory=list)
    worklist_roles: list[str] = Field(default_factory=list)

    # Requests in flight from one app process to this EHR, shared by its launches and CDS calls;
    # None means the app's setting (SECONDLOOK_FHIR_MAX_CONCURRENCY). Halved for a while on 429/503.
    max_concurrency: int | None = Field(None, ge=1, le=256)

    _signing_key: SigningKey | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("iss"), str):
            data = {**data, "iss": normalize_issuer(data["iss"])}
        return data

    @model_validator(mode="after")
    def _check_auth(self) -> Registration:
        if not self.iss.startswith(("https://", "http://")):
            raise ValueError(f"iss must be an http(s) URL, got {self.iss!r}")
        if self.client_auth == "client_secret_basic":
            if self.client_secret is None and self.client_secret_env is None:
                raise ValueError("client_secret_basic needs client_secret or client_secret_env")
            if self.client_secret is None and self.client_secret_env is not None:
                value = os.environ.get(self.client_secret_env)
                if not value:
                    raise ValueError(
                        f"environment variable {self.client_secret_env} (client secret) is not set"
                    )
                object.__setattr__(self, "client_secret", SecretStr(value))
        if self.client_auth == "private_key_jwt":
            if self.signing_alg is None or not self.kid:
                raise ValueError("private_key_jwt needs signing_alg (RS384 or ES384) and kid")
            if (self.private_key_path is None) == (self.private_key_jwk_path is None):
                raise ValueError(
                    "private_key_jwt needs exactly one of private_key_path or private_key_jwk_path"
                )
            self._signing_key = _load_key(self)
        return self

    def concurrency(self, default: int) -> int:
        """The in-flight limit for this EHR: its own `max_concurrency`, else the app's `default`."""
        return self.max_concurrency or default

    @property
    def name(self) -> str:
        return self.display_name

    @property
    def signing_key(self) -> SigningKey:
        if self._signing_key is None:
            raise LaunchError("server_error", f"No signing key is configured for {self.iss}.", 500)
        return self._signing_key

    def secret(self) -> str:
        if self.client_secret is None:
            raise LaunchError("server_error", f"No client secret is configured for {self.iss}.", 500)
        return self.client_secret.get_secret_value()


def _load_key(reg: Registration) -> SigningKey:
    key_type: type[RSAKey] | type[ECKey] = RSAKey if reg.signing_alg == "RS384" else ECKey
    path = reg.private_key_path or reg.private_key_jwk_path
    assert path is not None  # noqa: S101 - guaranteed by the caller's check
    try:
        raw = path.read_bytes()
        data: Any = json.loads(raw) if reg.private_key_jwk_path is not None else raw
        key = key_type.import_key(data)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"cannot load the {reg.signing_alg} private key from {path}: {exc}") from exc
    if not key.is_private:
        raise ValueError(f"{path} holds a public key; private_key_jwt needs the private key")
    return key


class Registry:
    """The set of registered EHRs, keyed by normalised issuer."""

    def __init__(self, registrations: Iterable[Registration]) -> None:
        self._by_iss: dict[str, Registration] = {}
        for reg in registrations:
            if reg.iss in self._by_iss:
                raise RegistryError(f"issuer {reg.iss} is registered twice")
            self._by_iss[reg.iss] = reg

    @classmethod
    def from_file(cls, path: str | Path) -> Registry:
        path = Path(path)
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RegistryError(f"cannot read EHR registration file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise RegistryError(f"EHR registration file {path} is not valid TOML: {exc}") from exc
        entries = document.get("ehr", [])
        if not isinstance(entries, list):
            raise RegistryError(f"{path}: 'ehr' must be an array of tables ([[ehr]])")
        registrations = []
        for index, entry in enumerate(entries, start=1):
            for field in ("private_key_path", "private_key_jwk_path"):
                if isinstance(entry.get(field), str):
                    entry[field] = path.parent / entry[field]
            backend = entry.get("backend_services")
            for key in backend.get("keys", []) if isinstance(backend, dict) else []:
                if isinstance(key, dict) and isinstance(key.get("private_key_path"), str):
                    key["private_key_path"] = path.parent / key["private_key_path"]
            try:
                registrations.append(Registration.model_validate(entry))
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}" for err in exc.errors()
                )
                raise RegistryError(f"{path}: [[ehr]] entry #{index}: {problems}") from exc
        return cls(registrations)

    def get(self, iss: str) -> Registration | None:
        return self._by_iss.get(normalize_issuer(iss))

    def require(self, iss: str) -> Registration:
        registration = self.get(iss)
        if registration is None:
            raise LaunchError(
                "unregistered_issuer",
                f"The EHR at {normalize_issuer(iss)[:300]} is not registered with SecondLook, so the "
                "launch was refused and nothing was sent to it. Ask your administrator to register "
                "this FHIR server address (iss).",
            )
        return registration

    def all(self) -> list[Registration]:
        return list(self._by_iss.values())

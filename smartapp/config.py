"""One Settings class, read once. Environment variables use the SECONDLOOK_ prefix."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"changethis", "changeme", "secret", "replace-me", ""}


def default_key_file() -> Path:
    """$XDG_CONFIG_HOME/secondlook/secret.key; the XDG default ~/.config when unset, empty or relative
    (https://specifications.freedesktop.org/basedir-spec/latest/)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "secondlook" / "secret.key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SECONDLOOK_", env_file=None, extra="ignore")

    environment: Literal["development", "production"] = "development"
    # Where the app is reachable from the browser; redirect_uri = public_url + "/callback".
    public_url: str = "http://127.0.0.1:8000"
    database_url: str = "sqlite+aiosqlite:///var/secondlook.db"
    # Fernet keys (comma-separated, newest first) that encrypt tokens and patient data at rest. In
    # development an unset key is generated once and kept in the user's config folder (never beside
    # the database, whose copy or backup would then carry its own key).
    secret_key: SecretStr | None = None
    secret_key_file: Path = Field(default_factory=default_key_file)
    ehr_config: Path | None = Field(default=None, description="TOML file of registered EHRs")
    session_ttl_hours: float = 12.0
    # How often expired pending launches, sessions and CDS replay rows are deleted (also `secondlook purge`).
    purge_interval_seconds: float = 900.0
    # Host names this app answers to besides the public URL's (e.g. an internal name behind a proxy).
    allowed_hosts: list[str] = Field(default_factory=list)
    # Largest request body accepted (CDS Hooks prefetch is the largest legitimate one).
    max_request_bytes: int = 16 * 1024 * 1024
    discovery_ttl_seconds: float = 300.0
    fhir_timeout_seconds: float = 20.0
    # Parallel requests from this process to one EHR, shared by every launch and hook call.
    # EHRs publish no numeric limits (Epic, Oracle Health); 429/503 + Retry-After halve it for a
    # while. 48: the large record's read (91 requests, 50 of them report texts) fits in its plan's
    # four round trips; ten hook calls or launches at once each get about five requests in flight
    # (docs/performance.md); a registry entry's max_concurrency lowers it for one EHR.
    fhir_max_concurrency: int = 48
    # `secondlook screen`: address of an existing Dask scheduler (tcp://host:8786);
    # unset = an embedded LocalCluster.
    dask_scheduler: str | None = None
    log_level: str = "INFO"
    # Extra frame ancestors allowed for every page (the EHR's own come from its registration).
    frame_ancestors: list[str] = Field(default_factory=list)
    # A site's own referral-center directory (same JSON shape as smartapp/packet/data/centers.json;
    # docs/directory.md).
    packet_directory: Path | None = None
    # CDS Hooks: TOML file of trusted CDS clients (issuers, JWKS, allowed FHIR servers).
    cds_clients: Path | None = None
    # Trusts the public CDS Hooks sandbox, whose signing key is published: development only.
    cds_allow_sandbox: bool = False

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment != "production":
            return self
        if self.secret_key is None or self.secret_key.get_secret_value().strip() in PLACEHOLDER_SECRETS:
            raise ValueError("SECONDLOOK_SECRET_KEY must be set to real Fernet key(s) in production")
        if not self.public_url.startswith("https://"):
            raise ValueError("SECONDLOOK_PUBLIC_URL must be https:// in production")
        if self.ehr_config is None:
            raise ValueError("SECONDLOOK_EHR_CONFIG must name the registered-EHR file in production")
        return self

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}/callback"


@lru_cache
def get_settings() -> Settings:
    return Settings()

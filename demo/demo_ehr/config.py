"""Settings of the embedded demo EHR; every field has a default that works on loopback."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

PACKAGED_PATIENTS_DIR = Path(__file__).parent / "fixtures" / "patients"


@dataclass(frozen=True)
class BackendClientConfig:
    """A SMART Backend Services client registered with the demo EHR: its public keys as an inline
    JWKS or a JWKS URL (exactly one), and the system scopes it may be granted."""

    client_id: str
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None
    scopes: tuple[str, ...] = ("system/*.rs",)

    def __post_init__(self) -> None:
        if (self.jwks is None) == (self.jwks_url is None):
            raise ValueError(f"backend client {self.client_id}: give exactly one of jwks or jwks_url")


@dataclass(frozen=True)
class DemoEhrConfig:
    base_url: str = "http://127.0.0.1:8000"
    app_launch_url: str = "http://127.0.0.1:8001/launch"
    app_standalone_url: str | None = None
    redirect_uris: list[str] = field(default_factory=lambda: ["http://127.0.0.1:8001/callback"])
    patients_dir: Path | None = None
    latency_ms: int = 0
    access_token_ttl: int = 3600
    # False mimics Oracle Health: the refresh response carries no new refresh_token.
    rotate_refresh_tokens: bool = True
    include_large_patient: bool = True
    page_size_default: int = 20
    page_size_max: int = 100
    # Move every fixture date so the charts' stories hold on this day (None: keep the fixtures' own dates).
    stories_on: date | None = None
    # SMART Backend Services clients (client_credentials + private_key_jwt) and their token lifetime.
    backend_clients: tuple[BackendClientConfig, ...] = ()
    backend_token_ttl: int = 300
    # Bulk Data $export: how long a job runs before its manifest is ready, the Retry-After sent to
    # pollers, and where job files go (None: a temporary folder removed when the process ends).
    export_seconds: float = 1.0
    export_retry_after: int = 1
    export_dir: Path | None = None
    # Files of an export organized by patient (`organizeOutputBy=Patient`) end after the resource
    # block that takes them past this size (a block is never split across files).
    export_block_file_bytes: int = 8 * 1024 * 1024
    # Synthetic population added to the fixtures (see synthetic.py); seeded, so always the same.
    synthetic_patients: int = 0
    synthetic_seed: int = 20261205
    # Visits of each synthetic chart without cancer, times this (8: Synthea-sized, ~300 resources).
    synthetic_visit_scale: int = 1

    @property
    def origin(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def fhir_base(self) -> str:
        return self.origin + "/fhir"

    @property
    def resolved_patients_dir(self) -> Path:
        return self.patients_dir if self.patients_dir is not None else PACKAGED_PATIENTS_DIR

"""Settings of the embedded demo EHR; every field has a default that works on loopback."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

PACKAGED_PATIENTS_DIR = Path(__file__).parent / "fixtures" / "patients"


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

    @property
    def origin(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def fhir_base(self) -> str:
        return self.origin + "/fhir"

    @property
    def resolved_patients_dir(self) -> Path:
        return self.patients_dir if self.patients_dir is not None else PACKAGED_PATIENTS_DIR

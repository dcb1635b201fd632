"""The demo stack (demo EHR + app) on free loopback ports, as `secondlook demo` runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from demo_ehr import DemoEhrConfig, create_demo_ehr
from demo_ehr.stack import demo_registry

from smartapp.config import Settings
from smartapp.web.app import create_app
from tests.support import Browser, free_port, serve_in_thread

FIXTURES = Path(__file__).resolve().parents[2] / "demo" / "demo_ehr" / "fixtures" / "patients"


@dataclass
class Stack:
    ehr: str
    app: str
    data_dir: Path
    ehr_port: int

    @property
    def iss(self) -> str:
        return f"{self.ehr}/fhir"


def app_settings(app_url: str, data_dir: Path) -> Settings:
    # The key is the development one, in the temporary config folder (tests/conftest.py).
    return Settings(public_url=app_url, database_url=f"sqlite+aiosqlite:///{data_dir / 'app.db'}")


def start_stack(tmp_path: Path, app_host: str = "127.0.0.1", **ehr_options: Any) -> Iterator[Stack]:
    """`app_host="localhost"` puts the app on another site than the EHR (127.0.0.1), as a real EHR
    iframe is; both still listen on 127.0.0.1 only."""
    ehr_port, app_port = free_port(), free_port()
    ehr_url, app_url = f"http://127.0.0.1:{ehr_port}", f"http://{app_host}:{app_port}"
    ehr = create_demo_ehr(
        DemoEhrConfig(
            base_url=ehr_url,
            app_launch_url=f"{app_url}/launch",
            app_standalone_url=f"{app_url}/standalone",
            redirect_uris=[f"{app_url}/callback"],
            include_large_patient=False,
            **({"stories_on": date.today()} | ehr_options),
        )
    )
    app = create_app(app_settings(app_url, tmp_path), demo_registry(ehr_url))
    with serve_in_thread(ehr, ehr_port), serve_in_thread(app, app_port):
        yield Stack(ehr_url, app_url, tmp_path, ehr_port)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield from start_stack(tmp_path)


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def fixture_resources(patient_id: str) -> list[dict[str, Any]]:
    """The demo patient's resources, read straight from its fixture file (not through the app)."""
    for path in sorted(FIXTURES.glob("*.json")):
        if path.name == "index.json":
            continue
        bundle = json.loads(path.read_text())
        resources = [e["resource"] for e in bundle.get("entry", [])]
        if any(r["resourceType"] == "Patient" and r["id"] == patient_id for r in resources):
            return resources
    raise LookupError(patient_id)


def demo_patient_ids() -> list[str]:
    return [entry["patient_id"] for entry in json.loads((FIXTURES / "index.json").read_text())]

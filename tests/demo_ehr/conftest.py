"""Fixtures that run the demo EHR in a real uvicorn server on a free loopback port.

Reusable pattern: `with run_demo_ehr(latency_ms=50) as ehr:` yields a `RunningEhr` whose
`base_url` is the EHR origin and whose `config` is the DemoEhrConfig it was built with.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from demo_ehr import DemoEhrConfig, create_demo_ehr

DATA = Path(__file__).parent / "data" / "patients"
APP_ORIGIN = "http://127.0.0.1:9"  # nothing listens there: the tests play the app themselves
REDIRECT_URI = f"{APP_ORIGIN}/callback"


@dataclass
class RunningEhr:
    base_url: str
    config: DemoEhrConfig

    @property
    def fhir_base(self) -> str:
        return self.config.fhir_base


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_config(base_url: str, **overrides: Any) -> DemoEhrConfig:
    settings: dict[str, Any] = {
        "base_url": base_url,
        "app_launch_url": f"{APP_ORIGIN}/launch",
        "app_standalone_url": f"{APP_ORIGIN}/standalone",
        "redirect_uris": [REDIRECT_URI],
        "patients_dir": DATA,
        "include_large_patient": False,
    }
    settings.update(overrides)
    return DemoEhrConfig(**settings)


@contextmanager
def run_demo_ehr(**overrides: Any) -> Iterator[RunningEhr]:
    port = free_port()
    config = demo_config(f"http://127.0.0.1:{port}", **overrides)
    server = uvicorn.Server(
        uvicorn.Config(
            create_demo_ehr(config), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("demo EHR did not start")
        time.sleep(0.02)
    try:
        yield RunningEhr(config.origin, config)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def ehr() -> Iterator[RunningEhr]:
    with run_demo_ehr(access_token_ttl=3600) as running:
        yield running

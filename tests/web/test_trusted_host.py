"""Only the app's own host names are served (a forged Host once flowed into the trailing-slash
redirect); health checks pass whatever Host a load balancer sends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from launch.registry import Registry
from smartapp.config import Settings
from smartapp.web.app import create_app
from smartapp.web.trusted_host import allowed_hosts, host_of
from tests.support import free_port, serve_in_thread
from tests.web.conftest import app_settings


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_in_thread(create_app(app_settings(url, tmp_path), Registry([])), port):
        yield url


def test_forged_host_is_refused_and_never_reflected(app_url: str) -> None:
    response = httpx2.get(app_url + "/launch/", headers={"Host": "evil.example"})
    assert response.status_code == 400 and "host SecondLook does not serve" in response.text
    assert "evil.example" not in response.text and "evil.example" not in response.headers.get("location", "")


def test_own_and_loopback_hosts_are_served_in_development(app_url: str) -> None:
    port = app_url.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        response = httpx2.get(app_url + "/launch", headers={"Host": host})
        assert "missing" in response.text.lower() or "iss" in response.text  # the launch route answered
        assert "host SecondLook does not serve" not in response.text


def test_health_check_passes_any_host(app_url: str) -> None:
    assert httpx2.get(app_url + "/healthz", headers={"Host": "10.0.3.7:8000"}).status_code == 200


def test_production_allows_only_the_public_and_configured_hosts() -> None:
    settings = Settings(
        environment="production",
        public_url="https://secondlook.example.org",
        secret_key="k" * 44,
        ehr_config=Path("ehrs.toml"),
        allowed_hosts=["secondlook.internal"],
    )
    assert allowed_hosts(settings) == {"secondlook.example.org", "secondlook.internal"}


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("App.Example.org:443", "app.example.org"),
        ("[::1]:8000", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("[broken", ""),
    ],
)
def test_host_header_parsing(header: str, host: str) -> None:
    assert host_of(header) == host

"""The app publishes its public keys at /.well-known/jwks.json for EHRs to verify its client
assertions: every backend-services key, public parts only, cacheable for an hour."""

from __future__ import annotations

from pathlib import Path

import httpx2
from demo_ehr.backend_auth import generate_backend_key
from demo_ehr.stack import demo_registry

from smartapp.web.app import create_app
from tests.support import free_port, serve_in_thread
from tests.web.conftest import app_settings


def test_jwks_lists_the_backend_key_without_private_parts(tmp_path: Path) -> None:
    key = generate_backend_key("ES384")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_in_thread(
        create_app(app_settings(url, tmp_path), demo_registry("http://127.0.0.1:9", key)), port
    ):
        response = httpx2.get(f"{url}/.well-known/jwks.json")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "public, max-age=3600"
    keys = response.json()["keys"]
    assert key.kid in {k["kid"] for k in keys}
    assert all("d" not in k for k in keys)  # never a private key

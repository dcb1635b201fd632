"""The production artefact as built: the wheel from this checkout carries the product (smartapp,
launch, fhirmaps) and nothing of the demo EHR, and `secondlook serve` run from it answers /healthz."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx2

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_has_no_demo_ehr_and_serves_healthz(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        cwd=tmp_path,
    )
    [wheel] = list((tmp_path / "dist").glob("secondlook-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("smartapp/migrations/versions/") for n in names)
    assert any(n.startswith("launch/") for n in names) and any(n.startswith("fhirmaps/codes/") for n in names)
    assert not [n for n in names if "demo_ehr" in n or "fixtures/patients" in n]
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
    )
    port = free_port()
    # `-S`: no site processing, so the checkout's editable-install finders stay out; the wheel's
    # code comes first on the path, then the dependencies of the test environment.
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(target), site_packages]),
        "SECONDLOOK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        "SECONDLOOK_SECRET_KEY_FILE": str(tmp_path / "config" / "secret.key"),
        "SECONDLOOK_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    where = subprocess.run(
        [sys.executable, "-S", "-c", "import smartapp; print(smartapp.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(target))  # the wheel's code, not the checkout's
    assert (
        subprocess.run(
            [sys.executable, "-S", "-c", "import demo_ehr"], env=env, cwd=tmp_path, capture_output=True
        ).returncode
        != 0
    )
    server = subprocess.Popen(
        [sys.executable, "-S", "-m", "smartapp.cli.main", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                response = httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx2.TransportError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:] if server.stderr else ""
                assert time.monotonic() < deadline, "secondlook serve from the wheel did not start"
                time.sleep(0.5)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
    finally:
        server.terminate()
        server.wait(20)

"""A setting, key, registry or directory the operator got wrong stops `secondlook` with one line
that names it (exit status 2), never a traceback, and never prints a key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BAD_KEY = "not-a-fernet-key-0123456789"


def secondlook(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SECONDLOOK_")}
    clean |= {
        "SECONDLOOK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db' / 'secondlook.db'}",
        "SECONDLOOK_SECRET_KEY_FILE": str(tmp_path / "config" / "secret.key"),
        **env,
    }
    (tmp_path / "db").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "smartapp.cli.main", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"SECONDLOOK_SECRET_KEY": BAD_KEY}, "SECONDLOOK_SECRET_KEY: the key is not a Fernet key"),
        (
            {"SECONDLOOK_SECRET_KEY": "x3Yl7gCq0m3p3LZb1v0oWb7S4b8YzV2yq9Hc6ZtF5k0=," + BAD_KEY},
            "SECONDLOOK_SECRET_KEY: key 2 of 2 is not a Fernet key",
        ),
        ({"SECONDLOOK_ENVIRONMENT": "production"}, "SECONDLOOK_SECRET_KEY must be set"),
        ({"SECONDLOOK_EHR_CONFIG": "/nonexistent/ehrs.toml"}, "cannot read EHR registration file"),
        ({"SECONDLOOK_SESSION_TTL_HOURS": "twelve"}, "SECONDLOOK_SESSION_TTL_HOURS: Input should be"),
    ],
    ids=["bad-key", "bad-second-key", "production-without-key", "missing-registry", "bad-number"],
)
def test_serve_refuses_to_start_in_one_line(tmp_path: Path, env: dict[str, str], said: str) -> None:
    done = secondlook(tmp_path, "serve", "--port", "1", **env)
    assert done.returncode == 2
    assert done.stderr.startswith("secondlook serve: cannot start: ")
    assert said in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert BAD_KEY not in done.stderr


def test_a_key_file_beside_the_database_stops_a_database_command(tmp_path: Path) -> None:
    done = secondlook(tmp_path, "purge", SECONDLOOK_SECRET_KEY_FILE=str(tmp_path / "db" / "secret.key"))
    assert done.returncode == 2
    assert "is in the database's folder" in done.stderr
    assert "Traceback" not in done.stderr

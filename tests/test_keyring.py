"""The development encryption key lives in the user's config folder, created 0600, never beside
the database; a key an older version left beside the database is moved there; production takes
its keys from SECONDLOOK_SECRET_KEY only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from smartapp.config import Settings
from smartapp.keyring import KeyConfigError, token_keys


def _settings(database: Path, **extra: object) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{database}", **extra)  # type: ignore[arg-type]


def test_the_development_key_is_created_0600_in_the_config_folder_not_beside_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    database = tmp_path / "var" / "secondlook.db"
    keys = token_keys(_settings(database))
    key_file = tmp_path / "config" / "secondlook" / "secret.key"
    assert key_file.read_text().split() == keys and len(keys) == 1
    Fernet(keys[0])  # a usable key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert not (database.parent / "secret.key").exists()
    assert token_keys(_settings(database)) == keys  # kept: data survives a restart


def test_without_xdg_config_home_the_key_goes_to_dot_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Settings().secret_key_file == tmp_path / "home" / ".config" / "secondlook" / "secret.key"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")  # the spec says: ignore a relative path
    assert Settings().secret_key_file == tmp_path / "home" / ".config" / "secondlook" / "secret.key"


def test_a_key_file_in_the_database_folder_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "app.db", secret_key_file=tmp_path / "secret.key")
    with pytest.raises(KeyConfigError, match="is in the database's folder"):
        token_keys(settings)
    assert not (tmp_path / "secret.key").exists()


def test_a_key_left_beside_the_database_is_moved_into_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    legacy = tmp_path / "var" / "secret.key"
    legacy.parent.mkdir()
    old = Fernet.generate_key().decode()
    legacy.write_text(old)
    assert token_keys(_settings(legacy.parent / "secondlook.db")) == [old]  # the data it wrote stays readable
    assert not legacy.exists()
    key_file = tmp_path / "config" / "secondlook" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    # A second database's leftover key joins as an older key; the newest stays first.
    other = tmp_path / "demo" / "secret.key"
    other.parent.mkdir()
    demo_key = Fernet.generate_key().decode()
    other.write_text(demo_key + "\n")
    assert token_keys(_settings(other.parent / "demo.db")) == [old, demo_key]
    assert not other.exists() and key_file.read_text().split() == [old, demo_key]


def test_secondlook_secret_key_wins_and_production_requires_it(tmp_path: Path) -> None:
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert token_keys(_settings(tmp_path / "app.db", secret_key=f"{new}, {old}")) == [new, old]
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(ValidationError, match="SECONDLOOK_SECRET_KEY must be set"):
        Settings(environment="production", public_url="https://app.test", ehr_config=tmp_path / "ehrs.toml")

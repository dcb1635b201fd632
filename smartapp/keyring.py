"""Keys that encrypt tokens and patient data at rest.

Production requires SECONDLOOK_SECRET_KEY (checked in Settings). In development an unset key is
generated once into SECONDLOOK_SECRET_KEY_FILE (default $XDG_CONFIG_HOME/secondlook/secret.key,
mode 0600) so data survives restarts. That file may not sit in the SQLite database's folder: a
copy of the folder would carry the key of its own ciphertext. A key that earlier versions kept
there (`secret.key` beside the database) is moved into the key file, as an older key when the
file already has one.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from smartapp.config import Settings

log = logging.getLogger(__name__)


class KeyConfigError(ValueError):
    """The keys cannot be used: a key is not a Fernet key, or the development key file is somewhere
    it must not be, or cannot be read or written."""


def token_keys(settings: Settings) -> list[str]:
    """Fernet keys, newest first; every one checked, so a bad key stops the start in words."""
    if settings.secret_key is not None:
        return _checked(_split(settings.secret_key.get_secret_value()), "SECONDLOOK_SECRET_KEY")
    return _checked(_file_keys(settings), str(settings.secret_key_file.expanduser()))


def _checked(keys: list[str], where: str) -> list[str]:
    """The keys unchanged, or KeyConfigError naming which one (by position, never its value) is bad."""
    if not keys:
        raise KeyConfigError(f"{where} holds no key")
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            which = f"key {number} of {len(keys)}" if len(keys) > 1 else "the key"
            raise KeyConfigError(
                f"{where}: {which} is not a Fernet key (32 url-safe base64-encoded bytes; make one with "
                '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)'
            ) from None
    return keys


def _file_keys(settings: Settings) -> list[str]:
    path = settings.secret_key_file.expanduser()
    folder = database_folder(settings.database_url)
    if folder is not None and path.parent.resolve() == folder.resolve():
        raise KeyConfigError(
            f"SECONDLOOK_SECRET_KEY_FILE ({path}) is in the database's folder, so a copy of that folder "
            "would carry its own key; keep the key file elsewhere (unset, it goes to "
            "$XDG_CONFIG_HOME/secondlook/secret.key)"
        )
    try:
        keys = _split(path.read_text()) if path.exists() else []
        legacy = folder / "secret.key" if folder is not None else None
        if legacy is not None and legacy.is_file():
            keys = _adopt(path, keys, legacy)
        return keys or _create(path)
    except OSError as exc:
        raise KeyConfigError(f"the development key file {path} cannot be used: {exc.strerror}") from exc


def database_folder(database_url: str) -> Path | None:
    """The folder of a SQLite database file; None for other databases and in-memory SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).expanduser().parent


def _split(text: str) -> list[str]:
    return [key for key in re.split(r"[,\s]+", text) if key]


def _create(path: Path) -> list[str]:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _split(path.read_text())  # another process starting at the same moment made it
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return [key]


def _adopt(path: Path, keys: list[str], legacy: Path) -> list[str]:
    merged = keys + [key for key in _split(legacy.read_text()) if key not in keys]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(merged) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staged, path)
    legacy.unlink()
    log.warning(
        "moved the development key from %s to %s: it no longer sits beside the database", legacy, path
    )
    return merged

"""Keys that encrypt tokens at rest."""

from __future__ import annotations

import os

from cryptography.fernet import Fernet

from smartapp.config import Settings


def token_keys(settings: Settings) -> list[str]:
    """Fernet keys, newest first. Production requires SECONDLOOK_SECRET_KEY (checked in Settings);
    development generates one key once and keeps it in a 0600 file so sessions survive restarts."""
    if settings.secret_key is not None:
        return [k.strip() for k in settings.secret_key.get_secret_value().split(",") if k.strip()]
    path = settings.secret_key_file
    if path.exists():
        return [path.read_text().strip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return [key]

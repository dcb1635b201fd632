"""Start-up problems the person running `secondlook` can fix (settings, encryption keys, the EHR
registry, the center directory), said in one line instead of a traceback."""

from __future__ import annotations

from pydantic import ValidationError

from launch.registry import RegistryError
from smartapp.keyring import KeyConfigError
from smartapp.packet.directory import DirectoryError

CONFIGURATION_ERRORS = (ValidationError, KeyConfigError, RegistryError, DirectoryError)


def describe(exc: BaseException) -> str:
    """The problem in words: each invalid setting by its environment variable, else the message."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    said = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        field = "_".join(str(part) for part in error["loc"])
        said.append(f"SECONDLOOK_{field.upper()}: {message}" if field else message)
    return "; ".join(said)

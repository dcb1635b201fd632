"""Patient data encrypted at rest: column types whose database value is Fernet ciphertext.

The keys are the ones that already encrypt launch tokens (SECONDLOOK_SECRET_KEY, newest first,
`launch.crypto.TokenCipher`). They reach these types through the engine, not through module state:
`smartapp.db.create_engine(url, cipher)` attaches the cipher to the engine's dialect, and
SQLAlchemy passes that dialect to every bind and result conversion. An engine made without keys
cannot read or write these columns, and says so.

Only the value is hidden; that a row exists, its length, and the clear columns beside it are not
(docs/security.md lists which columns are which and why).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import LargeBinary, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from launch.crypto import DecryptionError, TokenCipher

# Every Fernet token starts with version byte 0x80 and a 64-bit timestamp whose high bytes are 0.
FERNET_PREFIX = "gAAAAA"
_CIPHER_ATTRIBUTE = "secondlook_cipher"


class MissingKeys(RuntimeError):
    """The engine was created without the encryption keys."""


class UnreadableValue(ValueError):
    """A stored value of an encrypted column cannot be turned back into what was written."""


def attach_cipher(dialect: Dialect, cipher: TokenCipher) -> None:
    setattr(dialect, _CIPHER_ATTRIBUTE, cipher)


def dialect_cipher(dialect: Dialect) -> TokenCipher:
    cipher = getattr(dialect, _CIPHER_ATTRIBUTE, None)
    if not isinstance(cipher, TokenCipher):
        raise MissingKeys(
            "This database engine has no encryption keys; "
            "create it with smartapp.db.create_engine(url, cipher)."
        )
    return cipher


def looks_encrypted(raw: str | bytes) -> bool:
    prefix = raw[: len(FERNET_PREFIX)]
    return prefix == (FERNET_PREFIX if isinstance(prefix, str) else FERNET_PREFIX.encode("ascii"))


def decrypt_raw(cipher: TokenCipher, raw: str | bytes) -> bytes:
    """The clear bytes of a stored token; UnreadableValue (clear text, or no key fits) otherwise."""
    if not looks_encrypted(raw):
        raise UnreadableValue(
            "A value in an encrypted column is clear text (written by a version before encryption); "
            "`secondlook migrate` encrypts such values."
        )
    try:
        return cipher.decrypt_bytes(raw.encode("ascii") if isinstance(raw, str) else raw)
    except (DecryptionError, UnicodeEncodeError) as exc:
        raise UnreadableValue(
            "A value in an encrypted column cannot be decrypted with any key in SECONDLOOK_SECRET_KEY "
            "(was it written with a key that is no longer listed?); `secondlook rotate-keys --check` "
            "names the rows."
        ) from exc


class _EncryptedText(TypeDecorator[Any]):
    """Base of the text-token types: the value becomes UTF-8 bytes, then a Fernet token (ASCII)."""

    impl = Text
    cache_ok = True

    def to_clear(self, value: Any) -> str:
        raise NotImplementedError

    def from_clear(self, clear: str) -> Any:
        raise NotImplementedError

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return dialect_cipher(dialect).encrypt(self.to_clear(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return self.from_clear(decrypt_raw(dialect_cipher(dialect), value).decode("utf-8"))


class EncryptedText(_EncryptedText):
    """Free text and names."""

    cache_ok = True  # SQLAlchemy reads it from each class itself, not from the base

    def to_clear(self, value: Any) -> str:
        return str(value)

    def from_clear(self, clear: str) -> str:
        return clear


class EncryptedJSON(_EncryptedText):
    """A JSON document (packet bodies, edit diffs, receipts, opinions)."""

    cache_ok = True  # SQLAlchemy reads it from each class itself, not from the base

    def to_clear(self, value: Any) -> str:
        return json.dumps(value)

    def from_clear(self, clear: str) -> Any:
        return json.loads(clear)


class EncryptedDate(_EncryptedText):
    """A date (birth dates), kept as its ISO text inside the token."""

    cache_ok = True  # SQLAlchemy reads it from each class itself, not from the base

    def to_clear(self, value: Any) -> str:
        if not isinstance(value, date):
            raise TypeError(f"EncryptedDate takes a date, not {type(value).__name__}")
        return value.isoformat()

    def from_clear(self, clear: str) -> date:
        return date.fromisoformat(clear)


class EncryptedBytes(TypeDecorator[bytes]):
    """A file's bytes (outside reports); the token is stored as bytes in the binary column."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return dialect_cipher(dialect).encrypt_bytes(bytes(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return decrypt_raw(dialect_cipher(dialect), bytes(value))


ENCRYPTED_TYPES = (_EncryptedText, EncryptedBytes)

"""Encryption at rest (Fernet; several keys allow rotation): tokens and PKCE verifiers here, and
the app's own encrypted columns, which use the same keys."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def generate_key() -> str:
    """Return a new random Fernet key (urlsafe base64 text) suitable for `TokenCipher`."""
    return Fernet.generate_key().decode("ascii")


class DecryptionError(ValueError):
    """A stored value is not a token any configured key wrote (or it was altered)."""


class TokenCipher:
    """Encrypts with the first key; decrypts with any of them, so old keys can be retired slowly."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("TokenCipher needs at least one Fernet key (see launch.crypto.generate_key)")
        try:
            fernets = [Fernet(key.encode("ascii")) for key in keys]
        except (ValueError, UnicodeEncodeError) as exc:
            raise ValueError("A token encryption key is not a valid Fernet key") from exc
        self._newest = fernets[0]
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        return self.encrypt_bytes(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        return self.decrypt_bytes(ciphertext.encode("ascii")).decode("utf-8")

    def encrypt_bytes(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt_bytes(self, ciphertext: bytes) -> bytes:
        try:
            return self._fernet.decrypt(ciphertext)
        except InvalidToken as exc:
            # Deliberately vague: the ciphertext is not echoed anywhere.
            raise DecryptionError("Stored value could not be decrypted with the configured keys") from exc

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt a value under the current first key."""
        return self.rotate_bytes(ciphertext.encode("ascii")).decode("ascii")

    def rotate_bytes(self, ciphertext: bytes) -> bytes:
        try:
            return self._fernet.rotate(ciphertext)
        except InvalidToken as exc:
            raise DecryptionError("Stored value could not be decrypted with the configured keys") from exc

    def is_current(self, ciphertext: bytes) -> bool:
        """True when the first (newest) key wrote the value, so rotation would not change its key."""
        try:
            self._newest.decrypt(ciphertext)
        except InvalidToken:
            return False
        return True

"""Encryption at rest for tokens and PKCE verifiers (Fernet; several keys allow rotation)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def generate_key() -> str:
    """Return a new random Fernet key (urlsafe base64 text) suitable for `TokenCipher`."""
    return Fernet.generate_key().decode("ascii")


class TokenCipher:
    """Encrypts with the first key; decrypts with any of them, so old keys can be retired slowly."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("TokenCipher needs at least one Fernet key (see launch.crypto.generate_key)")
        try:
            self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])
        except ValueError as exc:
            raise ValueError("A token encryption key is not a valid Fernet key") from exc

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            # Deliberately vague: the ciphertext is not echoed anywhere.
            raise ValueError("Stored token could not be decrypted with the configured keys") from exc

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt a value under the current first key."""
        return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")

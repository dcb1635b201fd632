"""The `backend_services` block of an EHR registration: client id, signing keys, system scopes.

SMART Backend Services (client-confidential-asymmetric) signs the client assertion with RS384 or
ES384 and a `kid` that the EHR finds in our published JWKS. For rotation the block lists several
keys: the first one signs, the others are only published, so the EHR can already trust the next
key before we switch to it (put the new key first once the EHR has fetched the JWKS again)::

    [ehr.backend_services]
    client_id = "secondlook-backend"
    scopes = "system/*.rs"                       # v1 servers: "system/*.read"
    keys = [
      { kid = "sl-2026-12", private_key_path = "keys/backend-2026-12.pem" },   # signs
      { kid = "sl-2027-06", private_key_path = "keys/backend-2027-06.pem" },   # next, published
    ]

A key is a PEM or JWK JSON file (`private_key_path`) or an inline private JWK (`jwk`); `alg` is
RS384 for RSA keys and ES384 for P-384 keys unless given.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from joserfc.jwk import ECKey, RSAKey
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

SigningAlg = Literal["RS384", "ES384"]
SigningKey = RSAKey | ECKey

# system/<Type|*>.<v2 letters | v1 read/write/*>, optionally with a v2 query suffix.
_SYSTEM_SCOPE = re.compile(r"^system/(\*|[A-Z][A-Za-z]{1,63})\.(read|write|\*|c?r?u?d?s?)(\?\S*)?$")


class BackendKey(BaseModel):
    """One private signing key of the backend client."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kid: str | None = None
    alg: SigningAlg | None = None
    private_key_path: Path | None = None
    jwk: dict[str, Any] | None = None

    _key: SigningKey | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _load(self) -> BackendKey:
        if (self.private_key_path is None) == (self.jwk is None):
            raise ValueError("a backend key needs exactly one of private_key_path or jwk")
        where = str(self.private_key_path) if self.private_key_path is not None else "the inline jwk"
        data: Any = self.jwk
        if self.private_key_path is not None:
            try:
                raw = self.private_key_path.read_bytes()
            except OSError as exc:
                raise ValueError(f"cannot read the private key {where}: {exc.strerror}") from exc
            data = json.loads(raw) if raw.lstrip().startswith(b"{") else raw
        key = _import_key(data, where)
        if not key.is_private:
            raise ValueError(f"{where} holds a public key; backend services needs the private key")
        kid = self.kid or key.kid
        if not kid:
            raise ValueError(f"the key in {where} has no kid; give `kid` next to it")
        alg = self.alg or _alg_for(key, where)
        if alg != _alg_for(key, where):
            raise ValueError(f"{where} is a {key.key_type} key and cannot sign {alg}")
        object.__setattr__(self, "kid", kid)
        object.__setattr__(self, "alg", alg)
        self._key = key
        return self

    @property
    def key(self) -> SigningKey:
        assert self._key is not None  # noqa: S101 - set by the validator
        return self._key

    @property
    def key_id(self) -> str:
        assert self.kid is not None  # noqa: S101 - set by the validator
        return self.kid

    @property
    def signing_alg(self) -> SigningAlg:
        assert self.alg is not None  # noqa: S101 - set by the validator
        return self.alg

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK with `kid`, `alg` and `use`, for the app's JWKS."""
        return public_jwk(self.key, self.key_id, self.signing_alg)


class BackendServices(BaseModel):
    """SMART Backend Services registration with one EHR (client credentials + private_key_jwt)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    keys: list[BackendKey] = Field(min_length=1)
    # None: `system/*.rs`, or `system/*.read` where the EHR speaks only v1 scopes.
    scopes: str | None = None

    @model_validator(mode="after")
    def _check(self) -> BackendServices:
        kids = [key.key_id for key in self.keys]
        duplicates = sorted({kid for kid in kids if kids.count(kid) > 1})
        if duplicates:
            raise ValueError(f"backend key ids must be unique, {', '.join(duplicates)} is repeated")
        if self.scopes is not None:
            wrong = [scope for scope in self.scopes.split() if not _SYSTEM_SCOPE.match(scope)]
            if not self.scopes.split() or wrong:
                raise ValueError(
                    "backend_services.scopes must be system scopes such as system/*.rs or "
                    f"system/Patient.read; not {', '.join(wrong) or 'an empty string'}"
                )
        return self

    @property
    def signing_key(self) -> BackendKey:
        """The current key: the first one listed."""
        return self.keys[0]


def public_jwk(key: SigningKey, kid: str, alg: str) -> dict[str, Any]:
    jwk = {name: value for name, value in key.as_dict(private=False).items() if name not in ("kid", "alg")}
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


def _import_key(data: Any, where: str) -> SigningKey:
    errors: list[str] = []
    key_types: tuple[type[RSAKey] | type[ECKey], ...] = (RSAKey, ECKey)
    if isinstance(data, dict):
        kty = data.get("kty")
        key_types = (RSAKey,) if kty == "RSA" else (ECKey,) if kty == "EC" else ()
        if not key_types:
            raise ValueError(f"{where} is not an RSA or EC JWK (kty = {kty!r})")
    for key_type in key_types:
        try:
            return key_type.import_key(data)
        except (ValueError, TypeError) as exc:
            errors.append(str(exc) or type(exc).__name__)
    raise ValueError(f"cannot load the private key {where}: {'; '.join(errors)}")


def _alg_for(key: SigningKey, where: str) -> SigningAlg:
    if isinstance(key, RSAKey):
        return "RS384"
    if key.curve_name == "P-384":
        return "ES384"
    raise ValueError(f"{where} is an EC key on {key.curve_name}; ES384 needs a P-384 key")

"""The app's public JSON Web Key Set: what EHRs use to verify our signed client assertions.

SMART strongly prefers a JWKS URL over uploading keys (Epic requires one for new backend apps), and
a URL is what makes rotation painless: the set holds the current and the next key of every
registration, so the EHR already knows the next key when we start signing with it.
"""

from __future__ import annotations

from typing import Any

from launch.backend_keys import public_jwk
from launch.registry import Registry, RegistryError

# The JWKS changes only when the registry does; EHRs may cache it for a while, but not for days.
JWKS_CACHE_CONTROL = "public, max-age=3600"


def build_jwks(registry: Registry) -> dict[str, Any]:
    """Public keys of every `private_key_jwt` launch registration and every backend_services key.

    A kid shared by two registrations must name the same key; two different keys under one kid
    would let an EHR verify with the wrong one, so that is refused.
    """
    by_kid: dict[str, dict[str, Any]] = {}

    def add(jwk: dict[str, Any], iss: str) -> None:
        kid = str(jwk["kid"])
        known = by_kid.get(kid)
        if known is not None and known != jwk:
            raise RegistryError(f"key id {kid} ({iss}) names two different keys in the registry")
        by_kid[kid] = jwk

    for registration in registry.all():
        if registration.client_auth == "private_key_jwt" and registration.kid and registration.signing_alg:
            add(
                public_jwk(registration.signing_key, registration.kid, registration.signing_alg),
                registration.iss,
            )
        if registration.backend_services is not None:
            for key in registration.backend_services.keys:
                add(key.public_jwk(), registration.iss)
    return {"keys": list(by_kid.values())}

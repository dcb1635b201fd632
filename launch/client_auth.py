"""Client authentication at the token endpoint, per registration, through Authlib.

Authlib's `PrivateKeyJWT` signs RS256 with a one-hour `exp` and, when given a `claims` dict, keeps
reusing the `jti` it wrote into it. SMART requires RS384/ES384, `exp` ≤ 5 minutes and a fresh
`jti` each time (client-confidential-asymmetric), so `sign` is overridden below.
"""

from __future__ import annotations

import time
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import sign_jwt_bearer_assertion

from launch.backend_keys import SigningKey
from launch.registry import Registration

ASSERTION_LIFETIME = 300  # seconds; the SMART maximum


class SmartPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    def __init__(self, *, alg: str, kid: str) -> None:
        super().__init__(alg=alg, headers=None, claims=None)
        self.kid = kid

    def sign(self, auth: Any, token_endpoint: str) -> str:
        now = int(time.time())
        assertion: Any = sign_jwt_bearer_assertion(
            auth.client_secret,
            issuer=auth.client_id,
            audience=token_endpoint,
            subject=auth.client_id,
            issued_at=now,
            expires_at=now + ASSERTION_LIFETIME,
            claims={"jti": generate_token(40)},
            header={"alg": self.alg, "kid": self.kid, "typ": "JWT"},
        )
        return assertion if isinstance(assertion, str) else assertion.decode("ascii")


def prepare_token_request(
    registration: Registration, token_endpoint: str, body: str
) -> tuple[dict[str, str], str]:
    """Authenticate a form-encoded token request body; returns (headers, body)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    auth: ClientAuth
    if registration.client_auth == "public":
        auth = ClientAuth(registration.client_id, None, "none")
    elif registration.client_auth == "client_secret_basic":
        auth = ClientAuth(registration.client_id, registration.secret(), "client_secret_basic")
    else:
        assert registration.signing_alg is not None and registration.kid is not None  # noqa: S101
        return prepare_private_key_jwt(
            registration.client_id,
            registration.signing_key,
            alg=registration.signing_alg,
            kid=registration.kid,
            token_endpoint=token_endpoint,
            body=body,
        )
    _uri, headers, body = auth.prepare("POST", token_endpoint, headers, body)
    return headers, body


def prepare_private_key_jwt(
    client_id: str, key: SigningKey, *, alg: str, kid: str, token_endpoint: str, body: str
) -> tuple[dict[str, str], str]:
    """Add a freshly signed SMART client assertion to a form-encoded token request body."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    auth = ClientAuth(client_id, key, SmartPrivateKeyJWT(alg=alg, kid=kid))
    _uri, headers, body = auth.prepare("POST", token_endpoint, headers, body)
    return headers, body

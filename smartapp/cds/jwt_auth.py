"""Verifying the JWT a CDS client sends on every call (CDS Hooks 2.0, "Trusting CDS Clients").

Checks, in this order: header (alg RS384/ES384 only, kid), issuer on the allowlist, key set
(the issuer's `jwks_url`, or a `jku` only if it is on that issuer's allowlist), signature,
exact `aud` (computed from our configured public URL, never from the Host header), `exp`, `iat`,
`tenant`, and finally `jti` (insert-or-fail in the replay cache). Any failure is a `CdsAuthError`
carrying a reason code for the log; the caller answers a bare 401.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx2
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.jws import extract_compact

from smartapp.cds.clients import CdsClient, CdsClients
from smartapp.cds.replay import ReplayCache

ALLOWED_ALGS = ("RS384", "ES384")
LEEWAY_SECONDS = 30
# The spec expects client JWTs to live minutes; refusing longer ones bounds the replay cache.
MAX_LIFETIME_SECONDS = 3600
JWKS_TTL_SECONDS = 300.0
JWKS_MIN_REFRESH_SECONDS = 30.0  # an unknown kid refetches the set at most this often


class CdsAuthError(Exception):
    def __init__(self, reason: str, iss: str = "", jti: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.iss = iss
        self.jti = jti


@dataclass(frozen=True)
class CdsCaller:
    """The authenticated CDS client of one request."""

    client: CdsClient
    iss: str
    jti: str
    tenant: str | None


class KeySetCache:
    """JWKS documents by URL, fetched with the app's HTTP client and kept for a TTL."""

    def __init__(self, http: httpx2.AsyncClient, ttl_seconds: float = JWKS_TTL_SECONDS) -> None:
        self._http = http
        self._ttl = ttl_seconds
        self._sets: dict[str, tuple[float, KeySet]] = {}

    async def key_set(self, url: str, *, refresh: bool = False) -> KeySet:
        now = time.monotonic()
        cached = self._sets.get(url)
        if (
            cached
            and now - cached[0] < self._ttl
            and not (refresh and now - cached[0] > JWKS_MIN_REFRESH_SECONDS)
        ):
            return cached[1]
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = KeySet.import_key_set(response.json())
        except (httpx2.HTTPError, ValueError, JoseError) as exc:
            if cached:  # keep trusting the last good set while the client's server is down
                return cached[1]
            raise CdsAuthError("jwks_unavailable") from exc
        self._sets[url] = (now, keys)
        return keys


class JwtVerifier:
    def __init__(self, clients: CdsClients, key_sets: KeySetCache, replay: ReplayCache) -> None:
        self._clients = clients
        self._key_sets = key_sets
        self._replay = replay

    async def verify(self, authorization: str | None, audience: str) -> CdsCaller:
        token = _bearer(authorization)
        header, claims = _unverified(token)
        iss, jti = _text(claims.get("iss")), _text(claims.get("jti"))
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGS:
            raise CdsAuthError("alg_not_allowed", iss, jti)
        if not isinstance(kid, str) or not kid:
            raise CdsAuthError("kid_missing", iss, jti)
        client = self._clients.get(iss)
        if client is None:
            raise CdsAuthError("unknown_issuer", iss, jti)
        key = await self._key(client, header, kid, str(alg))
        try:
            verified = jwt.decode(token, key, algorithms=[str(alg)])
        except (JoseError, ValueError) as exc:
            raise CdsAuthError("bad_signature", iss, jti) from exc
        claims = verified.claims
        _check_claims(claims, audience, client, iss, jti)
        if not await self._replay.remember(iss, jti, float(claims["exp"]) + LEEWAY_SECONDS):
            raise CdsAuthError("replayed_jti", iss, jti)
        tenant = claims.get("tenant")
        return CdsCaller(client, iss, jti, tenant if isinstance(tenant, str) else None)

    async def _key(self, client: CdsClient, header: dict[str, Any], kid: str, alg: str) -> RSAKey | ECKey:
        jku = header.get("jku")
        if jku is not None:
            if not isinstance(jku, str) or jku not in client.jku:
                raise CdsAuthError("jku_not_allowed", client.iss)
            url = jku
        elif client.jwks_url:
            url = client.jwks_url
        else:
            raise CdsAuthError("jku_missing", client.iss)
        key = _find(await self._key_sets.key_set(url), kid)
        if key is None:  # the client may have rotated its keys
            key = _find(await self._key_sets.key_set(url, refresh=True), kid)
        if key is None:
            raise CdsAuthError("unknown_kid", client.iss)
        # The key type must match the algorithm: no RSA key verifying an "ES384" header or vice versa.
        if alg == "RS384" and not isinstance(key, RSAKey):
            raise CdsAuthError("key_alg_mismatch", client.iss)
        if alg == "ES384" and not (isinstance(key, ECKey) and key.curve_name == "P-384"):
            raise CdsAuthError("key_alg_mismatch", client.iss)
        return key


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise CdsAuthError("no_token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CdsAuthError("no_token")
    return token.strip()


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before verification: only to pick the issuer and key."""
    try:
        compact = extract_compact(token.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError) as exc:
        raise CdsAuthError("malformed_token") from exc
    if not isinstance(claims, dict):
        raise CdsAuthError("malformed_token")
    return dict(compact.headers()), claims


def _text(value: Any) -> str:
    return value[:200] if isinstance(value, str) else ""


def _find(keys: KeySet, kid: str) -> RSAKey | ECKey | None:
    for key in keys.keys:
        if key.kid == kid and isinstance(key, RSAKey | ECKey):
            return key
    return None


def _check_claims(claims: dict[str, Any], audience: str, client: CdsClient, iss: str, jti: str) -> None:
    now = time.time()
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        raise CdsAuthError("wrong_audience", iss, jti)
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise CdsAuthError("exp_missing", iss, jti)
    if exp < now - LEEWAY_SECONDS:
        raise CdsAuthError("expired", iss, jti)
    if exp > now + MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
        raise CdsAuthError("lifetime_too_long", iss, jti)
    if not isinstance(iat, int | float) or isinstance(iat, bool) or iat > now + LEEWAY_SECONDS:
        raise CdsAuthError("bad_iat", iss, jti)
    if not jti:
        raise CdsAuthError("jti_missing", iss, jti)
    if client.tenant is not None and claims.get("tenant") != client.tenant:
        raise CdsAuthError("wrong_tenant", iss, jti)

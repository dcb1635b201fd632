"""SMART Backend Services on the demo authorization server: `client_credentials` with a signed
client assertion (`private_key_jwt`, RS384 or ES384), as SMART App Launch 2.2's
client-confidential-asymmetric profile describes it.

The assertion is checked with Authlib's RFC 7523 client authentication (signature via joserfc,
`iss`/`sub`/`aud`/`exp` claims, `jti` replay), with the SMART rules added on top: the header must
name `alg` (RS384 or ES384 only), `kid` and `typ: JWT`; exactly one registered key is chosen by
`kid` and key type; `exp` may be at most five minutes ahead; a `jku` must equal the registered
JWKS URL. Every refusal is `invalid_client` (or `invalid_scope`) with a description naming the
reason, so a developer sees what to fix.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx2
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeyParameters, KeySet, RSAKey

from .records import Client, LaunchContext, MemoryStore, new_id
from .scopes import parse_resource_scope, split_scope

if TYPE_CHECKING:
    from .config import BackendClientConfig

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNING_ALGS = ("RS384", "ES384")
ASSERTION_MAX_LIFETIME = 300  # seconds: SMART's limit on how far ahead `exp` may be
CLOCK_LEEWAY = 30
JWKS_CACHE_SECONDS = 300  # used when the JWKS response has no Cache-Control max-age
SYSTEM_SCOPES_SUPPORTED = ["system/*.rs", "system/*.read"]
_KEY_TYPE = {"RS384": "RSA", "ES384": "EC"}


def backend_client(config: BackendClientConfig) -> Client:
    return Client(
        config.client_id,
        [],
        "private_key_jwt",
        jwks=config.jwks,
        jwks_url=config.jwks_url,
        system_scopes=tuple(config.scopes),
    )


def system_context(client_id: str) -> LaunchContext:
    """The "user" of a system token: the backend client itself, without a patient."""
    return LaunchContext(practitioner_id=client_id, patient_id=None, need_patient_banner=False)


class SmartClientAssertion(JWTBearerClientAssertion):  # type: ignore[misc]
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, token_endpoint: str, store: MemoryStore) -> None:
        super().__init__(validate_jti=True, leeway=CLOCK_LEEWAY)
        self.token_endpoint = token_endpoint
        self.store = store

    def get_audiences(self) -> list[str]:
        return [self.token_endpoint]

    def __call__(self, query_client: Any, request: Any) -> Client | None:
        data = request.form
        assertion = data.get("client_assertion")
        assertion_type = data.get("client_assertion_type")
        if not assertion and not assertion_type:
            return None
        if assertion_type != ASSERTION_TYPE:
            raise InvalidClientError(description=f"client_assertion_type must be {ASSERTION_TYPE}.")
        if not assertion:
            raise InvalidClientError(description="client_assertion is missing.")
        headers, claims = self.extract_assertion(assertion)
        alg = headers.get("alg")
        if alg not in SIGNING_ALGS:
            raise InvalidClientError(
                description=f"The assertion is signed with alg {alg!r}; this server accepts RS384 and ES384."
            )
        kid = headers.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidClientError(description="The assertion header has no 'kid'.")
        if headers.get("typ") != "JWT":
            raise InvalidClientError(description="The assertion header must have typ 'JWT'.")
        client_id = claims.get("sub")
        client = query_client(client_id) if isinstance(client_id, str) else None
        if client is None or client.auth_method != self.CLIENT_AUTH_METHOD:
            raise InvalidClientError(
                description=(
                    f"{client_id!r} is not a registered backend services client (sub must be the client_id)."
                )
            )
        if claims.get("iss") != client_id:
            raise InvalidClientError(description="iss and sub must both be the client_id.")
        jku = headers.get("jku")
        if jku is not None and jku != client.jwks_url:
            raise InvalidClientError(
                description="The assertion's jku is not the client's registered JWKS URL."
            )
        key = self._key(client, kid, _KEY_TYPE[alg])
        try:
            token = jwt.decode(assertion, key, algorithms=[alg])
        except JoseError as exc:
            raise InvalidClientError(
                description=f"The assertion's signature does not verify with the registered key {kid!r}."
            ) from exc
        self._check_timing(token.claims)
        self.verify_claims(token.claims)  # Authlib: iss, sub, aud, exp essential; jti replay
        request.client = client
        authenticated: Client = self.authenticate_client(client)
        return authenticated

    def _check_timing(self, claims: dict[str, Any]) -> None:
        """Clear messages for the usual mistakes before Authlib's generic claim checks."""
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.token_endpoint not in audiences:
            raise InvalidClientError(
                description=f"The assertion's aud must be this token endpoint, {self.token_endpoint}."
            )
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise InvalidClientError(description="The assertion has no numeric exp.")
        now = time.time()
        if exp < now - CLOCK_LEEWAY:
            raise InvalidClientError(description="The assertion has expired (exp is in the past).")
        if exp > now + ASSERTION_MAX_LIFETIME + CLOCK_LEEWAY:
            raise InvalidClientError(description="The assertion's exp is more than 5 minutes ahead.")
        if not claims.get("jti"):
            raise InvalidClientError(description="The assertion has no jti.")

    def _key(self, client: Client, kid: str, kty: str) -> RSAKey | ECKey:
        document = client.jwks
        if document is None and client.jwks_url:
            cached = self.store.fetched_jwks.get(client.jwks_url)
            if cached is None:
                raise InvalidClientError(
                    description=f"The client's JWKS could not be fetched from {client.jwks_url}."
                )
            document = cached[0]
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidClientError(
                description="The client's registered JWKS is not a valid key set."
            ) from exc
        found = [key for key in keys.keys if key.kid == kid and key.key_type == kty]
        if len(found) != 1:
            raise InvalidClientError(
                description=f"No single {kty} key with kid {kid!r} is registered for {client.client_id}."
            )
        key = found[0]
        assert isinstance(key, RSAKey | ECKey)  # noqa: S101 - kty checked above
        return key

    def validate_jti(self, claims: dict[str, Any], jti: Any) -> bool:
        if self.store.use_assertion_id(str(claims["sub"]), str(jti), float(claims["exp"])):
            return True
        raise InvalidClientError(description="The assertion's jti was already used (replayed assertion).")


def grant_system_scopes(requested: list[str], registered: tuple[str, ...]) -> str:
    """The scopes to grant: those requested that a registered system scope covers (all registered
    ones when none are requested). Non-system scopes, or nothing grantable, is `invalid_scope`."""
    if not requested:
        return " ".join(registered)
    allowed = [parsed for parsed in (parse_resource_scope(item) for item in registered) if parsed]
    granted: list[str] = []
    refused: list[str] = []
    for scope in requested:
        parsed = parse_resource_scope(scope)
        if parsed is None or parsed.level != "system":
            raise InvalidScopeError(
                description=f"{scope!r} is not a system scope; backend services grants only "
                "system/ scopes such as system/*.rs."
            )
        covered = any(
            item.resource_type in ("*", parsed.resource_type) and parsed.permissions <= item.permissions
            for item in allowed
        )
        (granted if covered else refused).append(scope)
    if not granted:
        raise InvalidScopeError(
            description=f"Not registered for this client: {' '.join(refused)} "
            f"(registered: {' '.join(registered)})."
        )
    return " ".join(granted)


class BackendServicesGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]

    def validate_requested_scope(self) -> None:
        client: Client = self.request.client
        self.granted_scope = grant_system_scopes(
            split_scope(self.request.payload.scope), client.system_scopes
        )

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token: dict[str, Any] = self.generate_token(
            user=system_context(self.request.client.client_id),
            scope=self.granted_scope,
            expires_in=self.server.config.backend_token_ttl,
            include_refresh_token=False,
        )
        token["token_type"] = "bearer"  # noqa: S105 - the SMART spelling, not a secret
        for name in ("need_patient_banner", "smart_style_url"):
            token.pop(name, None)
        self.request.user = system_context(self.request.client.client_id)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


async def prefetch_jwks(store: MemoryStore, form: dict[str, str]) -> None:
    """Fetch a backend client's JWKS from its jwks_url before the (synchronous) Authlib token
    endpoint needs it, honouring the response's Cache-Control max-age (no-store: not kept)."""
    assertion = form.get("client_assertion")
    if not assertion:
        return
    try:
        _headers, claims = JWTBearerClientAssertion().extract_assertion(assertion)
    except InvalidClientError:
        return
    client = store.clients.get(str(claims.get("sub")))
    if client is None or not client.jwks_url:
        return
    cached = store.fetched_jwks.get(client.jwks_url)
    if cached is not None and cached[1] > time.time():
        return
    store.fetched_jwks.pop(client.jwks_url, None)
    try:
        async with httpx2.AsyncClient(timeout=5.0, follow_redirects=False) as http:
            response = await http.get(client.jwks_url, headers={"Accept": "application/json"})
        document = response.json() if response.status_code == 200 else None
    except (httpx2.HTTPError, ValueError):
        document = None
    if isinstance(document, dict) and isinstance(document.get("keys"), list):
        store.fetched_jwks[client.jwks_url] = (document, time.time() + _max_age(response))


def _max_age(response: httpx2.Response) -> float:
    directives = [part.strip().lower() for part in response.headers.get("cache-control", "").split(",")]
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    for directive in directives:
        name, _, value = directive.partition("=")
        if name == "max-age" and value.isdigit():
            return float(value)
    return float(JWKS_CACHE_SECONDS)


def generate_backend_key(alg: str = "ES384") -> RSAKey | ECKey:
    """A fresh private signing key for a demo backend client (kept in memory by the caller)."""
    parameters: KeyParameters = {"kid": f"demo-backend-{new_id(6)}", "alg": alg, "use": "sig"}
    if alg == "RS384":
        return RSAKey.generate_key(2048, parameters=parameters, private=True)
    if alg == "ES384":
        return ECKey.generate_key("P-384", parameters=parameters, private=True)
    raise ValueError(f"backend keys are RS384 or ES384, not {alg}")


def public_jwks(*keys: RSAKey | ECKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}

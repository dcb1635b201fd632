"""The demo EHR's SMART authorization server, assembled from Authlib's server components.

Authlib supplies the protocol (authorization code + PKCE, refresh, OpenID Connect id_token);
this module supplies the in-memory storage and SMART rules it asks for (the Starlette
request adapter lives in `starlette_adapter`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, JsonRequest, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oidc.core import OpenIDCode
from joserfc.jwk import RSAKey
from starlette.responses import Response

from .backend_auth import BackendServicesGrant, SmartClientAssertion, backend_client
from .config import DemoEhrConfig
from .records import (
    CONFIDENTIAL_CLIENT_ID,
    CONFIDENTIAL_CLIENT_SECRET,
    PUBLIC_CLIENT_ID,
    AuthorizationCode,
    Client,
    LaunchContext,
    MemoryStore,
    Token,
    new_id,
)
from .scopes import split_scope
from .starlette_adapter import ParsedRequest, StarletteJsonRequest, StarletteOAuth2Request

REFRESH_SCOPES = frozenset({"online_access", "offline_access"})


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE as SMART requires it: always present, S256 only (`plain` is refused)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: missing 'code_challenge'.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only 'code_challenge_method=S256' is supported.")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "none"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        store: MemoryStore = self.server.store
        if data.get("nonce"):
            store.nonces.add(data["nonce"])
        store.codes[code] = AuthorizationCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri or request.client.get_default_redirect_uri(),
            scope=request.scope or "",
            context=request.user,
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            nonce=data.get("nonce"),
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        item: AuthorizationCode | None = self.server.store.codes.get(code)
        if item is None or item.client_id != client.client_id or item.expires_at < time.time():
            return None
        return item

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        self.server.store.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> LaunchContext:
        return authorization_code.context


class RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "none"]

    @property
    def INCLUDE_NEW_REFRESH_TOKEN(self) -> bool:  # noqa: N802 - Authlib's attribute name
        return bool(self.server.config.rotate_refresh_tokens)

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        token: Token | None = self.server.store.refresh_tokens.get(refresh_token)
        return None if token is None or token.revoked else token

    def authenticate_user(self, refresh_token: Token) -> LaunchContext:
        return refresh_token.context

    def revoke_old_credential(self, refresh_token: Token) -> None:
        # Without rotation (Oracle Health behaviour) the original refresh token stays valid.
        if self.server.config.rotate_refresh_tokens and refresh_token.refresh_token:
            refresh_token.revoked = True
            self.server.store.refresh_tokens.pop(refresh_token.refresh_token, None)


class SmartOpenIDCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, key: RSAKey, issuer: str, store: MemoryStore):
        super().__init__(require_nonce=False)
        self.key = key
        self.issuer = issuer
        self.store = store

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return self.key

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": str(self.key.kid), "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.issuer, "aud": client.client_id, "iat": now, "exp": now + 3600}

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        # Nonces are remembered when a code is issued, so a replayed authorization request fails.
        return nonce in self.store.nonces

    def generate_user_info(self, user: LaunchContext, scope: str) -> dict[str, Any]:
        return {
            "sub": user.practitioner_id,
            "fhirUser": f"Practitioner/{user.practitioner_id}",
            "name": "Dr. Demo Oncologist",
        }


class SmartAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, config: DemoEhrConfig, store: MemoryStore, key: RSAKey):
        super().__init__(scopes_supported=None)
        self.config = config
        self.store = store
        self.key = key
        self.register_token_generator("default", self._generate_token)
        self.register_grant(
            CodeGrant, [S256CodeChallenge(required=True), SmartOpenIDCode(key, config.fhir_base, store)]
        )
        self.register_grant(RefreshGrant)
        # SMART Backend Services: client_credentials authenticated by a signed assertion.
        self.register_client_auth_method(
            SmartClientAssertion.CLIENT_AUTH_METHOD, SmartClientAssertion(self.token_endpoint, store)
        )
        self.register_grant(BackendServicesGrant)

    @property
    def token_endpoint(self) -> str:
        return f"{self.config.origin}/auth/token"

    def query_client(self, client_id: str) -> Client | None:
        return self.store.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        record = Token(
            client_id=request.client.client_id,
            scope=str(token.get("scope", "")),
            context=request.user,
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            expires_at=time.time() + int(token["expires_in"]),
        )
        self.store.access_tokens[token["access_token"]] = record
        if record.refresh_token:
            self.store.refresh_tokens[record.refresh_token] = record

    def _generate_token(
        self,
        grant_type: str,
        client: Client,
        user: LaunchContext | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        token: dict[str, Any] = {
            "access_token": new_id(32),
            "token_type": "Bearer",
            "expires_in": expires_in or self.config.access_token_ttl,
            "scope": scope or "",
        }
        if include_refresh_token and REFRESH_SCOPES & set(split_scope(scope)):
            token["refresh_token"] = new_id(32)
        if user is not None:
            token.update(self.context_params(user))
        return token

    def context_params(self, context: LaunchContext) -> dict[str, Any]:
        params: dict[str, Any] = {
            "need_patient_banner": context.need_patient_banner,
            "smart_style_url": f"{self.config.origin}/smart-style.json",
        }
        if context.patient_id:
            params["patient"] = context.patient_id
        if context.encounter_id:
            params["encounter"] = context.encounter_id
            params["fhirContext"] = [{"reference": f"Encounter/{context.encounter_id}"}]
        if context.intent:
            params["intent"] = context.intent
        if context.app_context:
            params["appContext"] = context.app_context
        return params

    def create_oauth2_request(self, request: ParsedRequest) -> OAuth2Request:
        return StarletteOAuth2Request(request)

    def create_json_request(self, request: ParsedRequest) -> JsonRequest:
        return StarletteJsonRequest(request)

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        content = json.dumps(body) if isinstance(body, dict) else (body or "")
        return Response(content, status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


def register_demo_clients(
    store: MemoryStore, redirect_uris: list[str], config: DemoEhrConfig | None = None
) -> None:
    store.clients[PUBLIC_CLIENT_ID] = Client(PUBLIC_CLIENT_ID, list(redirect_uris), "none")
    store.clients[CONFIDENTIAL_CLIENT_ID] = Client(
        CONFIDENTIAL_CLIENT_ID, list(redirect_uris), "client_secret_basic", CONFIDENTIAL_CLIENT_SECRET
    )
    for item in config.backend_clients if config is not None else ():
        store.clients[item.client_id] = backend_client(item)


def generate_signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": new_id(8), "use": "sig", "alg": "RS256"})

"""In-memory OAuth state of the demo EHR: clients, launches, pending consents, codes, tokens.

Everything is keyed by its own random id, so concurrent launches never share state.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from .scopes import is_known_scope, split_scope

LAUNCH_TTL = 600
CONSENT_TTL = 600
CODE_TTL = 60
PAGES_TTL = 1800
PUBLIC_CLIENT_ID = "secondlook-demo"
CONFIDENTIAL_CLIENT_ID = "secondlook-demo-confidential"
# A published demo secret: the demo EHR is a local teaching tool, never a real EHR.
CONFIDENTIAL_CLIENT_SECRET = "demo-secret-not-for-production"  # noqa: S105
DEMO_PRACTITIONER_ID = "demo-oncologist"


def new_id(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


@dataclass
class Client:
    client_id: str
    redirect_uris: list[str]
    auth_method: str  # "none", "client_secret_basic" or "private_key_jwt" (backend services)
    secret: str | None = None
    # Backend services clients: the registered JWKS (inline) or where to fetch it, and the
    # system scopes this client may be granted.
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None
    system_scopes: tuple[str, ...] = ()

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(item for item in split_scope(scope) if is_known_scope(item))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret is not None and secrets.compare_digest(self.secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.auth_method if endpoint == "token" else True

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if self.auth_method == "private_key_jwt":
            return grant_type == "client_credentials"
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class LaunchContext:
    """The authorizing user plus the EHR context the launch carried (the Authlib "user")."""

    practitioner_id: str = DEMO_PRACTITIONER_ID
    patient_id: str | None = None
    encounter_id: str | None = None
    need_patient_banner: bool = True
    intent: str | None = None
    app_context: str | None = None

    def get_user_id(self) -> str:
        return self.practitioner_id


@dataclass
class Launch:
    context: LaunchContext
    expires_at: float = field(default_factory=lambda: time.time() + LAUNCH_TTL)
    used: bool = False


@dataclass
class PendingConsent:
    params: list[tuple[str, str]]
    launch_id: str | None
    context: LaunchContext
    needs_patient_pick: bool
    expires_at: float = field(default_factory=lambda: time.time() + CONSENT_TTL)


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    context: LaunchContext
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))
    expires_at: float = field(default_factory=lambda: time.time() + CODE_TTL)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return None


@dataclass
class Token:
    client_id: str
    scope: str
    context: LaunchContext
    access_token: str | None
    refresh_token: str | None
    expires_at: float
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.expires_at - time.time()))

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> LaunchContext:
        return self.context


@dataclass
class PageSet:
    """A search result frozen for paging behind an opaque `_getpages` token."""

    references: list[tuple[str, str]]
    total: int
    outcome: dict[str, Any] | None
    expires_at: float = field(default_factory=lambda: time.time() + PAGES_TTL)


@dataclass
class MemoryStore:
    clients: dict[str, Client] = field(default_factory=dict)
    launches: dict[str, Launch] = field(default_factory=dict)
    consents: dict[str, PendingConsent] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    access_tokens: dict[str, Token] = field(default_factory=dict)
    refresh_tokens: dict[str, Token] = field(default_factory=dict)
    page_sets: dict[str, PageSet] = field(default_factory=dict)
    nonces: set[str] = field(default_factory=set)
    # Client assertion ids already used, per client, until the assertion's `exp` (replay check).
    assertion_ids: dict[tuple[str, str], float] = field(default_factory=dict)
    # JWKS fetched from backend clients' jwks_url: url -> (fetched document, expires at).
    fetched_jwks: dict[str, tuple[dict[str, Any], float]] = field(default_factory=dict)

    def use_assertion_id(self, client_id: str, jti: str, expires_at: float) -> bool:
        """Remember `jti` for `client_id`; False when it was already used (a replay)."""
        now = time.time()
        for key in [k for k, until in self.assertion_ids.items() if until < now]:
            del self.assertion_ids[key]
        if (client_id, jti) in self.assertion_ids:
            return False
        self.assertion_ids[(client_id, jti)] = expires_at
        return True

    def create_launch(self, context: LaunchContext) -> str:
        self._purge()
        launch_id = new_id(18)
        self.launches[launch_id] = Launch(context)
        return launch_id

    def live_launch(self, launch_id: str) -> Launch | None:
        launch = self.launches.get(launch_id)
        if launch is None or launch.used or launch.expires_at < time.time():
            return None
        return launch

    def save_pages(self, page_set: PageSet) -> str:
        self._purge()
        key = new_id(18)
        self.page_sets[key] = page_set
        return key

    def _purge(self) -> None:
        now = time.time()
        for table in (self.launches, self.consents, self.codes, self.page_sets):
            for key in [k for k, v in table.items() if v.expires_at < now]:
                del table[key]

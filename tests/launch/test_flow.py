from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from werkzeug import Response

from launch.discovery import Discovery
from launch.errors import LaunchError
from launch.flow import begin_launch, complete_launch
from launch.registry import Registry
from launch.sessions import SessionStore

from .conftest import CLIENT_ID, FakeEhr, make_registry
from .fakes import wait_until

REDIRECT = "https://app.example.org/callback"
NONCE = "browser-nonce-1"
GRANTED = "launch openid fhirUser patient/Patient.r patient/Condition.rs"
READS = (("Patient", "r"), ("Condition", "rs"))


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def begin(
    registry: Registry,
    discovery: Discovery,
    store: SessionStore,
    ehr: FakeEhr,
    launch: str | None = "L-42",
    http: httpx2.AsyncClient | None = None,
) -> dict[str, str]:
    url = await begin_launch(
        registry=registry,
        discovery=discovery,
        store=store,
        iss=ehr.base,
        launch=launch,
        redirect_uri=REDIRECT,
        browser_nonce=NONCE,
        reads=READS,
        http=http,
    )
    assert url.startswith(ehr.server.url_for("/auth/authorize") + "?")
    return query(url)


async def callback(
    registry: Registry,
    discovery: Discovery,
    store: SessionStore,
    http: httpx2.AsyncClient,
    params: dict[str, str],
    nonce: str = NONCE,
) -> Any:
    return await complete_launch(
        registry=registry,
        discovery=discovery,
        store=store,
        http=http,
        params=params,
        browser_nonce=nonce,
        redirect_uri=REDIRECT,
    )


def token_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": "AT-1",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": GRANTED,
        "refresh_token": "RT-1",
        "patient": "p1",
    }
    body.update(extra)
    return body


async def test_unregistered_issuer_makes_no_request(
    ehr: FakeEhr, discovery: Discovery, lite_store: SessionStore
) -> None:
    with pytest.raises(LaunchError) as caught:
        await begin_launch(
            registry=make_registry(ehr, iss="https://other.example.org/fhir"),
            discovery=discovery,
            store=lite_store,
            iss=ehr.base,
            launch="L",
            redirect_uri=REDIRECT,
            browser_nonce=NONCE,
            reads=READS,
        )
    assert caught.value.error == "unregistered_issuer"
    assert ehr.server.log == []


async def test_oversized_launch_parameters_are_refused_before_any_request(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore
) -> None:
    for iss, launch in ((ehr.base, "L" * 2049), (ehr.base + "/" + "x" * 2100, "L")):
        with pytest.raises(LaunchError) as caught:
            await begin_launch(
                registry=registry,
                discovery=discovery,
                store=lite_store,
                iss=iss,
                launch=launch,
                redirect_uri=REDIRECT,
                browser_nonce=NONCE,
                reads=READS,
            )
        assert caught.value.error == "invalid_request" and "2,048" in caught.value.description
    assert ehr.server.log == []
    url = await begin_launch(
        registry=registry,
        discovery=discovery,
        store=lite_store,
        iss=ehr.base,
        launch="L" * 2048,
        redirect_uri=REDIRECT,
        browser_nonce=NONCE,
        reads=READS,
    )
    assert url.startswith(ehr.base.rsplit("/", 1)[0])


async def test_ehr_launch_authorize_parameters(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore
) -> None:
    params = await begin(registry, discovery, lite_store, ehr)
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == REDIRECT
    assert params["aud"] == ehr.base
    assert params["launch"] == "L-42"
    assert params["scope"].split()[0] == "launch" and "patient/Condition.rs" in params["scope"].split()
    assert params["code_challenge_method"] == "S256"
    assert len(base64.urlsafe_b64decode(params["state"] + "==")) >= 16  # ≥128 bits
    pending = await lite_store.take_pending(params["state"], NONCE)
    digest = hashlib.sha256(pending.code_verifier.encode("ascii")).digest()
    assert params["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    assert 43 <= len(pending.code_verifier) <= 128
    assert pending.token_endpoint == ehr.token_url


async def test_states_are_unpredictable(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore
) -> None:
    first = await begin(registry, discovery, lite_store, ehr)
    second = await begin(registry, discovery, lite_store, ehr)
    assert first["state"] != second["state"]
    assert first["code_challenge"] != second["code_challenge"]


async def test_standalone_launch(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore
) -> None:
    params = await begin(registry, discovery, lite_store, ehr, launch=None)
    assert "launch" not in params
    assert "launch/patient" in params["scope"].split()
    assert "launch" not in params["scope"].split()
    assert params["aud"] == ehr.base


async def test_s256_used_when_server_lists_no_methods(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore
) -> None:
    ehr.config_overrides = {"code_challenge_methods_supported": None}
    params = await begin(registry, discovery, lite_store, ehr)
    assert params["code_challenge_method"] == "S256"


async def test_full_public_launch_records_context(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore, http: httpx2.AsyncClient
) -> None:
    params = await begin(registry, discovery, lite_store, ehr)
    ehr.token_responses.append(
        (
            200,
            token_body(
                id_token=ehr.id_token(fhirUser="https://ehr.example.org/fhir/Practitioner/dr-7"),
                encounter="enc-1",
                fhirContext=[{"reference": "DiagnosticReport/d1"}],
                smart_style_url="https://ehr/style",
                intent="x",
                tenant="t1",
                appContext='{"findings":["rare-cancer"]}',
            ),
        )
    )
    session, secret = await callback(
        registry, discovery, lite_store, http, {"code": "C-1", "state": params["state"]}
    )
    assert session.app_context == '{"findings":["rare-cancer"]}'
    form = ehr.token_form()
    request = ehr.token_requests[-1]
    assert form["grant_type"] == "authorization_code"
    assert form["code"] == "C-1"
    assert form["redirect_uri"] == REDIRECT
    assert form["client_id"] == CLIENT_ID
    pkce = hashlib.sha256(form["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(pkce).rstrip(b"=").decode() == params["code_challenge"]
    assert "Authorization" not in request.headers
    assert session.patient == "p1" and session.encounter == "enc-1"
    assert session.fhir_user == "https://ehr.example.org/fhir/Practitioner/dr-7"
    assert session.fhir_context == [{"reference": "DiagnosticReport/d1"}]
    assert session.need_patient_banner is None  # absent in the response: recorded as absent
    assert (session.smart_style_url, session.intent, session.tenant) == ("https://ehr/style", "x", "t1")
    assert session.granted.can_read("Condition") and not session.granted.can_read("Observation")
    assert session.granted.missing_reads(["Condition", "Observation"]) == ["Observation"]
    assert (await lite_store.get_session(session.id, secret)).patient == "p1"
    assert (await lite_store.read_tokens(session.id)).refresh_token == "RT-1"


async def test_client_secret_basic(
    ehr: FakeEhr, discovery: Discovery, lite_store: SessionStore, http: httpx2.AsyncClient
) -> None:
    registry = make_registry(ehr, client_auth="client_secret_basic", client_secret="pa:ss")
    params = await begin(registry, discovery, lite_store, ehr)
    ehr.token_responses.append((200, token_body()))
    await callback(registry, discovery, lite_store, http, {"code": "C", "state": params["state"]})
    header = ehr.token_requests[-1].headers["Authorization"]
    assert header.startswith("Basic ")
    assert base64.b64decode(header[6:]).decode() == f"{CLIENT_ID}:pa:ss"
    assert "client_assertion" not in ehr.token_form()


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
async def test_private_key_jwt(
    alg: str,
    ehr: FakeEhr,
    discovery: Discovery,
    lite_store: SessionStore,
    http: httpx2.AsyncClient,
    rsa_key: RSAKey,
    ec_key: Any,
    tmp_path: Any,
) -> None:
    key = rsa_key if alg == "RS384" else ec_key
    path = tmp_path / "key.pem"
    path.write_bytes(key.as_pem(private=True))
    registry = make_registry(
        ehr, client_auth="private_key_jwt", signing_alg=alg, kid="kid-9", private_key_path=path
    )
    assertions = []
    for _ in range(2):
        params = await begin(registry, discovery, lite_store, ehr)
        ehr.token_responses.append((200, token_body()))
        await callback(registry, discovery, lite_store, http, {"code": "C", "state": params["state"]})
        form = ehr.token_form()
        assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        assert "Authorization" not in ehr.token_requests[-1].headers
        public = type(key).import_key(key.as_dict(private=False))
        token = jwt.decode(form["client_assertion"], public, algorithms=[alg])
        assertions.append(token)
    for token in assertions:
        assert token.header == {"alg": alg, "kid": "kid-9", "typ": "JWT"}
        claims = token.claims
        assert claims["iss"] == claims["sub"] == CLIENT_ID
        assert claims["aud"] == ehr.token_url
        assert claims["exp"] - claims["iat"] <= 300
        assert claims["exp"] <= time.time() + 300
    assert assertions[0].claims["jti"] != assertions[1].claims["jti"]


async def test_access_denied(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore, http: httpx2.AsyncClient
) -> None:
    params = await begin(registry, discovery, lite_store, ehr)
    with pytest.raises(LaunchError) as caught:
        await callback(
            registry,
            discovery,
            lite_store,
            http,
            {"error": "access_denied", "error_description": "User said no", "state": params["state"]},
        )
    assert caught.value.error == "access_denied"
    assert "User said no" not in caught.value.description
    assert ehr.token_requests == []
    # The pending launch was spent: the state cannot be reused with a code afterwards.
    with pytest.raises(LaunchError, match="already used") as again:
        await callback(registry, discovery, lite_store, http, {"code": "C", "state": params["state"]})
    assert again.value.error == "invalid_state"


async def test_other_oauth_error_keeps_its_error_string(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore, http: httpx2.AsyncClient
) -> None:
    with pytest.raises(LaunchError) as caught:
        await callback(
            registry, discovery, lite_store, http, {"error": "invalid_scope", "error_description": "bad"}
        )
    assert caught.value.error == "invalid_scope"
    assert "bad" not in caught.value.description


@pytest.mark.parametrize("error", ["server_error", "made_up_code", "<script>"])
async def test_error_description_is_never_shown(
    error: str,
    ehr: FakeEhr,
    registry: Registry,
    discovery: Discovery,
    lite_store: SessionStore,
    http: httpx2.AsyncClient,
) -> None:
    """The callback's query is attacker-reachable: its free text must not appear on our origin."""
    planted = "Your session expired. Call the IT helpdesk at 555-0100"
    with pytest.raises(LaunchError) as caught:
        await callback(registry, discovery, lite_store, http, {"error": error, "error_description": planted})
    assert "helpdesk" not in caught.value.description and "<script>" not in caught.value.description
    assert "relaunch" in caught.value.description.lower()


@pytest.mark.parametrize("case", ["unknown", "missing", "reused", "wrong_nonce"])
async def test_state_problems(
    case: str,
    ehr: FakeEhr,
    registry: Registry,
    discovery: Discovery,
    lite_store: SessionStore,
    http: httpx2.AsyncClient,
) -> None:
    params = await begin(registry, discovery, lite_store, ehr)
    nonce = NONCE
    cb: dict[str, str] = {"code": "C", "state": params["state"]}
    if case == "unknown":
        cb["state"] = params["state"][:-2] + "xx"
    elif case == "missing":
        del cb["state"]
    elif case == "reused":
        ehr.token_responses.append((200, token_body()))
        await callback(registry, discovery, lite_store, http, dict(cb))
    else:
        nonce = "someone-else"
    with pytest.raises(LaunchError) as caught:
        await callback(registry, discovery, lite_store, http, cb, nonce=nonce)
    assert caught.value.error == "invalid_state"
    assert len(ehr.token_requests) == (1 if case == "reused" else 0)


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (500, {"error": "server_error"}, "token_request_failed", "HTTP 500"),
        (
            400,
            {"error": "invalid_grant", "error_description": "code expired"},
            "invalid_grant",
            "code expired",
        ),
        (200, "<html>not json</html>", "token_request_failed", "unreadable"),
        (200, {"token_type": "Bearer"}, "token_request_failed", "no access token"),
    ],
)
async def test_token_endpoint_errors(
    status: int,
    body: Any,
    error: str,
    words: str,
    ehr: FakeEhr,
    registry: Registry,
    discovery: Discovery,
    lite_store: SessionStore,
    http: httpx2.AsyncClient,
) -> None:
    params = await begin(registry, discovery, lite_store, ehr)
    ehr.token_responses.append((status, body))
    with pytest.raises(LaunchError) as caught:
        await callback(
            registry, discovery, lite_store, http, {"code": "SECRET-CODE", "state": params["state"]}
        )
    assert caught.value.error == error
    assert words in caught.value.description
    assert "SECRET-CODE" not in str(caught.value)


async def test_token_endpoint_timeout(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore
) -> None:
    def slow(_request: Any) -> Response:
        time.sleep(0.3)
        return Response("{}", status=500)  # never read: the client has given up by now

    ehr.server.clear_all_handlers()
    ehr.server.expect_request("/auth/token").respond_with_handler(slow)
    ehr.install()
    params = await begin(registry, discovery, lite_store, ehr)
    async with httpx2.AsyncClient(timeout=0.1) as impatient:
        with pytest.raises(LaunchError) as caught:
            await callback(
                registry, discovery, lite_store, impatient, {"code": "C", "state": params["state"]}
            )
    assert caught.value.error == "token_request_failed"
    assert "in time" in caught.value.description
    # Let the single-threaded server finish the abandoned request so it doesn't leak into the next test.
    await wait_until(lambda: any(r.path == "/auth/token" for r, _ in ehr.server.log))


@pytest.mark.parametrize("problem", ["wrong_aud", "bad_signature", "expired", "wrong_iss"])
async def test_bad_id_token(
    problem: str,
    ehr: FakeEhr,
    registry: Registry,
    discovery: Discovery,
    lite_store: SessionStore,
    http: httpx2.AsyncClient,
) -> None:
    if problem == "wrong_aud":
        id_token = ehr.id_token(aud="another-app")
    elif problem == "expired":
        id_token = ehr.id_token(exp=int(time.time()) - 600, iat=int(time.time()) - 900)
    elif problem == "wrong_iss":
        id_token = ehr.id_token(iss="https://evil.example.com")
    else:
        forger = RSAKey.generate_key(2048, parameters={"kid": "ehr-1"}, private=True)
        now = int(time.time())
        id_token = jwt.encode(
            {"alg": "RS256", "kid": "ehr-1"},
            {"iss": ehr.base, "aud": CLIENT_ID, "sub": "u", "iat": now, "exp": now + 60},
            forger,
        )
    params = await begin(registry, discovery, lite_store, ehr)
    ehr.token_responses.append((200, token_body(id_token=id_token)))
    with pytest.raises(LaunchError) as caught:
        await callback(registry, discovery, lite_store, http, {"code": "C", "state": params["state"]})
    assert caught.value.error == "invalid_id_token"


async def test_id_token_keys_via_openid_configuration(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore, http: httpx2.AsyncClient
) -> None:
    ehr.config_overrides = {"jwks_uri": None}
    ehr.server.expect_request("/fhir/.well-known/openid-configuration").respond_with_json(
        {"issuer": ehr.base, "jwks_uri": ehr.server.url_for("/auth/jwks")}
    )
    params = await begin(registry, discovery, lite_store, ehr)
    ehr.token_responses.append((200, token_body(id_token=ehr.id_token(fhirUser="Practitioner/p9"))))
    session, _secret = await callback(
        registry, discovery, lite_store, http, {"code": "C", "state": params["state"]}
    )
    assert session.fhir_user == "Practitioner/p9"
    assert any(req.path == "/fhir/.well-known/openid-configuration" for req, _resp in ehr.server.log)


async def test_id_token_ignored_without_openid_grant(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore, http: httpx2.AsyncClient
) -> None:
    params = await begin(registry, discovery, lite_store, ehr)
    ehr.token_responses.append((200, token_body(scope="launch patient/*.rs", id_token="not-even-a-jwt")))
    session, _secret = await callback(
        registry, discovery, lite_store, http, {"code": "C", "state": params["state"]}
    )
    assert session.fhir_user is None
    assert session.granted.can_search("Observation")


@pytest.mark.parametrize("alg", ["RS256", "RS384", "ES384"])
async def test_id_token_algorithms(
    alg: str,
    ehr: FakeEhr,
    registry: Registry,
    discovery: Discovery,
    lite_store: SessionStore,
    http: httpx2.AsyncClient,
    ec_key: Any,
) -> None:
    if alg == "ES384":
        ehr.signing_key = ec_key
    ehr.id_token_alg = alg
    params = await begin(registry, discovery, lite_store, ehr)
    id_token = ehr.id_token(fhirUser="Practitioner/p1")
    assert json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))["alg"] == alg
    ehr.token_responses.append((200, token_body(id_token=id_token)))
    session, _secret = await callback(
        registry, discovery, lite_store, http, {"code": "C", "state": params["state"]}
    )
    assert session.fhir_user == "Practitioner/p1"


async def test_malformed_error_code_is_not_echoed(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore, http: httpx2.AsyncClient
) -> None:
    with pytest.raises(LaunchError) as caught:
        await callback(registry, discovery, lite_store, http, {"error": "<script>alert(1)</script>"})
    assert caught.value.error == "authorization_failed"
    assert "<script>" not in str(caught.value)


async def test_jwks_cached_between_launches_and_refetched_on_rotation(
    ehr: FakeEhr,
    registry: Registry,
    discovery: Discovery,
    lite_store: SessionStore,
    http: httpx2.AsyncClient,
    ec_key: ECKey,
) -> None:
    from launch import id_token as id_token_module

    id_token_module._JWKS_CACHE.clear()

    def jwks_fetches() -> int:
        return sum(1 for req, _resp in ehr.server.log if req.path == "/auth/jwks")

    for _ in range(2):
        params = await begin(registry, discovery, lite_store, ehr)
        ehr.token_responses.append((200, token_body(id_token=ehr.id_token())))
        await callback(registry, discovery, lite_store, http, {"code": "C", "state": params["state"]})
    assert jwks_fetches() == 1
    # The EHR rotates to a new key: the cached set fails, one fresh fetch finds the new key.
    ehr.signing_key = ec_key
    params = await begin(registry, discovery, lite_store, ehr)
    ehr.token_responses.append((200, token_body(id_token=ehr.id_token())))
    await callback(registry, discovery, lite_store, http, {"code": "C", "state": params["state"]})
    assert jwks_fetches() == 2


async def test_rfc9207_iss_of_another_server_is_refused_before_the_code_is_spent(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore, http: httpx2.AsyncClient
) -> None:
    """Mix-up defence: an authorization response naming another issuer never reaches our token request."""
    params = await begin(registry, discovery, lite_store, ehr)
    with pytest.raises(LaunchError, match="different server") as caught:
        await callback(
            registry,
            discovery,
            lite_store,
            http,
            {"code": "C", "state": params["state"], "iss": "https://attacker.example/fhir"},
        )
    assert caught.value.error == "invalid_state"
    assert ehr.token_requests == []


async def test_the_key_set_is_fetched_when_the_launch_begins_not_at_the_callback(
    ehr: FakeEhr, registry: Registry, discovery: Discovery, lite_store: SessionStore, http: httpx2.AsyncClient
) -> None:
    from launch import id_token as id_token_module

    id_token_module._JWKS_CACHE.clear()
    params = await begin(registry, discovery, lite_store, ehr, http=http)
    await asyncio.gather(*id_token_module._WARMING)
    ehr.token_responses.append((200, token_body(id_token=ehr.id_token())))
    session, _secret = await callback(
        registry, discovery, lite_store, http, {"code": "C", "state": params["state"]}
    )
    assert session.patient == "p1"
    paths = [request.path for request, _response in ehr.server.log]
    assert paths.count("/auth/jwks") == 1
    assert paths.index("/auth/jwks") < paths.index("/auth/token")

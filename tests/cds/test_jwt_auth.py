"""The service refuses every JWT that is not exactly right, with a bare 401 (CDS Hooks 2.0 §JWT)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

from joserfc import jwt
from joserfc.jwk import OctKey
from structlog.testing import capture_logs

from tests.cds.conftest import ISS, SERVICE, TENANT_ISS, Stack, mint, unsigned
from tests.cds.requests import minimal_request

PATH = f"/cds-services/{SERVICE}"


def assert_bare_401(stack: Stack, token: str) -> None:
    response = stack.call(minimal_request(), token=token)
    assert response.status_code == 401
    assert response.content in (b"", b"{}")


def test_valid_es384_and_rs384_tokens_are_accepted(stack: Stack) -> None:
    for alg in ("ES384", "RS384"):
        response = stack.call(minimal_request(), token=stack.token(PATH, alg=alg))
        assert response.status_code == 200, alg
        assert response.json() == {"cards": []}


def test_audience_list_containing_the_endpoint_is_accepted(stack: Stack) -> None:
    assert (
        stack.call(
            minimal_request(), token=mint(stack.keys, ["https://other.test", stack.url + PATH])
        ).status_code
        == 200
    )


def test_wrong_audience(stack: Stack) -> None:
    assert_bare_401(stack, stack.token("/cds-services"))  # the discovery URL, not this service
    assert_bare_401(
        stack, mint(stack.keys, stack.url.replace("127.0.0.1", "localhost") + PATH)
    )  # Host-derived
    assert_bare_401(stack, stack.token(PATH + "/feedback"))


def test_expired_token(stack: Stack) -> None:
    assert_bare_401(stack, stack.token(PATH, exp_in=-120))


def test_token_living_longer_than_an_hour(stack: Stack) -> None:
    assert_bare_401(stack, stack.token(PATH, exp_in=3 * 3600))


def test_replayed_jti(stack: Stack) -> None:
    token = stack.token(PATH)
    assert stack.call(minimal_request(), token=token).status_code == 200
    assert_bare_401(stack, token)
    # The same jti in a freshly signed token is a replay too.
    jti = str(uuid.uuid4())
    assert stack.call(minimal_request(), token=stack.token(PATH, jti=jti)).status_code == 200
    assert_bare_401(stack, stack.token(PATH, jti=jti, alg="RS384"))


def test_unknown_issuer(stack: Stack) -> None:
    assert_bare_401(stack, stack.token(PATH, iss="https://unknown.test"))


def test_alg_none(stack: Stack) -> None:
    now = int(time.time())
    claims = {"iss": ISS, "aud": stack.url + PATH, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    assert_bare_401(stack, unsigned({"alg": "none", "typ": "JWT", "kid": "ec-1"}, claims))


def test_hs256_signed_with_the_public_key(stack: Stack) -> None:
    # The classic key-confusion attack: HMAC with the RSA public key as the shared secret.
    now = int(time.time())
    claims = {"iss": ISS, "aud": stack.url + PATH, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    # joserfc itself refuses to build such a token, so sign it by hand.
    signing_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": "rs-1"}, claims)[:-1]
    mac = hmac.new(stack.keys.rsa.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    assert_bare_401(stack, signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode())


def test_hs256_with_a_shared_secret(stack: Stack) -> None:
    now = int(time.time())
    claims = {"iss": ISS, "aud": stack.url + PATH, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    token = jwt.encode(
        {"alg": "HS256", "kid": "ec-1"}, claims, OctKey.generate_key(256), algorithms=["HS256"]
    )
    assert_bare_401(stack, token)


def test_signature_by_an_unpublished_key_with_a_known_kid(stack: Stack) -> None:
    assert_bare_401(stack, stack.token(PATH, key=stack.keys.rogue))


def test_jku_not_on_the_issuers_allowlist(stack: Stack) -> None:
    token = stack.token(PATH, key=stack.keys.rogue, header={"jku": stack.key_server + "/unlisted-jwks.json"})
    assert_bare_401(stack, token)


def test_listed_jku_is_used(stack: Stack) -> None:
    token = stack.token(PATH, header={"jku": stack.key_server + "/jwks.json"})
    assert stack.call(minimal_request(), token=token).status_code == 200


def test_tenant_must_match_when_configured(stack: Stack) -> None:
    assert_bare_401(stack, stack.token(PATH, iss=TENANT_ISS))
    assert_bare_401(stack, stack.token(PATH, iss=TENANT_ISS, claims={"tenant": "hospital-b"}))
    ok = stack.token(PATH, iss=TENANT_ISS, claims={"tenant": "hospital-a"})
    assert stack.call(minimal_request(), token=ok).status_code == 200


def test_missing_or_malformed_authorization(stack: Stack) -> None:
    response = stack.http.post(stack.url + PATH, json=minimal_request())
    assert response.status_code == 401 and response.content in (b"", b"{}")
    assert_bare_401(stack, "not-a-jwt")


def test_failures_are_logged_without_the_token(stack: Stack) -> None:
    token = stack.token(PATH, exp_in=-120)
    with capture_logs() as logs:
        assert_bare_401(stack, token)
    failures = [entry for entry in logs if entry["event"] == "cds_auth_failed"]
    assert failures and failures[0]["reason"] == "expired" and failures[0]["iss"] == ISS
    assert token not in repr(logs) and token.split(".")[2] not in repr(logs)


def refused_for(stack: Stack, token: str) -> str:
    """The logged reason of a refused token (every refusal is a bare 401 to the caller)."""
    with capture_logs() as logs:
        assert_bare_401(stack, token)
    return next(entry["reason"] for entry in logs if entry["event"] == "cds_auth_failed")


def test_a_token_without_kid_is_refused(stack: Stack) -> None:
    now = int(time.time())
    claims = {"iss": ISS, "aud": stack.url + PATH, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    token = jwt.encode({"alg": "ES384", "typ": "JWT"}, claims, stack.keys.ec, algorithms=["ES384"])
    assert refused_for(stack, token) == "kid_missing"


def test_a_key_of_the_wrong_type_or_curve_for_the_algorithm_is_refused(stack: Stack) -> None:
    now = int(time.time())
    claims = {"iss": ISS, "aud": stack.url + PATH, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    fake = "." + base64.urlsafe_b64encode(b"x" * 96).rstrip(b"=").decode()
    for alg, kid in (
        ("ES384", stack.keys.rsa.kid),
        ("RS384", stack.keys.ec.kid),
        ("ES384", stack.keys.p256.kid),
    ):
        token = unsigned({"alg": alg, "typ": "JWT", "kid": kid}, claims).rstrip(".") + fake
        assert refused_for(stack, token) == "key_alg_mismatch", (alg, kid)


def test_exp_iat_and_jti_are_required(stack: Stack) -> None:
    assert refused_for(stack, stack.token(PATH, claims={"exp": None})) == "exp_missing"
    assert refused_for(stack, stack.token(PATH, claims={"iat": None})) == "bad_iat"
    assert refused_for(stack, stack.token(PATH, claims={"iat": int(time.time()) + 3600})) == "bad_iat"
    assert refused_for(stack, stack.token(PATH, claims={"jti": None})) == "jti_missing"

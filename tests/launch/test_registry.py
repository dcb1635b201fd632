from __future__ import annotations

import json
from pathlib import Path

import pytest
from joserfc.jwk import ECKey, RSAKey

from launch.errors import LaunchError
from launch.registry import Registration, Registry, RegistryError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ehrs.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_all_three_client_auth_kinds(
    tmp_path: Path, rsa_key: RSAKey, ec_key: ECKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rsa.pem").write_bytes(rsa_key.as_pem(private=True))
    (tmp_path / "ec.jwk.json").write_text(json.dumps(ec_key.as_dict(private=True)))
    monkeypatch.setenv("EPIC_SECRET", "s3cret-from-env")
    path = write(
        tmp_path,
        """
[[ehr]]
iss = "https://public.example.org/fhir/"
client_id = "pub"
frame_ancestors = ["https://ehr.example.org"]
display_name = "Public EHR"

[[ehr]]
iss = "https://epic.example.org/api/FHIR/R4"
client_id = "sym"
client_auth = "client_secret_basic"
client_secret_env = "EPIC_SECRET"
scope_syntax = "v1"

[[ehr]]
iss = "https://rsa.example.org/r4"
client_id = "asym-rsa"
client_auth = "private_key_jwt"
signing_alg = "RS384"
private_key_path = "rsa.pem"
kid = "rsa-1"

[[ehr]]
iss = "https://ec.example.org/r4"
client_id = "asym-ec"
client_auth = "private_key_jwt"
signing_alg = "ES384"
private_key_jwk_path = "ec.jwk.json"
kid = "ec-1"
scopes = "launch openid patient/Patient.r"
""",
    )
    registry = Registry.from_file(path)
    assert len(registry.all()) == 4
    public = registry.require("https://public.example.org/fhir")  # trailing slash stripped on both sides
    assert public.client_auth == "public"
    assert public.frame_ancestors == ["https://ehr.example.org"]
    assert public.display_name == "Public EHR"
    symmetric = registry.require("https://epic.example.org/api/FHIR/R4/")
    assert symmetric.secret() == "s3cret-from-env"
    assert symmetric.scope_syntax == "v1"
    rsa = registry.require("https://rsa.example.org/r4")
    assert isinstance(rsa.signing_key, RSAKey) and rsa.signing_key.is_private
    assert rsa.signing_key.thumbprint() == rsa_key.thumbprint()
    ec = registry.require("https://ec.example.org/r4")
    assert isinstance(ec.signing_key, ECKey)
    assert ec.signing_key.thumbprint() == ec_key.thumbprint()
    assert ec.scopes == "launch openid patient/Patient.r"


def test_issuer_match_is_exact_after_normalisation() -> None:
    registry = Registry([Registration(iss="https://ehr.example.org/fhir", client_id="c")])
    assert registry.get("https://ehr.example.org/fhir///") is not None
    assert registry.get("https://ehr.example.org/FHIR") is None
    assert registry.get("https://ehr.example.org/fhir/sub") is None
    with pytest.raises(LaunchError) as caught:
        registry.require("https://evil.example.com/fhir")
    assert caught.value.error == "unregistered_issuer"


def test_missing_env_secret_is_a_clear_error(tmp_path: Path, no_env_secret: None) -> None:
    path = write(
        tmp_path,
        '[[ehr]]\niss = "https://e.example.org"\nclient_id = "c"\nclient_auth = "client_secret_basic"\n'
        'client_secret_env = "EPIC_SECRET"\n',
    )
    with pytest.raises(RegistryError, match="EPIC_SECRET"):
        Registry.from_file(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[ehr]\nbroken", "not valid TOML"),
        ('[[ehr]]\niss = "https://e.example.org"\n', "client_id"),
        ('[[ehr]]\niss = "https://e.example.org"\nclient_id = "c"\nclient_auth = "magic"\n', "client_auth"),
        (
            '[[ehr]]\niss = "https://e.example.org"\nclient_id = "c"\nclient_auth = "private_key_jwt"\n'
            'signing_alg = "RS384"\nkid = "k"\nprivate_key_path = "missing.pem"\n',
            "missing.pem",
        ),
        (
            '[[ehr]]\niss = "https://e.example.org"\nclient_id = "c"\nclient_auth = "private_key_jwt"\n'
            'signing_alg = "HS256"\nkid = "k"\nprivate_key_path = "k.pem"\n',
            "signing_alg",
        ),
        ('[[ehr]]\niss = "https://e.example.org"\nclient_id = "c"\ncolour = "blue"\n', "colour"),
    ],
)
def test_bad_file_gives_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(RegistryError, match=expected) as caught:
        Registry.from_file(write(tmp_path, text))
    assert "ehrs.toml" in str(caught.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        Registry.from_file(tmp_path / "absent.toml")


def test_public_key_is_refused_for_private_key_jwt(tmp_path: Path, rsa_key: RSAKey) -> None:
    (tmp_path / "pub.pem").write_bytes(rsa_key.as_pem(private=False))
    path = write(
        tmp_path,
        '[[ehr]]\niss = "https://e.example.org"\nclient_id = "c"\nclient_auth = "private_key_jwt"\n'
        'signing_alg = "RS384"\nkid = "k"\nprivate_key_path = "pub.pem"\n',
    )
    with pytest.raises(RegistryError, match="public key"):
        Registry.from_file(path)


def test_duplicate_issuer_is_refused() -> None:
    with pytest.raises(RegistryError, match="twice"):
        Registry(
            [
                Registration(iss="https://a.example.org/", client_id="x"),
                Registration(iss="https://a.example.org", client_id="y"),
            ]
        )


def test_name_alias_and_standalone_flag() -> None:
    registration = Registration.model_validate(
        {"iss": "https://e.example.org", "client_id": "c", "name": "Demo EHR", "standalone": True}
    )
    assert registration.display_name == registration.name == "Demo EHR"
    assert registration.standalone
    assert not Registration(iss="https://e.example.org", client_id="c").standalone


def test_required_categories_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "ehrs.toml"
    path.write_text(
        '[[ehr]]\niss = "https://epic.example.org/api/FHIR/R4"\nclient_id = "c"\n'
        'required_categories = { Observation = ["laboratory", "vital-signs"] }\n'
    )
    registration = Registry.from_file(path).require("https://epic.example.org/api/FHIR/R4")
    assert registration.required_categories == {"Observation": ["laboratory", "vital-signs"]}
    assert Registration(iss="https://e.example.org", client_id="c").required_categories == {}

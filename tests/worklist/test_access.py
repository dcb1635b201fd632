"""Who may use the worklist: fhirUser ids (relative or absolute) and PractitionerRole codes."""

from __future__ import annotations

import httpx2
import pytest
from pytest_httpserver import HTTPServer

from launch.fhir_client import FhirClient
from launch.registry import Registration
from smartapp.worklist.access import has_allowed_role, relative_user, user_allowed

ISS = "https://ehr.example.org/fhir/r4"


class Tokens:
    async def token(self) -> str:
        return "t"

    async def reauthenticate(self, stale: str | None = None) -> str:
        return "t"


def reg(iss: str = ISS, **fields: object) -> Registration:
    return Registration.model_validate({"iss": iss, "client_id": "c", **fields})


def test_fhir_user_matches_relative_or_absolute_under_the_issuer() -> None:
    registration = reg(worklist_users=["Practitioner/abc", f"{ISS}/Practitioner/def"])
    assert user_allowed(registration, "Practitioner/abc")
    assert user_allowed(registration, f"{ISS}/Practitioner/abc")  # Epic sends absolute URLs
    assert user_allowed(registration, "Practitioner/def")
    assert not user_allowed(registration, "Practitioner/ab")
    assert not user_allowed(registration, "https://elsewhere.example/fhir/r4/Practitioner/abc")
    assert not user_allowed(reg(), "Practitioner/abc")  # nobody is allowed by default
    assert relative_user(f"{ISS}/Practitioner/x", ISS + "/") == "Practitioner/x"


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        (["tumor-board-coordinator"], True),
        (["http://example.org/roles|tumor-board-coordinator"], True),
        (["http://other.example/roles|tumor-board-coordinator"], False),
        (["oncologist"], False),
    ],
)
async def test_roles_come_from_the_users_practitioner_roles(
    httpserver: HTTPServer, allowed: list[str], expected: bool
) -> None:
    httpserver.expect_request(
        "/fhir/PractitionerRole", query_string={"practitioner": "Practitioner/abc"}
    ).respond_with_json(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [
                {
                    "resource": {
                        "resourceType": "PractitionerRole",
                        "id": "r1",
                        "code": [
                            {
                                "coding": [
                                    {"system": "http://example.org/roles", "code": "tumor-board-coordinator"}
                                ]
                            }
                        ],
                    }
                }
            ],
        }
    )
    base = httpserver.url_for("/fhir")
    async with httpx2.AsyncClient() as http:
        client = FhirClient(base, http, Tokens())
        assert (
            await has_allowed_role(reg(base, worklist_roles=allowed), "Practitioner/abc", client) is expected
        )


async def test_roles_are_not_looked_up_for_non_practitioners(httpserver: HTTPServer) -> None:
    base = httpserver.url_for("/fhir")
    async with httpx2.AsyncClient() as http:
        client = FhirClient(base, http, Tokens())
        assert not await has_allowed_role(reg(base, worklist_roles=["x"]), "Patient/abc", client)
    assert not httpserver.log

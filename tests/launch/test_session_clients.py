"""The in-flight limit a session's client uses for an EHR: its registry entry's, else the app's."""

from __future__ import annotations

from launch.registry import Registration
from launch.session_clients import ehr_concurrency


def test_registry_value_wins_over_the_app_setting() -> None:
    app_default = 16
    limited = Registration(iss="https://ehr.example.org/fhir", client_id="secondlook", max_concurrency=4)
    plain = Registration(iss="https://ehr.example.org/fhir", client_id="secondlook")
    assert ehr_concurrency(limited, app_default) == 4
    assert ehr_concurrency(plain, app_default) == app_default
    assert ehr_concurrency(None, app_default) == app_default

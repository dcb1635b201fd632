"""The in-flight limit a launch uses for an EHR: its registry entry's, else the app's setting."""

from __future__ import annotations

from launch.registry import Registration
from smartapp.config import Settings
from smartapp.web.patient_data import ehr_concurrency


def test_registry_value_wins_over_the_app_setting() -> None:
    app_default = Settings.model_fields["fhir_max_concurrency"].default
    limited = Registration(iss="https://ehr.example.org/fhir", client_id="secondlook", max_concurrency=4)
    plain = Registration(iss="https://ehr.example.org/fhir", client_id="secondlook")
    assert ehr_concurrency(limited, app_default) == 4
    assert ehr_concurrency(plain, app_default) == app_default == 16
    assert ehr_concurrency(None, app_default) == app_default

"""The referring clinician from the launch's fhirUser: name and NPI from the Practitioner, the
organization from their PractitionerRole, phone and fax from the role, the practitioner or the
organization (the demo EHR's staff, which every demo launch signs in as)."""

from __future__ import annotations

from demo_ehr.staff import staff_resources

from smartapp.packet import intake


def test_the_sender_comes_from_practitioner_role_and_organization() -> None:
    resources = staff_resources()
    for user in ("Practitioner/demo-oncologist", "PractitionerRole/demo-oncologist-role"):
        sender, used = intake.sender(resources, user)
        assert (sender.name, sender.npi) == ("Jordan Reyes", "1234567893"), user
        assert sender.organization == "Lakeside Community Cancer Center"
        assert (sender.phone, sender.fax) == ("555-0144", "555-0143")
        assert sender.organization_reference == "Organization/demo-cancer-center"
        assert "Organization/demo-cancer-center" in used and "PractitionerRole/demo-oncologist-role" in used


def test_an_unknown_user_leaves_the_sender_empty_to_be_completed() -> None:
    sender, used = intake.sender(staff_resources(), "Practitioner/nobody")
    assert (sender.name, sender.npi, sender.organization, used) == ("", "", "", [])

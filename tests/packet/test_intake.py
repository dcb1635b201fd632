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
        assert (sender.name, sender.npi) == ("Jordan Reyes, MD", "1234567893"), user
        assert sender.organization == "Lakeside Community Cancer Center"
        assert (sender.phone, sender.fax) == ("555-0144", "555-0143")
        assert sender.organization_reference == "Organization/demo-cancer-center"
        assert "Organization/demo-cancer-center" in used and "PractitionerRole/demo-oncologist-role" in used


def test_an_unknown_user_leaves_the_sender_empty_to_be_completed() -> None:
    sender, used = intake.sender(staff_resources(), "Practitioner/nobody")
    assert (sender.name, sender.npi, sender.organization, used) == ("", "", "", [])


def test_a_name_keeps_its_suffixes_and_its_text_wins() -> None:
    doctor = [{"use": "official", "family": "Reyes", "given": ["Jordan"], "suffix": ["MD", "PhD"]}]
    assert intake.person_name(doctor) == "Jordan Reyes, MD, PhD"
    patient = [
        {"use": "usual", "text": "Bob Smith"},
        {"use": "official", "prefix": ["Mr."], "family": "Smith", "given": ["Robert"], "suffix": ["Jr."]},
    ]
    assert intake.person_name(patient) == "Mr. Robert Smith, Jr."
    assert intake.person_name([{"text": "Gwendolyn A. Szabo, MD", "family": "Szabo", "suffix": ["MD"]}]) == (
        "Gwendolyn A. Szabo, MD"
    )
    assert intake.person_name([{"suffix": ["MD"]}]) == ""  # a suffix alone is no name

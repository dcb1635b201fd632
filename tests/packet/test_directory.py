"""The bundled center directory and a site's replacement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launch.registry import Registry
from smartapp.packet.directory import BUNDLED, DirectoryError, Option, load_directory
from smartapp.web.app import create_app
from tests.web.conftest import app_settings


def test_bundled_directory_names_its_source_and_date_in_words() -> None:
    directory = load_directory()
    assert "cancercenters.cancer.gov" in directory.source
    assert "partial" in directory.source.lower() and "2026" in directory.source
    # Written for a coordinator: no repository paths or setting names.
    assert not any(w in directory.source for w in ("shared/", ".md", "SECONDLOOK_", "section 12"))
    assert directory.date


def bundled(key: str) -> Option:
    option = load_directory().get(key)
    assert option is not None, key
    return option


def test_bundled_programs_carry_what_the_domain_research_states() -> None:
    mayo = bundled("mayo/mayo-econsult")
    assert "4 business days" in mayo.turnaround and "pathology" in mayo.turnaround
    msk = " ".join(bundled("msk/msk-more-health").caveats)
    assert "active chemotherapy or radiotherapy" in msk and "surgery" in msk and "English" in msk
    hopkins = " ".join(bundled("hopkins/hopkins-surgical-second-opinion").caveats)
    assert "Self-pay" in hopkins and "physician's permission" in hopkins
    dana = bundled("dana-farber/dana-farber-online")
    assert dana.remote and dana.review == "clinical"
    assert set(dana.excludes) == {"residents:MA", "inpatient"}
    assert "5–7 business days" in dana.turnaround
    assert "medical oncology" in " ".join(dana.caveats).lower()
    cleveland = " ".join(bundled("cleveland-clinic/cleveland-myconsult").caveats)
    assert "Residence restrictions" in cleveland
    assert all(o.source for o in load_directory().options if o.program_id != "in-person")


def test_bundled_directory_invents_no_intake_contact() -> None:
    # The domain research names no intake phone, fax or e-mail; the one program site it names is
    # MyConsult's. Anything else here would have been made up.
    options = load_directory().options
    assert not any(o.phone or o.fax or o.email for o in options)
    assert {o.portal for o in options if o.portal} == {"https://eclevelandclinic.org"}


def test_basic_laboratory_centers_are_not_offered() -> None:
    centers = {o.center for o in load_directory().options}
    raw = json.loads(BUNDLED.read_text())
    labs = [c["name"] for c in raw["centers"] if c["category"] == "basic-laboratory"]
    assert len(labs) == 7
    assert not centers & set(labs)


def test_remote_programs_of_the_five_institutions_are_present() -> None:
    remote = {o.key for o in load_directory().search(remote=True)}
    assert {
        "cleveland-clinic/cleveland-myconsult",
        "msk/msk-more-health",
        "mayo/mayo-econsult",
        "mayo/mayo-labs-pathology",
        "md-anderson/mdanderson-pathology",
        "hopkins/hopkins-surgical-second-opinion",
    } <= remote


def test_state_filter_keeps_remote_programs_and_drops_other_states() -> None:
    found = load_directory().search(state="PA")
    states = {o.state for o in found if not o.remote}
    assert states == {"PA"}
    assert any(o.remote and o.state != "PA" for o in found)
    assert all(o.remote for o in load_directory().search(state="PA", remote=True))


def test_category_is_unknown_where_the_source_does_not_give_it() -> None:
    directory = load_directory()
    mount_sinai = next(o for o in directory.options if o.center_id == "mount-sinai")
    msk = next(o for o in directory.options if o.center_id == "msk")
    assert mount_sinai.category == "unknown"
    assert msk.category == "comprehensive"
    assert "Comprehensive" in msk.destination().category


def test_site_directory_replaces_the_bundled_one(tmp_path: Path) -> None:
    path = tmp_path / "centers.json"
    path.write_text(
        json.dumps(
            {
                "source": "Our network list",
                "date": "2026-10-01",
                "centers": [
                    {
                        "id": "partner",
                        "name": "Partner Cancer Center",
                        "city": "Town",
                        "state": "PA",
                        "category": "comprehensive",
                        "programs": [
                            {"id": "tele", "name": "Tele-oncology", "review": "clinical", "remote": True}
                        ],
                    }
                ],
            }
        )
    )
    directory = load_directory(path)
    assert directory.source == "Our network list"
    assert [o.key for o in directory.options] == ["partner/tele"]


def test_malformed_directory_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"centers": []}))
    with pytest.raises(DirectoryError):
        load_directory(path)


def write(tmp_path: Path, centers: list[dict[str, object]]) -> Path:
    path = tmp_path / "centers.json"
    path.write_text(json.dumps({"source": "Test list", "date": "2026-12-01", "centers": centers}))
    return path


def test_intake_fields_come_from_the_program_or_else_its_center(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [
            {
                "id": "north",
                "name": "North Cancer Center",
                "state": "NY",
                "phone": "555-0100",
                "caveats": ["Referrals by a physician only."],
                "excludes": ["inpatient"],
                "programs": [
                    {
                        "id": "sarcoma",
                        "name": "Sarcoma second opinion",
                        "review": "both",
                        "diseases": ["Sarcoma", "bone tumors"],
                        "states": ["NY", "nj"],
                        "phone": "555-0199",
                        "fax": "555-0198",
                        "portal": "https://north.example/refer",
                        "email": "intake@north.example",
                        "turnaround": "about 10 business days",
                        "caveats": ["Slides must come from the originating lab."],
                        "excludes": ["active-treatment", "residents:ct"],
                        "fhir_endpoint": "https://fhir.north.example/r4",
                        "source": "North's referral page, 2026",
                    },
                    {"id": "general", "name": "General second opinion"},
                ],
            }
        ],
    )
    sarcoma, general = load_directory(path).options
    assert (sarcoma.phone, sarcoma.fax, sarcoma.email) == ("555-0199", "555-0198", "intake@north.example")
    assert sarcoma.portal == "https://north.example/refer"
    assert sarcoma.diseases == ("sarcoma", "bone")
    assert sarcoma.states == ("NY", "NJ")
    assert sarcoma.turnaround == "about 10 business days"
    assert sarcoma.caveats == ("Referrals by a physician only.", "Slides must come from the originating lab.")
    assert sarcoma.excludes == ("inpatient", "active-treatment", "residents:CT")
    assert sarcoma.fhir_endpoint == "https://fhir.north.example/r4"
    assert sarcoma.source == "North's referral page, 2026"
    # The center's contact and caveats stand for a program that states none of its own.
    assert (general.phone, general.fax, general.portal, general.email) == ("555-0100", "", "", "")
    assert general.diseases == () and general.states == () and general.turnaround == ""
    assert general.caveats == ("Referrals by a physician only.",)
    assert general.excludes == ("inpatient",)
    assert general.review == "both" and general.remote is False
    chosen = sarcoma.destination()
    assert (chosen.phone, chosen.fax, chosen.portal, chosen.email) == (
        "555-0199",
        "555-0198",
        "https://north.example/refer",
        "intake@north.example",
    )
    assert chosen.turnaround == "about 10 business days"
    assert chosen.caveats == ["Referrals by a physician only.", "Slides must come from the originating lab."]
    assert chosen.fhir_endpoint == "https://fhir.north.example/r4"


@pytest.mark.parametrize(
    ("program", "words"),
    [
        ({"review": "surgery"}, ["review", "surgery"]),
        ({"diseases": "breast"}, ["diseases", "list"]),
        ({"diseases": ["breats"]}, ["diseases", "breats"]),
        ({"states": ["Pennsylvania"]}, ["states", "Pennsylvania"]),
        ({"excludes": ["vegetarians"]}, ["excludes", "vegetarians"]),
        ({"excludes": ["residents:XX"]}, ["excludes", "residents:XX"]),
        ({"caveats": "Self-pay."}, ["caveats", "list"]),
        ({"portal": "javascript:alert(1)"}, ["portal", "https"]),
        ({"email": "intake.example"}, ["email", "intake.example"]),
        ({"phone": 5550100}, ["phone", "text"]),
        ({"remote": "yes"}, ["remote", "true or false"]),
    ],
)
def test_a_malformed_field_is_a_clear_error_naming_the_program(
    tmp_path: Path, program: dict[str, object], words: list[str]
) -> None:
    path = write(
        tmp_path,
        [{"id": "north", "name": "North", "programs": [{"id": "p1", "name": "Program one", **program}]}],
    )
    with pytest.raises(DirectoryError) as raised:
        load_directory(path)
    message = str(raised.value)
    assert "north/p1" in message
    assert all(w in message for w in words), message


@pytest.mark.parametrize(
    "document",
    [
        {"source": "x", "date": "2026-12-01", "centers": {"id": "north"}},
        {"source": "x", "date": "2026-12-01", "centers": [{"id": "north"}]},
        {
            "source": "x",
            "date": "2026-12-01",
            "centers": [{"id": "n", "name": "N", "programs": [{"id": "p"}]}],
        },
        {"source": "x", "date": "2026-12-01", "centers": ["north"]},
        ["not", "an", "object"],
    ],
)
def test_a_malformed_structure_is_a_clear_error(tmp_path: Path, document: object) -> None:
    path = tmp_path / "centers.json"
    path.write_text(json.dumps(document))
    with pytest.raises(DirectoryError, match="directory"):
        load_directory(path)


def test_unreadable_json_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "centers.json"
    path.write_text('{"source": "x",')
    with pytest.raises(DirectoryError, match="cannot be read"):
        load_directory(path)


def test_the_app_refuses_to_start_on_a_malformed_site_directory(tmp_path: Path) -> None:
    path = write(
        tmp_path, [{"id": "north", "name": "North", "programs": [{"id": "p1", "name": "P", "review": "x"}]}]
    )
    settings = app_settings("http://127.0.0.1:8000", tmp_path).model_copy(update={"packet_directory": path})
    with pytest.raises(DirectoryError, match="north/p1"):
        create_app(settings, Registry([]))

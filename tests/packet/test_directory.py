"""The bundled center directory and a site's replacement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartapp.packet.directory import BUNDLED, DirectoryError, load_directory


def test_bundled_directory_names_its_source_and_date() -> None:
    directory = load_directory()
    assert "cancercenters.cancer.gov" in directory.source
    assert directory.date


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

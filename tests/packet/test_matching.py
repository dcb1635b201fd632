"""Ranking the directory's programs for a packet: review type, tumor type, state, preference and
stated exclusions. The directory here is written for the tests; every expected order is worked
out by hand from the rules in smartapp/packet/matching.py's docstring."""

from __future__ import annotations

from typing import Any

import pytest

from smartapp.packet.directory import Directory, parse_directory
from smartapp.packet.matching import Needs, rank_options
from smartapp.packet.model import DiagnosisLine, Insurance, PatientInfo, ReferralPacket, TreatmentLine

SARCOMA = DiagnosisLine(text="Leiomyosarcoma of thigh", codes=["ICD-10-CM C49.22", "ICD-O-3 8890/3"])
BREAST = DiagnosisLine(text="Malignant neoplasm of left breast", codes=["ICD-10-CM C50.912"])
UNKNOWN = DiagnosisLine(text="Atypical spindle cell proliferation", codes=["SNOMED CT 1234567"])


def center(cid: str, state: str, *programs: dict[str, Any]) -> dict[str, Any]:
    return {"id": cid, "name": cid.title(), "state": state, "programs": list(programs)}


def directory() -> Directory:
    return parse_directory(
        {
            "source": "Test directory",
            "date": "2026-12-05",
            "centers": [
                {"id": "north", "name": "North", "state": "NY"},  # the implicit in-person option
                center(
                    "penn",
                    "PA",
                    {"id": "sarcoma", "name": "Sarcoma clinic", "review": "both", "diseases": ["sarcoma"]},
                    {"id": "breast", "name": "Breast clinic", "review": "clinical", "diseases": ["breast"]},
                ),
                center("slides", "", {"id": "p", "name": "Slides", "review": "pathology", "remote": True}),
                center(
                    "any",
                    "",
                    {"id": "c", "name": "Any", "review": "clinical", "remote": True, "diseases": ["all"]},
                ),
                center(
                    "bay",
                    "MA",
                    {
                        "id": "online",
                        "name": "Online",
                        "review": "clinical",
                        "remote": True,
                        "excludes": ["residents:MA", "inpatient"],
                    },
                ),
                center(
                    "rx",
                    "",
                    {
                        "id": "online",
                        "name": "Online",
                        "review": "clinical",
                        "remote": True,
                        "excludes": ["active-treatment"],
                    },
                ),
                center(
                    "jersey",
                    "NJ",
                    {
                        "id": "online",
                        "name": "Online",
                        "review": "clinical",
                        "remote": True,
                        "states": ["NJ"],
                    },
                ),
            ],
        }
    )


def packet(
    *,
    address: str,
    review: str,
    diagnoses: list[DiagnosisLine],
    treatment: list[TreatmentLine] | None = None,
    preference: str = "",
) -> ReferralPacket:
    return ReferralPacket.model_validate(
        {
            "created": "2026-12-05T09:00:00+00:00",
            "patient": PatientInfo(reference="Patient/p1", address=address).model_dump(),
            "insurance": Insurance(available=False).model_dump(),
            "review_type": review,
            "diagnoses": [d.model_dump() for d in diagnoses],
            "treatment_so_far": [t.model_dump() for t in treatment or []],
            "preference": preference,
        }
    )


def ranked(p: ReferralPacket) -> list[str]:
    return [m.option.key for m in rank_options(directory().options, Needs.of(p))]


def by_key(p: ReferralPacket) -> dict[str, Any]:
    return {m.option.key: m for m in rank_options(directory().options, Needs.of(p))}


def test_needs_are_read_from_the_packets_typed_content() -> None:
    p = packet(
        address="418 Conestoga Lane, Lancaster, PA 17601",
        review="both",
        diagnoses=[SARCOMA],
        treatment=[
            TreatmentLine(text="Doxorubicin", status="completed"),
            TreatmentLine(text="Ifosfamide", status="in-progress"),
        ],
    )
    needs = Needs.of(p)
    assert (needs.state, needs.review, needs.current_treatment) == ("PA", "both", "Ifosfamide (in-progress)")
    assert needs.tumor_types == ("sarcoma",) and needs.tumor_labels == ["sarcoma"]
    finished = packet(
        address="", review="clinical", diagnoses=[], treatment=[TreatmentLine(text="x", status="completed")]
    )
    assert Needs.of(finished).current_treatment == "" and Needs.of(finished).state == ""


def test_sarcoma_patient_in_pennsylvania_needing_both_reviews() -> None:
    p = packet(address="418 Conestoga Lane, Lancaster, PA 17601", review="both", diagnoses=[SARCOMA])
    assert ranked(p) == [
        "penn/sarcoma",  # both reviews, a sarcoma program, in the patient's state
        "north/in-person",  # both reviews, any tumor type, but in New York
        "slides/p",  # slides only; remote
        "any/c",  # clinical only; remote
        "bay/online",
        "rx/online",
        "penn/breast",  # clinical only and lists breast only
        "jersey/online",  # serves New Jersey residents only: last, with the reason
    ]
    matches = by_key(p)
    assert matches["penn/sarcoma"].fits == (
        "Reviews the pathology slides and gives the clinical opinion, as this packet asks",
        "Has a program for sarcoma",
        "In person in the patient's state (Pennsylvania)",
    )
    assert matches["north/in-person"].misfits == ("In person in New York; the patient lives in Pennsylvania",)
    assert matches["penn/breast"].misfits == (
        "Gives the clinical opinion only; the pathology slides need another review",
        "Lists breast cancer only",
    )
    assert matches["jersey/online"].excluded == ("Serves residents of New Jersey only",)
    assert matches["any/c"].fits[-2:] == ("Takes every tumor type", "Remote: the patient need not travel")
    assert matches["bay/online"].to_check == ("Not for inpatients: check the patient is not in hospital",)
    assert matches["rx/online"].to_check == (
        "Not for patients on active treatment; the record shows none going on",
    )
    assert not matches["bay/online"].excluded and not matches["rx/online"].excluded


def test_breast_patient_in_massachusetts_on_treatment_who_prefers_remote() -> None:
    p = packet(
        address="12 Elm Street\nBoston, Massachusetts 02115",
        review="clinical",
        diagnoses=[BREAST],
        treatment=[TreatmentLine(text="Paclitaxel", status="active")],
        preference="remote",
    )
    assert ranked(p) == [
        "penn/breast",  # clinical, a breast program (in person, far away)
        "any/c",  # clinical, every tumor type, remote as preferred
        "north/in-person",
        "penn/sarcoma",  # lists sarcoma only
        "slides/p",  # pathology only
        "bay/online",  # excluded: Massachusetts residents
        "rx/online",  # excluded: on active treatment
        "jersey/online",  # excluded: New Jersey residents only
    ]
    matches = by_key(p)
    assert "Remote, as the patient prefers" in matches["any/c"].fits
    assert matches["bay/online"].excluded == ("Not for residents of Massachusetts; the patient lives there",)
    assert matches["rx/online"].excluded == (
        "Excludes patients on active treatment; the record shows Paclitaxel (active)",
    )


def test_unknown_tumor_type_and_state_still_offer_every_program_by_review_type() -> None:
    p = packet(address="Paris, France", review="pathology", diagnoses=[UNKNOWN])
    assert Needs.of(p).tumor_types == () and Needs.of(p).state == ""
    assert ranked(p) == [
        "north/in-person",
        "penn/sarcoma",
        "slides/p",
        "penn/breast",  # clinical only from here on, in the directory's order
        "any/c",
        "bay/online",
        "rx/online",
        "jersey/online",  # not excluded: the patient's state is unknown
    ]
    matches = by_key(p)
    assert matches["penn/sarcoma"].to_check == (
        "Lists sarcoma: the packet's tumor type could not be worked out, so check",
    )
    assert matches["bay/online"].to_check == (
        "Not for residents of Massachusetts; the patient's state is not in the address",
        "Not for inpatients: check the patient is not in hospital",
    )
    assert matches["jersey/online"].to_check == (
        "Serves residents of New Jersey only; the patient's state is not in the address",
    )


@pytest.mark.parametrize(
    ("preference", "first"),
    [("center:north", "north/in-person"), ("in-person", "penn/sarcoma"), ("", "penn/sarcoma")],
)
def test_a_stated_preference_moves_its_programs_up(preference: str, first: str) -> None:
    p = packet(address="Lancaster, PA", review="both", diagnoses=[SARCOMA], preference=preference)
    matches = rank_options(directory().options, Needs.of(p))
    assert matches[0].option.key == first
    if preference.startswith("center:"):
        assert "The center the patient asked for" in matches[0].fits


def test_in_person_near_home_puts_remote_programs_after_in_person_ones() -> None:
    p = packet(address="Lancaster, PA", review="clinical", diagnoses=[UNKNOWN], preference="in-person")
    order = ranked(p)
    # Clinical programs: in Pennsylvania first, then New York in person, then remote ones.
    assert order[:5] == ["penn/sarcoma", "penn/breast", "north/in-person", "any/c", "bay/online"]


def test_an_unknown_preference_is_refused() -> None:
    with pytest.raises(ValueError, match="preference"):
        packet(address="", review="clinical", diagnoses=[], preference="anywhere")

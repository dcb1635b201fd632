"""The US state of a patient's address, as the matcher needs it."""

from __future__ import annotations

import pytest

from smartapp.packet.places import state_name, state_of, states


@pytest.mark.parametrize(
    ("address", "state"),
    [
        # As SecondLook builds it from a structured FHIR address.
        ("27 Willow Bend Court, Towson, MD 21204", "MD"),
        ("1190 Chestnut Avenue, Apt 3B, Trenton, NJ 08611", "NJ"),
        # Free text as EHRs hold it in Address.text.
        ("418 Conestoga Lane\nLancaster, Pennsylvania 17601\nUnited States", "PA"),
        ("Erie PA 16508-1234, USA", "PA"),
        ("Towson, Maryland", "MD"),
        ("Lancaster PA", "PA"),
        ("Indianapolis, in 46204", "IN"),
        ("Washington, D.C. 20001", "DC"),
        ("Washington, DC", "DC"),
        ("Seattle, Washington", "WA"),
        ("New York, New York", "NY"),
        ("San Juan, PR 00901", "PR"),
        ("Charleston, West Virginia 25301", "WV"),
    ],
)
def test_the_state_is_read_from_common_address_styles(address: str, state: str) -> None:
    assert state_of(address) == state


@pytest.mark.parametrize(
    "address",
    [
        "",
        "Paris, France",
        "Toronto, ON M5V 2T6",
        "123 Washington Street, Anytown",  # a street named after a state is not a state
        "12 Oak CT",  # a court, not Connecticut
        "Kansas City",
        "Portland, or",  # lower-case "or" is a word, not Oregon
    ],
)
def test_no_state_is_guessed_from_an_address_without_one(address: str) -> None:
    assert state_of(address) == ""


def test_the_table_has_the_states_dc_and_the_territories() -> None:
    assert len(states()) == 56
    assert state_name("MA") == "Massachusetts" and state_name("ZZ") == "ZZ"

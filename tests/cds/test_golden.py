"""Golden hook requests (tests/data/cds/<scenario>/request.json) -> cards.json, written by hand
from the trigger contract. Fields SecondLook controls (count, order, indicator, summary, source,
links, appContext) are compared exactly; engine sentences in `detail` by key terms."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cds.conftest import HOOK_TOKEN, Stack

DATA = Path(__file__).resolve().parents[1] / "data" / "cds"
SCENARIOS = sorted(p.name for p in DATA.iterdir() if (p / "request.json").exists())
CARD_KEYS = {"uuid", "summary", "indicator", "detail", "source", "overrideReasons", "links"}


def load(scenario: str, fhir_base: str) -> tuple[dict[str, Any], dict[str, Any]]:
    request = json.loads((DATA / scenario / "request.json").read_text().replace("{{FHIR_SERVER}}", fhir_base))
    expected = json.loads((DATA / scenario / "cards.json").read_text())
    return request, expected


def check_card(card: dict[str, Any], want: dict[str, Any], app_url: str) -> None:
    assert set(card) == CARD_KEYS
    uuid.UUID(card["uuid"])
    assert len(card["summary"]) < 140
    assert card["indicator"] == want["indicator"]
    if "summary" in want:
        assert card["summary"] == want["summary"]
    assert card["summary"].startswith(want.get("summary_prefix", ""))
    for term in want.get("summary_contains", []):
        assert term in card["summary"], term
    assert card["source"] == want["source"]
    links = json.loads(json.dumps(want["links"]).replace("{{APP}}", app_url))
    assert card["links"] == links
    for term in want["detail_contains"]:
        assert term in card["detail"], term
    assert all(reason["display"] for reason in card["overrideReasons"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_golden_scenario(stack: Stack, fake_fhir: Any, scenario: str) -> None:
    request, expected = load(scenario, stack.fhir_base)
    fake = fake_fhir(request["context"]["patientId"])
    response = stack.call(request)
    assert response.status_code == expected["status"], response.text
    if expected["status"] != 200:
        assert response.json()["resourceType"] == "OperationOutcome"
        text = json.dumps(response.json())
        for term in expected["outcome_contains"]:
            assert term in text, term
        assert fake.calls == []  # nothing was read without an allowed token
        return
    cards = response.json()["cards"]
    assert len(cards) == len(expected["cards"]), [c["summary"] for c in cards]
    for card, want in zip(cards, expected["cards"], strict=True):
        check_card(card, want, stack.url)
    assert len({c["uuid"] for c in cards}) == len(cards)
    # The hook's token went only to the fake FHIR server, and always as sent.
    assert all(auth == f"Bearer {HOOK_TOKEN}" for _, auth in fake.calls)
    if "prefetch" in request:
        assert not [path for path, _ in fake.calls if not path.startswith("/fhir/Binary/")]
    again = stack.call(request).json()["cards"]
    assert [c["uuid"] for c in again] == [c["uuid"] for c in cards]  # uuids are stable per hookInstance

"""Pure unit tests of the findings -> cards mapping."""

from __future__ import annotations

import json
from typing import Any

from smartapp.cds.cards import build_cards as build_cards_typed
from smartapp.findings import PatientResult

LAUNCH = "https://app.test/launch"


def build_cards(result: dict[str, Any], hook_instance: str, launch_url: str) -> list[dict[str, Any]]:
    """The cards for an engine result written here as JSON (validated into the typed result)."""
    return build_cards_typed(PatientResult.model_validate(result), hook_instance, launch_url)


def finding(trigger: str, urgency: str = "routine", evidence: int = 1) -> dict[str, Any]:
    return {
        "trigger": trigger,
        "urgency": urgency,
        "summary": f"{trigger} summary",
        "rationale": "Because.",
        "action": "clinical-second-opinion",
        "evidence": [
            {
                "reference": f"DiagnosticReport/r{i}",
                "path": "DiagnosticReport.conclusion",
                "text": f"text {i}",
            }
            for i in range(evidence)
        ],
    }


def result(
    *findings: dict[str, Any], time_critical: dict[str, Any] | None = None, issues: Any = ()
) -> dict[str, Any]:
    return {
        "patient": "Patient/p",
        "time_critical": time_critical,
        "findings": list(findings),
        "data_issues": list(issues),
    }


def test_no_findings_no_cards() -> None:
    assert build_cards(result(), "hook-1", LAUNCH) == []


def test_findings_are_grouped_and_ordered_by_urgency() -> None:
    cards = build_cards(
        result(
            finding("rare-cancer"),
            finding("uncertain-pathology"),
            finding("not-responding", "expedite"),
            finding("patient-request"),
        ),
        "hook-1",
        LAUNCH,
    )
    assert [c["summary"] for c in cards] == [
        "Expedited second opinion advised on the disease course: disease not responding.",
        "Second opinion advised on the diagnosis: rare cancer; uncertain pathology.",
        "Second opinion advised on the patient's request: patient asks for a second opinion.",
    ]
    assert [c["indicator"] for c in cards] == ["warning", "info", "info"]
    assert json.loads(cards[1]["links"][0]["appContext"]) == {
        "findings": ["rare-cancer", "uncertain-pathology"]
    }
    assert (
        cards[1]["source"]["label"]
        == "SecondLook (RARECARE/JARC rare cancer lists; pathology uncertainty terms)"
    )


def test_time_critical_card_comes_first_and_is_critical() -> None:
    urgent = {
        "reason": (
            "Newly diagnosed diffuse large B-cell lymphoma: treatment must not wait for a second opinion."
        ),
        "advice": (
            "Start treatment as planned; "
            "send the biopsy blocks for expert hematopathology review in parallel."
        ),
        "conditions": ["newly diagnosed diffuse large B-cell lymphoma"],
        "evidence": [{"reference": "Condition/c", "path": "Condition.code", "text": "DLBCL"}],
    }
    cards = build_cards(
        result(finding("discordant-findings", "expedite"), time_critical=urgent), "hook-1", LAUNCH
    )
    assert [c["indicator"] for c in cards] == ["critical", "warning"]
    assert (
        cards[0]["summary"]
        == "Oncological emergency, do not delay treatment: newly diagnosed diffuse large B-cell lymphoma."
    )
    assert '"DLBCL"' in cards[0]["detail"] and "Condition/c" not in cards[0]["detail"]


def test_uuids_are_stable_per_hook_instance_and_group() -> None:
    first = build_cards(result(finding("rare-cancer"), finding("major-treatment")), "hook-1", LAUNCH)
    again = build_cards(result(finding("rare-cancer"), finding("major-treatment")), "hook-1", LAUNCH)
    other = build_cards(result(finding("rare-cancer"), finding("major-treatment")), "hook-2", LAUNCH)
    assert [c["uuid"] for c in first] == [c["uuid"] for c in again]
    assert {c["uuid"] for c in first}.isdisjoint({c["uuid"] for c in other})


def test_summary_stays_under_140_characters() -> None:
    everything = [
        finding(t)
        for t in ("rare-cancer", "uncertain-pathology", "discordant-findings", "incomplete-biomarker")
    ]
    urgent = {
        "reason": (
            "Acute lymphoblastic leukaemia not in remission; malignant spinal cord compression; "
            "superior vena cava syndrome in a patient with cancer: an oncological emergency."
        ),
        "advice": "",
        "evidence": [],
    }
    for card in build_cards(result(*everything, time_critical=urgent), "h", LAUNCH):
        assert len(card["summary"]) < 140, card["summary"]


def test_detail_is_markdown_with_limited_evidence_and_no_html() -> None:
    noisy = finding("rare-cancer", evidence=6)
    noisy["evidence"][0]["text"] = "<script>alert(1)</script>\n\n# not a heading"
    card = build_cards(
        result(
            noisy,
            issues=[
                {"resource": "Binary", "reason": "not read"},
                {"resource": "Observation/o1", "reason": "invalid"},
            ],
        ),
        "h",
        LAUNCH,
    )[0]
    assert "<script>" not in card["detail"] and "\n# not" not in card["detail"]
    assert "- and 2 more in SecondLook" in card["detail"]
    assert "_Not checked:_ Binary could not be read" in card["detail"]
    assert "Observation/o1" not in card["detail"]


def test_links_launch_the_app_and_override_reasons_have_display() -> None:
    card = build_cards(result(finding("major-treatment")), "h", LAUNCH)[0]
    assert card["links"] == [
        {
            "label": "Open SecondLook",
            "url": LAUNCH,
            "type": "smart",
            "appContext": '{"findings":["major-treatment"]}',
        }
    ]
    assert card["overrideReasons"] and all(r["display"] and r["code"] for r in card["overrideReasons"])

"""The demo charts' stories hold on any day: dates move together, in resources and in text attachments."""

from __future__ import annotations

import base64
from datetime import date

from demo_ehr.date_shift import FIXTURE_DAY, days_to, shift_resource


def test_every_date_moves_by_the_days_since_the_fixture_day() -> None:
    days = days_to(date(2027, 3, 3))
    report = {
        "resourceType": "DiagnosticReport",
        "effectiveDateTime": "2026-11-18T09:00:00-05:00",
        "issued": "2026-11-18",
        "presentedForm": [
            {
                "contentType": "text/plain",
                "data": base64.b64encode(b"CT 11/18/2026: new liver lesions (prior 2026-08-01).").decode(),
            }
        ],
        "note": [{"text": "Surgery on 11/28/2026"}],
        "valueInteger": 5,
    }
    moved = shift_resource(report, days)
    assert days == 98
    assert moved["effectiveDateTime"] == "2027-02-24T09:00:00-05:00" and moved["issued"] == "2027-02-24"
    assert (
        base64.b64decode(moved["presentedForm"][0]["data"])
        == b"CT 02/24/2027: new liver lesions (prior 2026-11-07)."
    )
    assert moved["note"][0]["text"] == "Surgery on 03/06/2027" and moved["valueInteger"] == 5
    assert report["issued"] == "2026-11-18"  # the fixture itself is not changed


def test_no_shift_on_the_fixture_day_and_pdfs_are_left_alone() -> None:
    pdf = {"contentType": "application/pdf", "data": base64.b64encode(b"%PDF 11/18/2026").decode()}
    assert shift_resource(pdf, days_to(FIXTURE_DAY)) == pdf
    assert shift_resource(pdf, 10)["data"] == pdf["data"]


def test_the_demo_ehr_serves_shifted_charts() -> None:
    from demo_ehr import DemoEhrConfig
    from demo_ehr.app import load_resources

    plain = load_resources(DemoEhrConfig(include_large_patient=False))
    later = load_resources(DemoEhrConfig(include_large_patient=False, stories_on=date(2026, 12, 25)))
    before = plain.get("Condition", "aml-cond-primary")
    after = later.get("Condition", "aml-cond-primary")
    assert before is not None and after is not None
    assert (before["onsetDateTime"], after["onsetDateTime"]) == ("2026-11-20", "2026-12-20")

"""The per-launch results cache keeps few records unpacked: the others as compressed JSON."""

from __future__ import annotations

from launch.fetch import Gap
from smartapp.chart_reader import ChartSnapshot
from smartapp.findings import PatientResult
from smartapp.web.results import HotSet, LaunchResults


def results(patient_id: str) -> LaunchResults:
    resources = [
        {"resourceType": "Patient", "id": patient_id, "name": [{"family": "Ortiz", "given": ["Ana"]}]},
        {"resourceType": "Observation", "id": "o1", "valueQuantity": {"value": 2.35, "unit": "ng/mL"}},
    ]
    gaps = [Gap("allergies", "AllergyIntolerance", "fetch_failed", "The EHR did not answer.")]
    snapshot = ChartSnapshot(patient_id, resources, gaps, {"Binary/b1": (b"%PDF-1.7", "application/pdf")})
    return LaunchResults(snapshot, PatientResult(patient=f"Patient/{patient_id}"))


def test_a_released_snapshot_is_unpacked_again_unchanged() -> None:
    kept = results("p1")
    before = kept.snapshot
    kept.release()
    after = kept.snapshot
    assert after is not before
    assert after == before  # resources, gaps, attachments and the patient, value for value
    assert kept.snapshot is after  # unpacked once, then kept until released again


def test_only_the_most_recently_used_stay_unpacked() -> None:
    hot = HotSet(limit=2)
    first, second, third = results("p1"), results("p2"), results("p3")
    snapshots = [r.snapshot for r in (first, second, third)]
    for r in (first, second, first, third):  # first used again: second is the coldest
        hot.touch(r)
    assert first.snapshot is snapshots[0]
    assert third.snapshot is snapshots[2]
    assert second.snapshot is not snapshots[1] and second.snapshot == snapshots[1]

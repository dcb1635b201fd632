"""The demo EHR's patient index: a search by patient looks only at that patient's resources and
finds exactly what a scan of every resource of the type would find."""

from __future__ import annotations

from typing import Any

from demo_ehr.resource_store import ResourceStore
from demo_ehr.search import matcher

Resource = dict[str, Any]


def _chart(pid: str, subject: str) -> list[Resource]:
    return [
        {"resourceType": "Patient", "id": pid},
        {"resourceType": "Observation", "id": f"{pid}-o1", "subject": {"reference": subject}},
        {
            "resourceType": "Observation",
            "id": f"{pid}-o2",
            "subject": {"reference": subject},
            "effectiveDateTime": "2026-03-01",
        },
        {"resourceType": "Coverage", "id": f"{pid}-c1", "beneficiary": {"reference": subject}},
        {"resourceType": "Observation", "id": f"{pid}-group", "subject": {"reference": "Group/g1"}},
    ]


def _store() -> ResourceStore:
    store = ResourceStore()
    store.add_patient_bundle(_chart("a", "Patient/a"), None)
    store.add_patient_bundle(_chart("b", "https://ehr.example.org/fhir/Patient/b"), None)
    return store


def _ids(resources: list[Resource]) -> list[str]:
    return [str(r["id"]) for r in resources]


def test_a_patients_compartment_holds_their_resources_in_load_order() -> None:
    store = _store()
    assert _ids(store.of_patients("Observation", ["a"])) == ["a-o1", "a-o2"]
    assert _ids(store.of_patients("Observation", ["b"])) == ["b-o1", "b-o2"]  # absolute reference
    assert _ids(store.of_patients("Coverage", ["b"])) == ["b-c1"]  # by beneficiary
    assert _ids(store.of_patients("Observation", ["a", "b"])) == ["a-o1", "a-o2", "b-o1", "b-o2"]
    assert store.of_patients("Observation", ["nobody"]) == []
    assert store.of_patients("Condition", ["a"]) == []


def test_the_index_finds_what_a_scan_of_every_resource_finds() -> None:
    from demo_ehr.fhir_service import _candidates

    class _Ehr:
        resources = _store()

    searches = [
        [("patient", "a")],
        [("subject", "Patient/b")],
        [("patient", "a,b"), ("date", "ge2026-01-01")],
        [("patient", "b"), ("date", "lt2026-01-01")],
        [("subject", "Group/g1")],
        [("patient", "a"), ("patient", "b")],  # both must hold: nothing
    ]
    for params in searches:
        scanned = [r for r in _Ehr.resources.of_type("Observation") if matcher(params)(r)]
        candidates, rest = _candidates(_Ehr(), "Observation", params)  # type: ignore[arg-type]
        assert _ids([r for r in candidates if matcher(rest)(r)]) == _ids(scanned), params
    assert _ids([r for r in _Ehr.resources.of_type("Observation") if matcher([("patient", "a")])(r)]) == [
        "a-o1",
        "a-o2",
    ]

"""The synthetic population: deterministic, a realistic mix, oncology patients in the clinic group."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import date

from demo_ehr.groups import ONCOLOGY_CLINIC_ID, add_demo_groups, group_members
from demo_ehr.resource_store import ResourceStore, load_patients_dir
from demo_ehr.synthetic import add_population, build_population, build_synthetic_patient

from .conftest import DATA


def test_deterministic_and_stable_per_patient() -> None:
    first = [patient.resources for patient in build_population(25, seed=7)]
    again = [patient.resources for patient in build_population(25, seed=7)]
    assert json.dumps(first) == json.dumps(again)
    # Patient i does not depend on the population size.
    assert json.dumps(build_synthetic_patient(11, seed=7).resources) == json.dumps(first[11])
    other_seed = [patient.resources for patient in build_population(25, seed=8)]
    assert json.dumps(other_seed) != json.dumps(first)


def test_mix_of_patients() -> None:
    population = list(build_population(200))
    cancer = [patient for patient in population if patient.has_cancer]
    others = [patient for patient in population if not patient.has_cancer]
    assert 0.08 <= len(cancer) / len(population) <= 0.25
    ids = [(res["resourceType"], res["id"]) for patient in population for res in patient.resources]
    assert len(ids) == len(set(ids)), "resource ids are unique across the population"
    for patient in others:
        kinds = Counter(res["resourceType"] for res in patient.resources)
        assert 8 <= len(patient.resources) <= 150
        assert kinds["Patient"] == 1 and kinds["Condition"] >= 1 and kinds["Encounter"] >= 2
        assert kinds["Claim"] == kinds["ExplanationOfBenefit"] == kinds["Encounter"]
        assert kinds["DocumentReference"] >= 1
        assert not any(res["resourceType"] == "Condition" and res["code"]["coding"][0]["code"].startswith("C")
                       for res in patient.resources)  # fmt: skip
    for patient in cancer:
        kinds = Counter(res["resourceType"] for res in patient.resources)
        assert len(patient.resources) >= 380
        assert kinds["Binary"] >= 4
        for res in patient.resources:
            if res["resourceType"] == "DiagnosticReport":
                assert res.get("conclusion") or res.get("presentedForm"), res["id"]
                assert res["text"]["div"]
            if res["resourceType"] == "DocumentReference":
                assert base64.b64decode(res["content"][0]["attachment"]["data"]).strip()
    with_ish = sum(any(res["id"].endswith("-ish") for res in patient.resources) for patient in cancer)
    assert 0 < with_ish < len(cancer)


def test_oncology_patients_join_the_clinic_group() -> None:
    store = ResourceStore()
    load_patients_dir(store, DATA)
    fixture_patients = list(store.oncology_patients)
    with_cancer = add_population(store, 60, seed=3)
    clinic, board = add_demo_groups(store, date(2026, 12, 5))
    members = group_members(clinic)
    synthetic_cancer = [patient.patient_id for patient in build_population(60, seed=3) if patient.has_cancer]
    assert with_cancer == len(synthetic_cancer) > 0
    assert members == fixture_patients + synthetic_cancer
    assert clinic["id"] == ONCOLOGY_CLINIC_ID and clinic["quantity"] == len(members)
    assert set(group_members(board)) <= set(members)
    # Synthetic patients are served but not listed on the launch page.
    assert store.get("Patient", "syn-00000") is not None
    assert all(not item.patient_id.startswith("syn-") for item in store.listings)

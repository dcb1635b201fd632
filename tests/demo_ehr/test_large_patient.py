"""The synthetic benchmark chart: size, determinism, content, and serving it over FHIR."""

from __future__ import annotations

import base64
import json
from collections import Counter

import httpx2
from demo_ehr.large_patient import build_large_patient

from .conftest import REDIRECT_URI, run_demo_ehr
from .smart_flow import ehr_launch_token


def test_size_and_mix_of_resources() -> None:
    chart = build_large_patient()
    assert len(chart) == 2000
    assert chart[0]["resourceType"] == "Patient" and chart[0]["id"] == "bench-large"
    kinds = Counter(res["resourceType"] for res in chart)
    assert kinds["Observation"] >= 1200
    assert 250 <= kinds["DiagnosticReport"] <= 450
    assert kinds["Binary"] == 50
    assert kinds["Coverage"] == 1
    for kind in ("Condition", "Procedure", "MedicationRequest", "MedicationAdministration", "ServiceRequest",
                 "CarePlan", "DocumentReference", "Encounter"):  # fmt: skip
        assert kinds[kind] > 0, kind
    ids = [(res["resourceType"], res["id"]) for res in chart]
    assert len(set(ids)) == len(ids)


def test_deterministic_and_sizable() -> None:
    assert json.dumps(build_large_patient()) == json.dumps(build_large_patient())
    small = build_large_patient(n_resources=600, n_pathology=10)
    assert len(small) == 600
    assert Counter(res["resourceType"] for res in small)["Binary"] == 10


def test_pathology_reports_point_at_binaries_with_narrative() -> None:
    chart = build_large_patient()
    binaries = {res["id"]: res for res in chart if res["resourceType"] == "Binary"}
    pathology = [
        res
        for res in chart
        if res["resourceType"] == "DiagnosticReport" and res["category"][0]["coding"][0]["code"] == "LP7839-6"
    ]
    assert len(pathology) == 50
    types = set()
    for report in pathology:
        url = report["presentedForm"][0]["url"]
        binary = binaries[url.removeprefix("Binary/")]
        types.add(binary["contentType"])
        assert "DIAGNOSIS" in base64.b64decode(binary["data"]).decode()
    assert types == {"text/plain", "text/html"}
    texts = [base64.b64decode(binaries[r["presentedForm"][0]["url"][7:]]["data"]).decode() for r in pathology]
    assert sum("HER2 2+ (equivocal)" in text for text in texts) == 1
    assert not any("ISH" in text for text in texts)  # no in situ hybridisation result anywhere
    references = {ref["reference"] for res in chart for ref in [res.get("subject") or {}] if ref}
    assert references == {"Patient/bench-large"}


def test_large_patient_is_served_and_paged() -> None:
    with run_demo_ehr(include_large_patient=True, patients_dir=None) as ehr, httpx2.Client() as client:
        token = ehr_launch_token(client, ehr.base_url, ehr.fhir_base, REDIRECT_URI, "bench-large")
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        bundle = client.get(
            f"{ehr.fhir_base}/DiagnosticReport",
            params={"patient": "bench-large", "category": "http://loinc.org|LP7839-6", "_count": 100},
            headers=headers,
        ).json()
        assert bundle["total"] == 50
        first = bundle["entry"][0]["resource"]["presentedForm"][0]["url"]
        raw = client.get(f"{ehr.fhir_base}/{first}", headers={**headers, "Accept": "*/*"})
        assert raw.status_code == 200 and b"DIAGNOSIS" in raw.content
        labs = client.get(
            f"{ehr.fhir_base}/Observation", params={"patient": "bench-large", "_count": 100}, headers=headers
        ).json()
        assert labs["total"] > 1200
        assert len(labs["entry"]) == 100

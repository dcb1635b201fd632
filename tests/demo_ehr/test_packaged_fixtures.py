"""The packaged demo patients load into the default demo EHR and are internally consistent."""

from __future__ import annotations

import json

from demo_ehr import DemoEhrConfig, create_demo_ehr
from demo_ehr.config import PACKAGED_PATIENTS_DIR


def test_every_index_entry_is_listed_and_binary_links_resolve() -> None:
    app = create_demo_ehr(DemoEhrConfig(include_large_patient=False))
    store = app.state.demo_ehr.resources
    index_path = PACKAGED_PATIENTS_DIR / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else []
    listed = [item.patient_id for item in store.listings]
    assert listed[: len(index)] == [entry["patient_id"] for entry in index]
    for report in store.of_type("DiagnosticReport"):
        for form in report.get("presentedForm", []):
            url = str(form.get("url", ""))
            if url:
                binary_id = url.rsplit("Binary/", 1)[-1]
                assert store.get("Binary", binary_id) is not None, url

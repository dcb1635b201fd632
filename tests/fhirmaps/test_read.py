import ast
import base64
from datetime import date
from pathlib import Path

from fhirmaps import codes, read
from fhirmaps.read import attachments_to_fetch, read_records
from tests.fhirmaps.builders import bundle, condition, patient, report

AS_OF = date(2026, 3, 1)


def test_invalid_resource_becomes_data_issue_and_rest_still_counts() -> None:
    broken = condition("bad", "C49.A2", "GIST")
    broken["onsetDateTime"] = "early 2026"  # not a FHIR dateTime: invalid R4B, but the rest is readable
    good = condition("c1", "C45.0", "Mesothelioma of pleura")
    unknown = {"resourceType": "MadeUpThing", "id": "x", "subject": {"reference": "Patient/p1"}}
    [record] = read_records([bundle(patient(), broken, good, unknown)], as_of=AS_OF)
    assert record.data_issues[0]["resource"] == "Condition/bad"
    assert "onsetDateTime" in record.data_issues[0]["reason"]
    assert len(record.data_issues) == 1
    assert {d.source.reference for d in record.diagnoses} == {"Condition/bad", "Condition/c1"}


def test_a_url_that_is_not_text_is_a_data_issue_not_a_failed_record() -> None:
    # fhir.resources' URL check calls a string method on whatever it gets: with a number or a
    # boolean it raised AttributeError, and the whole record failed to read.
    good = condition("c1", "C49.A2", "GIST")
    notes = [
        {
            "resourceType": "DocumentReference",
            "id": f"d{n}",
            "status": "current",
            "subject": {"reference": "Patient/p1"},
            "content": [{"attachment": {"contentType": "text/plain", "url": wrong}}],
        }
        for n, wrong in enumerate((42, True))
    ]
    [record] = read_records([bundle(patient(), good, *notes)], as_of=AS_OF)
    wrong_type = "not valid FHIR R4B: an element holds a value of the wrong type"
    assert [i["resource"] for i in record.data_issues if i["reason"] == wrong_type] == [
        "DocumentReference/d0",
        "DocumentReference/d1",
    ]
    assert {d.source.reference for d in record.diagnoses} == {"Condition/c1"}


def test_resources_are_grouped_by_patient_with_urn_uuid_references() -> None:
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:aaa", "resource": {"resourceType": "Patient", "id": "pa"}},
            {"fullUrl": "urn:uuid:bbb", "resource": {"resourceType": "Patient", "id": "pb"}},
            {
                "fullUrl": "urn:uuid:c1",
                "resource": condition("c1", "C45.0", "Mesothelioma", pid="x")
                | {"subject": {"reference": "urn:uuid:bbb"}},
            },
        ],
    }
    records = read_records([transaction], as_of=AS_OF)
    assert [r.patient for r in records] == ["Patient/pa", "Patient/pb"]
    assert records[1].diagnoses[0].source.reference == "Condition/c1"
    assert records[0].diagnoses == []


def test_history_and_family_codes_are_excluded_from_current_diagnoses() -> None:
    [record] = read_records(
        [bundle(patient(), condition("z", "Z85.3", "Personal history of malignant neoplasm of breast"))],
        as_of=AS_OF,
    )
    assert record.diagnoses == []
    assert record.excluded_diagnoses[0].source.reference == "Condition/z"


def test_attachments_to_fetch_skips_inline_and_binary_and_dedupes() -> None:
    dr = report("r1", "x")
    dr["presentedForm"] = [
        {"contentType": "application/pdf", "url": "https://ehr/doc/1"},
        {"contentType": "text/plain", "url": "Binary/b1"},
    ]
    doc = {
        "resourceType": "DocumentReference",
        "id": "d1",
        "status": "current",
        "subject": {"reference": "Patient/p1"},
        "content": [{"attachment": {"contentType": "application/pdf", "url": "https://ehr/doc/1"}}],
    }
    binary = {
        "resourceType": "Binary",
        "id": "b1",
        "contentType": "text/plain",
        "data": base64.b64encode(b"FINAL DIAGNOSIS: GIST").decode(),
    }
    assert attachments_to_fetch([bundle(patient(), dr, doc, binary)]) == [
        ("https://ehr/doc/1", "application/pdf")
    ]


def test_same_attachment_url_is_read_once() -> None:
    url = "Binary/b1"
    dr = report("r1", "")
    dr["presentedForm"] = [{"contentType": "text/plain", "url": url}]
    doc = {
        "resourceType": "DocumentReference",
        "id": "d1",
        "status": "current",
        "subject": {"reference": "Patient/p1"},
        "type": {"coding": [{"system": "http://loinc.org", "code": "11526-1"}]},
        "content": [{"attachment": {"contentType": "text/plain", "url": url}}],
    }
    binary = {
        "resourceType": "Binary",
        "id": "b1",
        "contentType": "text/plain",
        "data": base64.b64encode(b"FINAL DIAGNOSIS:\nStomach: Gastrointestinal stromal tumor.").decode(),
    }
    [record] = read_records([bundle(patient(), dr, doc, binary)], as_of=AS_OF)
    assert [d.source.reference for d in record.diagnoses] == ["DiagnosticReport/r1"]


def test_missing_attachment_is_reported() -> None:
    dr = report("r1", "")
    dr["presentedForm"] = [{"contentType": "application/pdf", "url": "https://ehr/doc/9"}]
    [record] = read_records([bundle(patient(), dr)], as_of=AS_OF)
    assert any("not available" in i["reason"] for i in record.data_issues)


def test_every_code_file_names_its_source_and_date() -> None:
    for name in codes.CODE_FILES:
        data = codes.load(name)
        assert data["source"].strip(), name
        date.fromisoformat(data["date"])


def test_pathology_panel_history_observation_is_not_a_diagnosis() -> None:
    history = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "22636-5"}]},
        "valueString": "Enlarging neck mass; clinical concern is mantle cell lymphoma versus reactive node.",
    }
    final = {
        "resourceType": "Observation",
        "id": "o2",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "22637-3"}]},
        "valueString": (
            "Lymph node, left neck, excision: Follicular lymphoma, grade 1-2 of 3, with a follicular pattern."
        ),
    }
    [record] = read_records([bundle(patient(), history, final)], as_of=AS_OF)
    assert [d.entity.id for d in record.diagnoses if d.entity] == ["fl"]


def test_condition_stage_and_coverage_are_kept() -> None:
    breast = condition("c1", "C50.912", "Malignant neoplasm of left female breast")
    breast["stage"] = [{"summary": {"text": "Stage IV"}}]
    coverage = {
        "resourceType": "Coverage",
        "id": "cov1",
        "status": "active",
        "beneficiary": {"reference": "Patient/p1"},
        "payor": [{"display": "Medicare"}],
        "class": [{"type": {"text": "plan"}, "value": "PartB", "name": "Original Medicare Part B"}],
    }
    [record] = read_records([bundle(patient(), breast, coverage)], as_of=AS_OF)
    assert record.diagnoses[0].stage == "Stage IV"
    assert record.coverage[0].text == "Medicare | Original Medicare Part B"


def test_single_patient_resource_without_subject_is_read_with_a_data_issue() -> None:
    orphan = condition("c1", "C45.0", "Mesothelioma of pleura")
    del orphan["subject"]
    [record] = read_records([bundle(patient(), orphan)], as_of=AS_OF)
    assert [d.source.reference for d in record.diagnoses] == ["Condition/c1"]
    assert any(
        i["resource"] == "Condition/c1" and "no patient reference" in i["reason"] for i in record.data_issues
    )


def test_duplicate_resources_are_read_once() -> None:
    broken = condition("c1", "C45.0", "Mesothelioma of pleura") | {"onsetDateTime": "soon"}
    [record] = read_records([bundle(patient(), broken, broken)], as_of=AS_OF)
    assert len(record.diagnoses) == 1
    assert len(record.data_issues) == 1


def test_another_patients_resource_in_a_one_patient_input_is_named_not_read() -> None:
    from fhirmaps.read import read_records
    from tests.fhirmaps.builders import condition, patient

    stray = condition("c9", "C92.00", "Acute myeloblastic leukemia", pid="elsewhere")
    [record] = read_records(
        [patient(), condition("c1", "C50.911", "Breast cancer"), stray], as_of=date(2026, 3, 1)
    )
    assert record.patient == "Patient/p1"
    assert [d.source.reference for d in record.diagnoses] == ["Condition/c1"]
    assert {
        "resource": "Condition/c9",
        "reason": "refers to Patient/elsewhere, which is not in the input; not read as this patient's data",
    } in record.data_issues


def test_a_patient_missing_from_a_population_input_is_still_read_and_flagged() -> None:
    from fhirmaps.read import read_records
    from tests.fhirmaps.builders import condition, patient

    records = read_records(
        [patient("a"), patient("b"), condition("c1", "C50.911", "Breast cancer", pid="gone")],
        as_of=date(2026, 3, 1),
    )
    gone = next(r for r in records if r.patient == "Patient/gone")
    assert [d.source.reference for d in gone.diagnoses] == ["Condition/c1"]
    assert (
        gone.data_issues[0]["resource"] == "Patient/gone"
        and "not in the input" in gone.data_issues[0]["reason"]
    )


def test_a_generated_narrative_is_not_read_as_report_text() -> None:
    from fhirmaps.read import read_records
    from tests.fhirmaps.builders import patient, report

    table = (
        '<div xmlns="http://www.w3.org/1999/xhtml">'
        "<table><tr><td>Atypical cells, suspicious for carcinoma</td></tr></table></div>"
    )
    generated = dict(report("r1", "", date="2026-01-15"), text={"status": "generated", "div": table})
    authored = dict(report("r2", "", date="2026-01-15"), text={"status": "additional", "div": table})
    for item in (generated, authored):
        item.pop("presentedForm", None)
    [record] = read_records([patient(), generated, authored], as_of=date(2026, 3, 1))
    texts = {r.reference: r.text for r in record.texts}
    assert "suspicious" not in texts["DiagnosticReport/r1"]
    assert "suspicious for carcinoma" in texts["DiagnosticReport/r2"]


def test_snomed_only_diagnoses_map_to_their_cancer() -> None:
    from fhirmaps.read import read_records
    from tests.fhirmaps.builders import SNOMED, condition, patient

    cases = {
        "408643008": "breast-carcinoma",
        "353431000119107": "breast-carcinoma",
        "126906006": "prostate-adenocarcinoma",
        "424132000": "nsclc-nos",
        "67841000119103": "sclc",
        "93761005": "colorectal",
        "277571004": "all",
    }
    for code, entity in cases.items():
        [record] = read_records([patient(), condition("c1", code, "", system=SNOMED)], as_of=date(2026, 3, 1))
        [diagnosis] = record.diagnoses
        assert diagnosis.entity is not None and diagnosis.entity.id == entity, code


def test_a_suspected_cancer_situation_is_not_a_confirmed_diagnosis() -> None:
    from fhirmaps.read import read_records
    from tests.fhirmaps.builders import SNOMED, condition, patient

    [record] = read_records(
        [patient(), condition("c1", "162573006", "Suspected lung cancer (situation)", system=SNOMED)],
        as_of=date(2026, 3, 1),
    )
    [diagnosis] = record.diagnoses
    assert diagnosis.uncertain


def test_metastasis_from_prostate_is_a_secondary_prostate_cancer() -> None:
    from fhirmaps.read import read_records
    from tests.fhirmaps.builders import SNOMED, condition, patient

    [record] = read_records(
        [
            patient(),
            condition("c1", "314994000", "Metastasis from malignant tumor of prostate", system=SNOMED),
        ],
        as_of=date(2026, 3, 1),
    )
    [diagnosis] = record.diagnoses
    assert (
        diagnosis.secondary
        and diagnosis.entity is not None
        and diagnosis.entity.id == "prostate-adenocarcinoma"
    )


def test_a_drug_sent_as_an_rxnorm_code_alone_is_named_and_counted_as_anticancer() -> None:
    from fhirmaps.read import read_records
    from tests.fhirmaps.builders import patient

    order = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "authoredOn": "2026-01-05",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1547545"}]
        },
    }
    [record] = read_records([patient(), order], as_of=date(2026, 3, 1))
    [action] = record.activities
    assert (action.name, action.antineoplastic) == ("pembrolizumab", True)


def _types_map_dispatches_on() -> set[str]:
    """The resource types `_map` compares `rtype` with: `rtype == "X"` and `rtype in _NAME`."""
    module = ast.parse(Path(read.__file__).read_text(encoding="utf-8"))
    [function] = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "_map"]
    found: set[str] = set()
    for node in ast.walk(function):
        if not (
            isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "rtype"
        ):
            continue
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Eq) and isinstance(right, ast.Constant):
                found.add(right.value)
            elif isinstance(op, ast.In) and isinstance(right, ast.Name):
                found.update(getattr(read, right.id))
            else:
                raise AssertionError(
                    f"_map compares rtype in a way this test does not read: {ast.unparse(node)}"
                )
    return found


def test_patient_types_are_exactly_the_types_map_reads() -> None:
    # PATIENT_TYPES is what the read plan and the screening read list are checked against.
    assert _types_map_dispatches_on() == read.PATIENT_TYPES

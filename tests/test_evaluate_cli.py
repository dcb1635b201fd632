"""`secondlook evaluate` end to end through the CLI entry point, plus engine data-issue behaviour."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from smartapp.cli.main import main
from smartapp.engine import Unavailable, evaluate_resources
from tests.fhirmaps.builders import bundle, condition, patient


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_bundle_file_prints_the_json_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _write(
        tmp_path / "b.json",
        bundle(
            patient(), condition("c1", "C92.00", "Acute myeloblastic leukemia, not having achieved remission")
        ),
    )
    assert main(["evaluate", str(source), "--as-of", "2026-03-01"]) == 0
    document = json.loads(capsys.readouterr().out)
    [entry] = document["patients"]
    assert entry["patient"] == "Patient/p1"
    assert entry["time_critical"]["advice"].startswith(
        "Start induction without waiting for an outside opinion"
    )
    assert [f["trigger"] for f in entry["findings"]] == ["rare-cancer"]
    assert entry["findings"][0]["urgency"] == "expedite"
    assert set(entry["findings"][0]["evidence"][0]) >= {"reference", "path", "text"}
    assert entry["data_issues"] == []


def test_ndjson_folder_with_two_patients_and_an_invalid_resource(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    bad = condition("bad", "C45.0", "Mesothelioma", pid="p2") | {"onsetDateTime": "sometime"}
    (folder / "Patient.ndjson").write_text(
        "\n".join(json.dumps(p) for p in (patient("p1"), patient("p2"))) + "\n"
    )
    (folder / "Condition.ndjson").write_text(
        "\n".join(json.dumps(c) for c in (condition("c1", "C49.A0", "GIST", pid="p1"), bad)) + "\n"
    )
    assert main(["evaluate", str(folder), "--as-of", "2026-03-01", "--format", "json"]) == 0
    patients = {p["patient"]: p for p in json.loads(capsys.readouterr().out)["patients"]}
    assert set(patients) == {"Patient/p1", "Patient/p2"}
    assert [i["resource"] for i in patients["Patient/p2"]["data_issues"]] == ["Condition/bad"]
    assert [f["trigger"] for f in patients["Patient/p2"]["findings"]] == ["rare-cancer"]


def test_rare_definition_option_and_text_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _write(
        tmp_path / "b.json",
        bundle(patient(), condition("c1", "C16.9", "Malignant neoplasm of stomach, unspecified")),
    )
    assert main(["evaluate", str(source), "--as-of", "2026-03-01", "--format", "text"]) == 0
    assert "no second-opinion triggers" in capsys.readouterr().out
    assert (
        main(
            ["evaluate", str(source), "--as-of", "2026-03-01", "--format", "text", "--rare-definition", "nci"]
        )
        == 0
    )
    assert "rare-cancer" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content",
    [
        "not json at all {",
        json.dumps({"hello": "world"}),
        json.dumps(condition("c1", "C45.0", "x", pid="p9"))[:-1],
    ],
)
def test_bad_input_is_one_line_error_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    source = tmp_path / "bad.json"
    source.write_text(content)
    assert main(["evaluate", str(source)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("secondlook evaluate:")


def test_input_without_patient_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _write(
        tmp_path / "b.json", {"resourceType": "Binary", "id": "x", "contentType": "text/plain", "data": ""}
    )
    assert main(["evaluate", str(source)]) == 2
    assert "no Patient" in capsys.readouterr().err


def test_unavailable_data_becomes_an_explanatory_data_issue() -> None:
    [result] = evaluate_resources(
        [bundle(patient())],
        as_of=date(2026, 3, 1),
        unavailable=[
            Unavailable("DiagnosticReport", "scope not granted", "Pathology reports could not be read")
        ],
    )
    [issue] = result.to_json()["data_issues"]
    assert issue["resource"] == "DiagnosticReport"
    assert "scope not granted" in issue["reason"]
    assert "uncertain-pathology" in issue["reason"]
    assert "does not mean" in issue["reason"]


def test_output_is_deterministic() -> None:
    resources = [
        bundle(
            patient(), condition("c2", "C49.A0", "GIST"), condition("c1", "C45.0", "Mesothelioma of pleura")
        )
    ]
    first = [r.to_json() for r in evaluate_resources(resources, as_of=date(2026, 3, 1))]
    second = [r.to_json() for r in evaluate_resources(list(reversed(resources)), as_of=date(2026, 3, 1))]
    assert first == second
    evidence = first[0]["findings"][0]["evidence"]
    assert evidence == sorted(evidence, key=lambda e: (e["reference"], e["path"], e["text"]))


def test_a_deceased_patient_gets_a_note_and_no_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = dict(patient(), deceasedDateTime="2026-02-01")
    source = _write(
        tmp_path / "b.json",
        bundle(dead, condition("c1", "C92.00", "Acute myeloblastic leukemia, not having achieved remission")),
    )
    assert main(["evaluate", str(source), "--as-of", "2026-03-01", "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert "recorded as deceased on 02/01/2026" in out
    assert "TIME-CRITICAL" not in out and "rare-cancer" not in out


def test_byte_order_mark_is_accepted_in_json_and_ndjson(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "b.json"
    source.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(bundle(patient(), condition("c1", "C49.A0", "GIST"))).encode()
    )
    assert main(["evaluate", str(source), "--as-of", "2026-03-01"]) == 0
    assert [f["trigger"] for f in json.loads(capsys.readouterr().out)["patients"][0]["findings"]] == [
        "rare-cancer"
    ]
    lines = tmp_path / "r.ndjson"
    lines.write_bytes(
        b"\xef\xbb\xbf"
        + "\n".join(json.dumps(r) for r in (patient(), condition("c1", "C49.A0", "GIST"))).encode()
    )
    assert main(["evaluate", str(lines), "--as-of", "2026-03-01"]) == 0
    assert json.loads(capsys.readouterr().out)["patients"][0]["findings"][0]["trigger"] == "rare-cancer"


def test_one_malformed_ndjson_line_is_a_data_issue_and_the_other_lines_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        json.dumps(patient()),
        '{"resourceType": "Condition", "id": "broken',
        json.dumps(condition("c1", "C49.A0", "GIST")),
    ]
    source = tmp_path / "Export.ndjson"
    source.write_text("\n".join(lines) + "\n")
    assert main(["evaluate", str(source), "--as-of", "2026-03-01"]) == 0
    captured = capsys.readouterr()
    [entry] = json.loads(captured.out)["patients"]
    assert [f["trigger"] for f in entry["findings"]] == ["rare-cancer"]
    assert [i["reason"] for i in entry["data_issues"]] == [
        "Line 2 of Export.ndjson is not valid JSON and was not read; "
        "if it held this patient's data, that data was not assessed."
    ]
    assert "not JSON" in captured.err and "Traceback" not in captured.err

"""The partition pass and the per-bucket task, without a cluster."""

from __future__ import annotations

import gzip
import io
import json
import random
import re
from collections import Counter
from datetime import date
from pathlib import Path

from fhirmaps import read
from smartapp.screening.bucket import screen_bucket
from smartapp.screening.errors import ErrorLog
from smartapp.screening.inputs import resolve_input
from smartapp.screening.partition import BUCKET_BYTES, LEADING_TYPE, bucket_count, bucket_of, partition
from smartapp.screening.progress import Progress
from smartapp.screening.read_types import read_types
from smartapp.screening.worklist_writer import fingerprint
from tests.screening.export import write_export

AS_OF = date(2026, 3, 1)


def _lines(path: Path) -> list[dict[str, object]]:
    """Resources of the side file, or of a bucket file (whose lines are "<patient id>\t<json>")."""
    return [json.loads(line.split("\t", 1)[-1]) for line in path.read_text().splitlines() if line.strip()]


def test_read_types_cover_every_type_the_engine_reads() -> None:
    types = read_types()
    assert read.PATIENT_TYPES <= types.patient
    assert read.REFERENCED_TYPES <= types.shared
    assert not (
        {"Claim", "ExplanationOfBenefit", "Provenance", "ImagingStudy", "Device"}
        & (types.patient | types.shared)
    )


def test_an_export_is_asked_for_every_type_the_engine_reads_but_binary() -> None:
    requested = read_types().requested()
    assert read.PATIENT_TYPES <= set(requested) and "Medication" in requested
    # A report's text comes through its attachment URL (hydration), not as an exported Binary.
    assert "Binary" not in requested and "Binary" in read.REFERENCED_TYPES
    assert list(requested) == sorted(set(requested))


def test_bucket_count_is_sized_from_bytes_with_eight_per_worker_minimum() -> None:
    assert bucket_count(10, workers=2) == 16
    assert bucket_count(BUCKET_BYTES * 20 + 1, workers=2) == 21


def test_lines_go_to_their_patients_bucket_and_shared_ones_to_the_side_file(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export")
    errors = ErrorLog()
    parts = partition(resolve_input(export).files, tmp_path / "work", 4, errors)
    assert parts.patients == 3
    assert parts.skipped == Counter({"Claim": 4})
    assert errors.counts == Counter({"malformed-line": 1, "no-patient-reference": 1})
    assert errors.examples["malformed-line"] == ["Condition.ndjson line 5"]
    assert [r["id"] for r in _lines(parts.side)] == ["med-trastuzumab"]
    for pid in ("p-rare", "p-none", "p-her2", "p-ghost"):
        [bucket] = [b for b in parts.buckets if b.name == f"bucket-{bucket_of(pid, 4):05d}.ndjson"]
        mine = [line for line in bucket.read_text().splitlines() if line.startswith(f"{pid}\t")]
        assert mine and all(pid in line.split("\t", 1)[1] for line in mine), pid
    assert sum(len(_lines(b)) for b in parts.buckets) == parts.resources - 1  # minus the Medication


def test_skipped_types_are_not_parsed_and_bom_and_gzip_are_read(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    # A Claim line that is not even JSON is skipped from its leading resourceType, not counted as malformed.
    (folder / "Claim.ndjson").write_text('{"resourceType": "Claim", "id": "x", BROKEN\n')
    (folder / "Patient.ndjson").write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"resourceType": "Patient", "id": "a"}).encode() + b"\n"
    )
    with gzip.open(folder / "Condition.ndjson.gz", "wt") as out:
        # resourceType not first: parsed to learn the type, urn:uuid: subject resolved to the patient.
        out.write(
            json.dumps({"id": "c", "subject": {"reference": "urn:uuid:a"}, "resourceType": "Condition"})
            + "\n"
        )
    errors = ErrorLog()
    parts = partition(resolve_input(folder).files, tmp_path / "work", 2, errors)
    assert not errors.counts
    assert parts.skipped == Counter({"Claim": 1})
    assert parts.patients == 1 and parts.resources == 2
    [bucket] = parts.buckets
    assert {r["resourceType"] for r in _lines(bucket)} == {"Patient", "Condition"}


def test_a_type_after_leading_string_keys_is_read_without_parsing(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    # The same broken Claim, written id first (as some servers write every resource): still skipped.
    (folder / "Claim.ndjson").write_text('{"id": "x", "status": "active", "resourceType": "Claim", BROKEN\n')
    (folder / "Patient.ndjson").write_text(json.dumps({"id": "a", "resourceType": "Patient"}) + "\n")
    errors = ErrorLog()
    parts = partition(resolve_input(folder).files, tmp_path / "work", 1, errors)
    assert not errors.counts
    assert parts.skipped == Counter({"Claim": 1}) and parts.patients == 1


def _random_line(chance: random.Random) -> tuple[bytes, bool]:
    """A resource line with random leading keys, and whether all of them before resourceType hold
    plain strings (then its type can be read without parsing)."""
    values = [
        '"x"', '"a\\"b"', '"back\\\\"', '""', "1", "true", "null", '{"resourceType": "Medication"}',
        '[{"resourceType": "Binary"}]', '{"a": "resourceType"}', '"\\"resourceType\\": \\"Binary\\""',
    ]  # fmt: skip
    leading = [(f"k{i}", chance.choice(values)) for i in range(chance.randint(0, 10))]
    spaces = chance.choice(["", " ", "\t", " \n "])
    pairs = [f'"{key}":{spaces}{value}' for key, value in leading]
    line = "{" + f",{spaces}".join([*pairs, f'"resourceType":{spaces}"Observation"', '"id": "o"']) + "}"
    plain = len(leading) <= 8 and all(value.startswith('"') for _, value in leading)
    return line.encode(), plain


def test_the_leading_type_is_the_resource_s_own_or_nothing() -> None:
    chance = random.Random(11)
    outcomes = Counter()
    for _ in range(3000):
        line, plain = _random_line(chance)
        found = LEADING_TYPE.match(line)
        assert (found is not None) == plain, line
        if found is not None:
            assert found.group(1).decode() == json.loads(line)["resourceType"], line
        outcomes[plain] += 1
    assert outcomes[True] > 300 and outcomes[False] > 300


def test_bucket_task_reads_the_side_file_and_reports_a_missing_patient(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export")
    parts = partition(resolve_input(export).files, tmp_path / "work", 1, ErrorLog())
    [bucket] = parts.buckets
    result = screen_bucket(str(bucket), str(parts.side), AS_OF)
    by_id = {p["patient_id"]: p for p in result["patients"]}
    assert set(by_id) == {"p-rare", "p-none", "p-her2", "p-ghost"}
    assert [f["trigger"] for f in by_id["p-rare"]["result"]["findings"]] == ["rare-cancer"]
    assert by_id["p-rare"]["display_name"] == "Ada Rare" and by_id["p-rare"]["birth_date"] == "1960-05-01"
    # The Medication in the side file names the anti-HER2 drug: no guideline deviation.
    assert "guideline-deviation" not in [f["trigger"] for f in by_id["p-her2"]["result"]["findings"]]
    assert result["errors"]["counts"] == {"patient-not-in-export": 1}
    assert any("not in the export" in i["reason"] for i in by_id["p-ghost"]["result"]["data_issues"])
    # Without the side file the same chart fires: the test above can fail.
    empty = tmp_path / "empty.ndjson"
    empty.write_text("")
    blind = {p["patient_id"]: p for p in screen_bucket(str(bucket), str(empty), AS_OF)["patients"]}
    assert "guideline-deviation" in [f["trigger"] for f in blind["p-her2"]["result"]["findings"]]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_only_on_a_terminal() -> None:
    terminal = _Terminal()
    progress = Progress(terminal)
    progress.total = 10
    progress.update(5)
    progress.close()
    assert re.fullmatch(r"\rsecondlook screen: 5/10 patients, [\d.]+/s, ETA \d+ s   \n", terminal.getvalue())
    piped = io.StringIO()
    Progress(piped).update(5)
    assert piped.getvalue() == ""


def test_fingerprint_ignores_order_and_sees_summary_changes() -> None:
    a = {"trigger": "rare-cancer", "summary": "GIST is rare."}
    b = {"trigger": "not-responding", "summary": "Progression on FOLFOX."}
    assert fingerprint([a, b]) == fingerprint([b, a])
    assert fingerprint([a]) != fingerprint([a | {"summary": "GIST is rare (updated)."}])
    assert fingerprint([]) != fingerprint([a])


def test_a_patient_the_engine_cannot_evaluate_is_an_error_and_the_others_are_kept(tmp_path: Path) -> None:
    # A bucket line filed under "p-a" whose resource names another patient: evaluate_patient finds no
    # Patient/p-a and raises; the bucket's other patient must still come back.
    good = {"resourceType": "Patient", "id": "p-b"}
    stray = {
        "resourceType": "Condition",
        "id": "c",
        "subject": {"reference": "Patient/p-z"},
        "code": {"text": "x"},
    }
    bucket = tmp_path / "bucket-00000.ndjson"
    bucket.write_text(f"p-a\t{json.dumps(stray)}\np-b\t{json.dumps(good)}\n")
    side = tmp_path / "shared.ndjson"
    side.write_text("")
    result = screen_bucket(str(bucket), str(side), AS_OF)
    assert [p["patient_id"] for p in result["patients"]] == ["p-b"]
    assert result["errors"]["counts"] == {"engine-error:PatientNotInInput": 1}
    assert result["errors"]["examples"]["engine-error:PatientNotInInput"] == [
        "PatientNotInInput in bucket-00000.ndjson"
    ]


def test_input_is_a_folder_one_ndjson_file_or_a_manifest(tmp_path: Path) -> None:
    export = write_export(tmp_path / "export")
    assert [p.name for p in resolve_input(export).files][:2] == ["Claim.ndjson", "Condition.ndjson"]
    single = resolve_input(export / "Patient.ndjson")
    assert single.files == ((export / "Patient.ndjson").resolve(),) and single.transaction_time is None

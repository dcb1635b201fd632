"""The partition pass on the workers: chunks of the input partitioned apart on a real 2-worker
LocalCluster give the same bucket files, byte for byte, as the whole-input pass in one process,
with the same counts and the same line numbers in the errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from distributed import Client

from smartapp.screening.errors import ErrorLog
from smartapp.screening.inputs import resolve_input
from smartapp.screening.partition import Chunk, chunks, partition
from smartapp.screening.shuffle import partition_on_cluster
from tests.screening.export import write_export


def _messy_export(folder: Path) -> Path:
    """Lines of every kind a chunk edge can fall on: a BOM, blank lines, CRLF endings, a line that
    is not JSON, one that names no patient, skipped types, a gzip file, no newline at the end."""
    folder.mkdir()
    observations = []
    for n in range(60):
        observations.append(
            json.dumps(
                {
                    "resourceType": "Observation",
                    "id": f"o{n}",
                    "status": "final",
                    "code": {"text": "Hemoglobin " + "x" * (n % 7)},
                    "subject": {"reference": f"Patient/p{n % 5}"},
                }
            )
        )
        if n % 11 == 3:
            observations.append("")
        if n == 17:
            observations.append('{"resourceType": "Observation", "id": "broken", ')
        if n == 41:
            observations.append(json.dumps({"resourceType": "Observation", "id": "orphan"}))
    (folder / "Observation.ndjson").write_text("\r\n".join(observations), encoding="utf-8")
    patients = [json.dumps({"resourceType": "Patient", "id": f"p{n}"}) for n in range(5)]
    (folder / "Patient.ndjson").write_bytes(b"\xef\xbb\xbf" + "\n\n".join(patients).encode() + b"\n")
    (folder / "Claim.ndjson").write_text(
        "\n".join(json.dumps({"resourceType": "Claim", "id": f"c{n}"}) for n in range(9)) + "\n"
    )
    with gzip.open(folder / "Condition.ndjson.gz", "wt") as out:
        for n in range(5):
            out.write(
                json.dumps(
                    {"resourceType": "Condition", "id": f"k{n}", "subject": {"reference": f"Patient/p{n}"}}
                )
                + "\n"
            )
    (folder / "Medication.ndjson").write_text(json.dumps({"resourceType": "Medication", "id": "m1"}) + "\n")
    return folder


def _files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.glob("*.ndjson"))}


def test_plain_files_are_cut_into_byte_ranges_and_gzip_files_kept_whole(tmp_path: Path) -> None:
    folder = _messy_export(tmp_path / "export")
    plan = chunks(resolve_input(folder).files, 1000)
    observation = (folder / "Observation.ndjson").stat().st_size
    cut = [c for c in plan if c.path.name == "Observation.ndjson"]
    assert cut[0] == Chunk(folder / "Observation.ndjson", 0, 1000)
    assert [c.start for c in cut] == list(range(0, observation, 1000))
    assert cut[-1].end is None
    assert [c for c in plan if c.path.name == "Condition.ndjson.gz"] == [
        Chunk(folder / "Condition.ndjson.gz")
    ]


def test_chunks_on_the_cluster_give_the_same_buckets_as_one_pass(tmp_path: Path, client: Client) -> None:
    for name, folder in (
        ("messy", _messy_export(tmp_path / "messy")),
        ("export", write_export(tmp_path / "export")),
    ):
        files = resolve_input(folder).files
        alone = ErrorLog()
        whole = partition(files, tmp_path / f"{name}-whole", 4, alone)
        for chunk_bytes in (37, 256, 10**6):  # edges inside lines, on them, and one chunk per file
            errors = ErrorLog()
            parts = partition_on_cluster(
                client, files, tmp_path / f"{name}-{chunk_bytes}", 4, errors, chunk_bytes=chunk_bytes
            )
            assert (parts.patients, parts.resources, parts.skipped) == (
                whole.patients,
                whole.resources,
                whole.skipped,
            ), (name, chunk_bytes)
            assert errors.as_json() == alone.as_json(), (name, chunk_bytes)
            assert [b.name for b in parts.buckets] == [b.name for b in whole.buckets]
            assert _files(parts.work_dir) == _files(whole.work_dir), (name, chunk_bytes)
            assert not list(parts.work_dir.glob("shard-*")), "shards are removed"
    messy = ErrorLog()
    partition(resolve_input(tmp_path / "messy").files, tmp_path / "again", 4, messy)
    assert messy.examples == {
        "malformed-line": ["Observation.ndjson line 21"],
        "no-patient-reference": ["Observation in Observation.ndjson line 48"],
    }

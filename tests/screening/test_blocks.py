"""A file of patient blocks screened in byte ranges gives what the whole file gives: each range
takes the blocks whose header starts in it, whatever the edges cut (a line, a header, a BOM)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from smartapp.screening.blocks import block_tasks, screen_blocks
from smartapp.screening.errors import ErrorLog
from tests.screening.export import write_export
from tests.screening.test_screen_blocks import block_files

AS_OF = date(2026, 3, 1)


def _screen(path: Path, task_bytes: int) -> tuple[list[dict[str, Any]], int, dict[str, int], dict[str, int]]:
    patients: list[dict[str, Any]] = []
    resources = 0
    errors = ErrorLog()
    skipped: dict[str, int] = {}
    for chain, start, end in block_tasks([path], task_bytes):
        done = screen_blocks([str(p) for p in chain], AS_OF, "rarecare", start, end)
        patients += done["patients"]
        resources += done["resources"]
        errors.merge(done["errors"])
        for rtype, count in done["skipped"].items():
            skipped[rtype] = skipped.get(rtype, 0) + count
    patients.sort(key=lambda p: str(p["patient_id"]))
    return patients, resources, dict(errors.counts), skipped


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The test export as one file of blocks (a BOM, CRLF line ends, a resource before any header,
    a malformed line), and the same with p-rare's block in two pieces (its header repeated)."""
    folder = tmp_path_factory.mktemp("blocks")
    first, second, third = block_files(write_export(folder / "by-type"))
    one = folder / "one.ndjson"
    one.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join([*first, *second, *third[1:]]) + "\r\n").encode())
    twice = folder / "twice.ndjson"
    twice.write_text("\n".join([*first, *second, *third]) + "\n")
    return one, twice


@pytest.mark.parametrize("task_bytes", [1, 97, 500, 2_000])
def test_ranges_cut_at_headers_give_what_the_whole_file_gives(
    files: tuple[Path, Path], task_bytes: int
) -> None:
    one, _ = files
    whole = _screen(one, 10**9)
    assert len(block_tasks([one], task_bytes)) > 1
    assert _screen(one, task_bytes) == whole
    patients, resources, errors, skipped = whole
    assert [p["patient_id"] for p in patients] == ["p-ghost", "p-her2", "p-none", "p-rare"]
    assert errors == {"malformed-line": 1, "outside-block": 1, "patient-not-in-export": 1}
    assert skipped == {"Claim": 4} and resources > 10


def test_a_file_with_two_blocks_for_one_patient_is_one_task(files: tuple[Path, Path]) -> None:
    one, twice = files
    assert block_tasks([twice], 1) == [([twice], 0, None)]
    assert _screen(twice, 1)[0] == _screen(one, 10**9)[0]  # the two pieces put together


def test_a_range_that_starts_inside_a_block_leaves_it_to_the_range_before(files: tuple[Path, Path]) -> None:
    """Ranges cut anywhere (not at headers) still take exactly the blocks whose header starts in
    them: the lines before a range's first header are the range before's."""
    one, _ = files
    size = one.stat().st_size
    whole = _screen(one, 10**9)
    for step in (61, 333, 1_024):
        patients: list[dict[str, Any]] = []
        errors = ErrorLog()
        for start in range(0, size, step):
            end = start + step if start + step < size else None
            done = screen_blocks([str(one)], AS_OF, "rarecare", start, end)
            patients += done["patients"]
            errors.merge(done["errors"])
        assert sorted(patients, key=lambda p: str(p["patient_id"])) == whole[0]
        assert dict(errors.counts) == whole[2]


def test_a_gzip_file_or_a_chain_is_one_task(tmp_path: Path) -> None:
    import gzip

    def header(pid: str) -> str:
        value = {"reference": f"Patient/{pid}"}
        return json.dumps(
            {"resourceType": "Parameters", "parameter": [{"name": "header", "valueReference": value}]}
        )

    plain = tmp_path / "a.ndjson"
    plain.write_text("\n".join([header("p1"), "x" * 100, header("p2"), "y" * 100]) + "\n")
    packed = tmp_path / "b.ndjson.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes() * 10))
    assert block_tasks([packed], 10) == [([packed], 0, None)]
    assert block_tasks([plain, packed], 10) == [([plain, packed], 0, None)]
    offsets = [0, len(header("p1")) + 102]
    assert block_tasks([plain], 10) == [([plain], 0, offsets[1]), ([plain], offsets[1], None)]


def test_a_screen_reads_without_the_validation_memo_and_leaves_it_on_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fhirmaps import r4b
    from smartapp.screening import bucket

    seen: list[bool] = []
    evaluate = bucket._evaluate

    def watching(*args: Any, **kwargs: Any) -> dict[str, Any]:
        seen.append(r4b._REMEMBER.get())
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(bucket, "_evaluate", watching)
    for pid in ("p1", "p2"):
        groups = {pid: [json.dumps({"resourceType": "Patient", "id": pid}).encode()]}
        bucket.screen_groups(groups, {}, {}, "x", AS_OF, "rarecare", ErrorLog())
    assert seen == [False, False] and r4b._REMEMBER.get() is True

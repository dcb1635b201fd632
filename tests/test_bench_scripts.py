"""The benchmarks that give docs/performance.md its figures still run on the current product, at a
tiny size (the figures themselves come from full runs, never from tests; no time is asserted).
A product change that breaks a benchmark's calls fails here instead of on the next measuring day."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def test_engine_speed_runs() -> None:
    out = bench("engine_speed.py", "--patients", "20", "--repeat", "1")
    assert out["large_record"]["resources"] == 2000
    assert out["bulk_ndjson"]["patients"] == 20


@pytest.mark.parametrize("layout", ["type", "patient"])
def test_screen_throughput_runs_and_screens_every_patient(layout: str) -> None:
    out = bench(
        "screen_throughput.py",
        "--layout",
        layout,
        "--patients",
        "20",
        "--oncology",
        "0.2",
        "--peer-sample",
        "5",
        "--workers",
        "1",
        "--repeat",
        "1",
    )
    assert out["layout"] == layout
    text = json.dumps(out)
    assert '"patients": 20' in text
    assert '"errors": {}' in text or '"errors": []' in text


def test_screen_end_to_end_runs_and_fills_the_worklist() -> None:
    out = bench(
        "screen_e2e.py", "--patients", "20", "--latency-ms", "0", "--workers", "1", "--layout", "patient,type"
    )
    [population] = out["populations"]
    by_patient, by_type = population["runs"]
    assert (by_patient["export_layout"], by_type["export_layout"]) == ("patient", "type")
    for run in (by_patient, by_type):
        assert run["worklist_rows"] == run["patients"] == 20
        assert run["errors"] == {}
        assert run["ehr_requests"]["export-kick-off"] == 1


def test_cds_latency_runs_and_every_call_answers() -> None:
    out = bench("cds_latency.py", "--requests", "6", "--concurrency", "2", "--latency-ms", "0")
    for mode in ("prefetch", "no_prefetch"):
        assert out[mode]["statuses"] == {"200": 6}


def test_fetch_latency_runs_and_the_readers_agree() -> None:
    out = bench("fetch_latency.py", "--latency-ms", "0", "--runs", "1")
    assert out["secondlook"]["resources"] == out["peers"]["fhirpy"]["resources"] > 1000

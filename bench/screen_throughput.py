"""`secondlook screen` throughput: N synthetic patients as NDJSON, screened on Dask with 1 and 2 workers.

Prints JSON. Usage: python bench/screen_throughput.py [--patients 1000] [--oncology 0.15] [--peer-sample 200]
[--repeat 3] [--layout type|patient]

Most patients have no cancer (a few problems, labs, encounters, and Claims/ExplanationOfBenefits that
the screen skips); the oncology share are charts of the demo EHR's large-patient generator (about
350 resources each: pathology reports behind Binary attachments, imaging conclusions, notes, labs,
treatment), each from its own seed. Every run gets a fresh cluster and SQLite worklist; the workers
load the NLP model and settle their heap before the clock starts (cluster start-up is reported
apart). Peak RSS is sampled every 0.1 s for the main process and for each worker process. The peer
is `secondlook evaluate` (the in-memory path) in its own process on the first `--peer-sample`
patients. Each worker count runs `--repeat` times, alternating; the run of median speed is
reported with every run's speed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from demo_ehr import large_patient as lp
from demo_ehr.synthetic import primary_care_chart
from screen_common import AS_OF, RssSampler, cpu_seconds, machine, mib, warm_cluster, worker_pids

from launch.crypto import TokenCipher, generate_key
from smartapp.screening.inputs import resolve_input
from smartapp.screening.pipeline import ScreenOptions, run_screen

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
NON_CANCER = [
    ("I10", "Essential hypertension"),
    ("E11.9", "Type 2 diabetes mellitus"),
    ("J45.909", "Asthma"),
    ("M17.11", "Primary osteoarthritis, right knee"),
    ("E78.5", "Hyperlipidemia"),
]
LABS = [
    ("2160-0", "Creatinine", "mg/dL"),
    ("718-7", "Hemoglobin", "g/dL"),
    ("2345-7", "Glucose", "mg/dL"),
    ("4548-4", "Hemoglobin A1c", "%"),
]


def oncology_chart(pid: str, seed: int, n_resources: int) -> list[str]:
    chart = lp._Chart(seed=seed)
    lp._add_people(chart)
    lp._add_conditions(chart)
    lp._add_encounters_and_notes(chart)
    lp._add_treatment(chart)
    lp._add_pathology(chart, 10)
    lp._add_imaging(chart)
    lp._add_labs(chart, n_resources)
    lines = []
    for item in chart.items[:n_resources]:
        text = (
            json.dumps(item)
            .replace(lp.BENCH_PATIENT_ID, pid)
            .replace('"bl-', f'"{pid}-')
            .replace("/bl-", f"/{pid}-")
        )
        lines.append(text)
    return lines


def plain_chart(pid: str, rng: random.Random) -> list[dict[str, Any]]:
    subject = {"reference": f"Patient/{pid}"}
    out: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": pid,
            "gender": rng.choice(["female", "male"]),
            "birthDate": f"{rng.randint(1935, 2005)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            "name": [{"use": "official", "family": f"Family{rng.randint(1, 999)}", "given": ["Test"]}],
        }
    ]
    for i, (code, display) in enumerate(rng.sample(NON_CANCER, rng.randint(1, 3))):
        out.append(
            {
                "resourceType": "Condition",
                "id": f"{pid}-c{i}",
                "subject": subject,
                "code": {"coding": [{"system": ICD10, "code": code, "display": display}]},
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "onsetDateTime": f"20{rng.randint(10, 25)}-0{rng.randint(1, 9)}-15",
            }
        )
    for i in range(rng.randint(15, 40)):
        code, display, unit = rng.choice(LABS)
        out.append(
            {
                "resourceType": "Observation",
                "id": f"{pid}-o{i}",
                "status": "final",
                "subject": subject,
                "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
                "effectiveDateTime": f"2025-{rng.randint(1, 12):02d}-{rng.randint(10, 28)}",
                "valueQuantity": {"value": round(rng.uniform(0.5, 12), 1), "unit": unit},
            }
        )
    for i in range(rng.randint(2, 6)):
        out.append(
            {
                "resourceType": "Encounter",
                "id": f"{pid}-e{i}",
                "status": "finished",
                "subject": subject,
                "class": {"code": "AMB"},
                "period": {"start": f"2025-{rng.randint(1, 12):02d}-10"},
            }
        )
        for kind in ("Claim", "ExplanationOfBenefit"):
            out.append(
                {
                    "resourceType": kind,
                    "id": f"{pid}-{kind}-{i}",
                    "status": "active",
                    "patient": subject,
                    "use": "claim",
                    "created": "2025-06-01",
                    "item": [{"sequence": 1, "productOrService": {"text": "visit"}}],
                }
            )
    return out


BLOCK_FILE_BYTES = 8 * 1024 * 1024  # as the demo EHR's export by patient


def _header(pid: str) -> dict[str, Any]:
    reference = {"reference": f"Patient/{pid}"}
    return {"resourceType": "Parameters", "parameter": [{"name": "header", "valueReference": reference}]}


def write_export(
    folder: Path,
    patients: int,
    oncology: float,
    onc_resources: int,
    peer: Path,
    sample: int,
    visit_scale: int = 0,
    blocks: Path | None = None,
) -> dict[str, int]:
    """The export in `folder`; the lines of its first `sample` patients also in `peer`; with
    `blocks`, the same lines there as an export organized by patient (files of about 8 MB of
    resource blocks, and its manifest.json)."""
    rng = random.Random(20261205)
    files: dict[Path, Any] = {}
    counts = {"patients": patients, "oncology_patients": 0, "lines": 0}
    block_files: list[str] = []
    block_out: Any = None
    try:
        for n in range(patients):
            pid = f"bench-{n:06d}"
            if rng.random() < oncology:
                counts["oncology_patients"] += 1
                lines = oncology_chart(pid, seed=n, n_resources=onc_resources)
            else:
                chart = (
                    primary_care_chart(n, pid, visit_scale=visit_scale)
                    if visit_scale
                    else plain_chart(pid, rng)
                )
                lines = [json.dumps(r) for r in chart]
            if blocks is not None:
                if block_out is None:
                    block_files.append(f"patients-{len(block_files) + 1:05d}.ndjson")
                    block_out = (blocks / block_files[-1]).open("w")
                block_out.write(json.dumps(_header(pid)) + "\n" + "\n".join(lines) + "\n")
                if block_out.tell() >= BLOCK_FILE_BYTES:
                    block_out.close()
                    block_out = None
            for line in lines:
                rtype = json.loads(line)["resourceType"]
                for target in (folder, peer) if n < sample else (folder,):
                    path = target / f"{rtype}.ndjson"
                    if path not in files:
                        files[path] = path.open("w")
                    files[path].write(line + "\n")
                counts["lines"] += 1
    finally:
        for handle in files.values():
            handle.close()
        if block_out is not None:
            block_out.close()
    if blocks is not None:
        manifest = {
            "transactionTime": "2026-03-01T00:00:00Z",
            "requiresAccessToken": False,
            "outputOrganizedBy": "Patient",
            "output": [{"url": name} for name in block_files],
            "error": [],
        }
        (blocks / "manifest.json").write_text(json.dumps(manifest))
    counts["bytes"] = sum(p.stat().st_size for p in folder.iterdir())
    counts["megabytes"] = round(counts["bytes"] / 2**20, 1)
    return counts


def screen(folder: Path, workers: int, work: Path, repeat: int = 0) -> dict[str, Any]:
    with warm_cluster(workers) as (client, startup):
        options = ScreenOptions(
            as_of=AS_OF,
            database_url=f"sqlite:///{work / f'worklist-{workers}-{repeat}.db'}",
            cipher=TokenCipher([generate_key()]),
            keep_results=False,
        )
        main_cpu = cpu_seconds()
        workers_cpu = sum(client.run(cpu_seconds).values())
        load_before = os.getloadavg()[0]
        with RssSampler() as rss:
            rss.track("main", os.getpid())
            pids = worker_pids(client)
            for n, pid in enumerate(pids):
                rss.track(f"worker-{n}", pid, group="workers")
            outcome = run_screen(resolve_input(folder), options, client=client)
        main_cpu = cpu_seconds() - main_cpu
        workers_cpu = sum(client.run(cpu_seconds).values()) - workers_cpu
        load_after = os.getloadavg()[0]
    return {
        "workers": workers,
        "patients": outcome.patients,
        "resources": outcome.resources,
        "seconds": round(outcome.seconds, 2),
        "partition_seconds": round(outcome.partition_seconds, 2),
        "patients_per_second": round(outcome.patients / outcome.seconds, 1),
        "cluster_startup_seconds": round(startup, 2),
        "peak_rss_main_mib": mib(rss.peaks["main"]),
        "peak_rss_worker_mib": mib(max(rss.peaks.get(f"worker-{n}", 0) for n in range(len(pids)))),
        "peak_rss_workers_total_mib": mib(rss.group_peaks.get("workers", 0)),
        "cpu_seconds_main": round(main_cpu, 2),
        "cpu_seconds_workers": round(workers_cpu, 2),
        "load_average_1min_before_after": [round(load_before, 2), round(load_after, 2)],
        "errors": dict(outcome.errors.counts),
        "changes": outcome.changes,
    }


def peer(target: Path) -> dict[str, Any]:
    """`secondlook evaluate` on the sample folder (every line of the first patients), in its own process."""
    exe = Path(sys.executable).with_name("secondlook")
    t0 = time.perf_counter()
    command = [str(exe), "evaluate", str(target), "--as-of", AS_OF.isoformat(), "--format", "json"]
    done = subprocess.run(command, capture_output=True, check=True)  # noqa: S603 - our own console script
    seconds = time.perf_counter() - t0
    patients = len(json.loads(done.stdout)["patients"])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {
        "command": "secondlook evaluate (in memory, one process)",
        "patients": patients,
        "seconds": round(seconds, 2),
        "patients_per_second": round(patients / seconds, 1),
        "peak_rss_mib": mib(peak),
        "note": "includes process start and NLP model load (~3 s)",
    }


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median speed, with every run's speed beside it."""
    ordered = sorted(runs, key=lambda run: run["patients_per_second"])
    return {
        **ordered[(len(ordered) - 1) // 2],
        "patients_per_second_each_repeat": [run["patients_per_second"] for run in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--oncology", type=float, default=0.15, help="share of oncology charts")
    parser.add_argument("--onc-resources", type=int, default=350)
    parser.add_argument(
        "--visit-scale",
        type=int,
        default=0,
        help="charts without cancer from the demo EHR's generator with this many times its visits "
        "(8: Synthea-sized, ~260 resources); default: the small charts above",
    )
    parser.add_argument("--peer-sample", type=int, default=200)
    parser.add_argument(
        "--layout",
        choices=("type", "patient"),
        default="type",
        help="the export screened: files by type (partitioned first) or by patient (a manifest with "
        "outputOrganizedBy: Patient, each file a task)",
    )
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each worker count, alternating (the median is reported)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="screen-bench-") as tmp:
        work = Path(tmp)
        folder = work / "export"
        folder.mkdir()
        sample = work / "peer"
        sample.mkdir()
        blocks = work / "by-patient" if args.layout == "patient" else None
        if blocks is not None:
            blocks.mkdir()
        export = write_export(
            folder,
            args.patients,
            args.oncology,
            args.onc_resources,
            sample,
            args.peer_sample,
            args.visit_scale,
            blocks,
        )
        target = blocks / "manifest.json" if blocks is not None else folder
        counts = sorted({int(w) for w in args.workers.split(",")})
        every: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
        for repeat in range(args.repeat):
            # Alternating which worker count goes first, so a slow moment of the machine does not
            # always fall on the same one.
            for n in counts if repeat % 2 == 0 else counts[::-1]:
                every[n].append(screen(target, n, work, repeat))
        report: dict[str, Any] = {
            "machine": machine(),
            "export": export,
            "layout": args.layout,
            "repeats": args.repeat,
        }
        runs = {n: _median_run(every[n]) for n in counts}
        report |= {f"screen_{n}_worker{'s' if n > 1 else ''}": run for n, run in runs.items()}
        if 1 in runs and 2 in runs:
            report["speedup_2_vs_1"] = round(
                runs[2]["patients_per_second"] / runs[1]["patients_per_second"], 2
            )
            report["speedup_2_vs_1_each_repeat"] = [
                round(two["patients_per_second"] / one["patients_per_second"], 2)
                for one, two in zip(every[1], every[2], strict=True)
            ]
        if args.peer_sample:
            report["peer_evaluate"] = peer(sample)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

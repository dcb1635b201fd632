"""`secondlook screen` throughput: N synthetic patients as NDJSON, screened on Dask with 1 and 2 workers.

Prints JSON. Usage: python bench/screen_throughput.py [--patients 1000] [--oncology 0.15] [--peer-sample 200]
[--repeat 3]

Most patients have no cancer (a few problems, labs, encounters, and Claims/ExplanationOfBenefits that
the screen skips); the oncology share are charts of the demo EHR's large-patient generator (about
350 resources each: pathology reports behind Binary attachments, imaging conclusions, notes, labs,
treatment), each from its own seed. Every run gets a fresh cluster and SQLite worklist; the workers
load the NLP model before the clock starts (cluster start-up is reported apart). Peak RSS is sampled
every 0.1 s for the main process and for each worker process. The peer is `secondlook evaluate` (the
in-memory path) in its own process on the first `--peer-sample` patients. Each worker count runs
`--repeat` times, alternating; the run of median speed is reported with every run's speed.
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


def measurement(oid: str, subject: dict[str, str], kind: tuple[str, str, str], when: str) -> dict[str, Any]:
    """An Observation of LOINC `kind` (code, display, unit); its value is set by the caller."""
    code, display, unit = kind[:3]
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": subject,
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "effectiveDateTime": when,
        "valueQuantity": {"value": None, "unit": unit},
    }


def claims(pid: str, visit: int, subject: dict[str, str], created: str, service: str) -> list[dict[str, Any]]:
    """The Claim and ExplanationOfBenefit of one visit (types the screen skips without parsing)."""
    return [
        {
            "resourceType": kind,
            "id": f"{pid}-{kind}-{visit}",
            "status": "active",
            "patient": subject,
            "use": "claim",
            "created": created,
            "item": [{"sequence": 1, "productOrService": {"text": service}}],
        }
        for kind in ("Claim", "ExplanationOfBenefit")
    ]


SNOMED = "http://snomed.info/sct"
SYNTHEA_CONDITIONS = [
    ("38341003", "Hypertension"),
    ("44054006", "Diabetes mellitus type 2"),
    ("15777000", "Prediabetes"),
    ("162864005", "Body mass index 30+ - obesity"),
    ("444814009", "Viral sinusitis"),
    ("195662009", "Acute viral pharyngitis"),
    ("10509002", "Acute bronchitis"),
    ("55822004", "Hyperlipidemia"),
]
VITALS = [
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 100, 160),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", 60, 100),
    ("29463-7", "Body weight", "kg", 50, 120),
    ("39156-5", "Body mass index", "kg/m2", 18, 40),
    ("8867-4", "Heart rate", "/min", 55, 100),
]
SYNTHEA_PROCEDURES = [
    ("430193006", "Medication reconciliation (procedure)"),
    ("710824005", "Assessment of health and social care needs (procedure)"),
    ("171207006", "Depression screening (procedure)"),
]


def synthea_like_chart(pid: str, rng: random.Random, n_resources: int) -> list[dict[str, Any]]:
    """A primary-care record of about `n_resources` shaped like a Synthea patient's: SNOMED-coded
    problems, and per encounter a Claim and an ExplanationOfBenefit (skipped by the screen), vital
    signs, and now and then a procedure, an immunization (skipped), an order and a lab panel."""
    subject = {"reference": f"Patient/{pid}"}
    out = plain_chart(pid, rng)[:1]  # the Patient
    for i, (code, display) in enumerate(rng.sample(SYNTHEA_CONDITIONS, rng.randint(3, 6))):
        out.append(
            {
                "resourceType": "Condition",
                "id": f"{pid}-c{i}",
                "subject": subject,
                "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
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
    i = 0
    while len(out) < n_resources:
        when = f"20{rng.randint(15, 25)}-{rng.randint(1, 12):02d}-{rng.randint(10, 28)}"
        encounter = {"reference": f"Encounter/{pid}-e{i}"}
        out.append(
            {
                "resourceType": "Encounter",
                "id": f"{pid}-e{i}",
                "status": "finished",
                "subject": subject,
                "class": {"code": "AMB"},
                "type": [
                    {"coding": [{"system": SNOMED, "code": "185349003", "display": "Encounter for check up"}]}
                ],
                "period": {"start": f"{when}T09:00:00Z", "end": f"{when}T09:30:00Z"},
            }
        )
        out += claims(pid, i, subject, when, "Encounter for check up")
        for k, (code, display, unit, low, high) in enumerate(rng.sample(VITALS, 3)):
            vital = measurement(f"{pid}-v{i}-{k}", subject, (code, display, unit), f"{when}T09:10:00Z")
            vital["valueQuantity"]["value"] = round(rng.uniform(low, high), 1)
            out.append(vital | {"category": [{"coding": [{"code": "vital-signs"}]}], "encounter": encounter})
        if i % 3 == 0:
            code, display = rng.choice(SYNTHEA_PROCEDURES)
            out.append(
                {
                    "resourceType": "Procedure",
                    "id": f"{pid}-p{i}",
                    "status": "completed",
                    "subject": subject,
                    "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
                    "performedPeriod": {"start": f"{when}T09:15:00Z", "end": f"{when}T09:25:00Z"},
                }
            )
        if i % 4 == 0:
            out.append(
                {
                    "resourceType": "Immunization",
                    "id": f"{pid}-i{i}",
                    "status": "completed",
                    "patient": subject,
                    "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
                    "occurrenceDateTime": f"{when}T09:20:00Z",
                }
            )
        if i % 5 == 0:
            out.append(
                {
                    "resourceType": "MedicationRequest",
                    "id": f"{pid}-m{i}",
                    "status": "active",
                    "intent": "order",
                    "subject": subject,
                    "medicationCodeableConcept": {
                        "coding": [
                            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076"}
                        ],
                        "text": "lisinopril 10 MG Oral Tablet",
                    },
                    "authoredOn": when,
                }
            )
        if i % 6 == 0:
            lab = measurement(f"{pid}-l{i}", subject, rng.choice(LABS), f"{when}T09:05:00Z")
            lab["valueQuantity"]["value"] = round(rng.uniform(0.5, 12), 1)
            out.append(lab | {"category": [{"coding": [{"code": "laboratory"}]}]})
            out.append(
                {
                    "resourceType": "DiagnosticReport",
                    "id": f"{pid}-r{i}",
                    "status": "final",
                    "subject": subject,
                    "code": {
                        "coding": [
                            {
                                "system": "http://loinc.org",
                                "code": "51990-0",
                                "display": "Basic metabolic panel",
                            }
                        ]
                    },
                    "effectiveDateTime": f"{when}T09:05:00Z",
                    "result": [{"reference": f"Observation/{pid}-l{i}"}],
                }
            )
        i += 1
    return out[:n_resources]


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
        lab = measurement(
            f"{pid}-o{i}", subject, rng.choice(LABS), f"2025-{rng.randint(1, 12):02d}-{rng.randint(10, 28)}"
        )
        lab["valueQuantity"]["value"] = round(rng.uniform(0.5, 12), 1)
        out.append(lab)
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
        out += claims(pid, i, subject, "2025-06-01", "visit")
    return out


def write_export(
    folder: Path,
    patients: int,
    oncology: float,
    onc_resources: int,
    peer: Path,
    sample: int,
    plain_resources: int = 0,
) -> dict[str, int]:
    """The export in `folder`; the lines of its first `sample` patients also in `peer`."""
    rng = random.Random(20261205)
    files: dict[Path, Any] = {}
    counts = {"patients": patients, "oncology_patients": 0, "lines": 0}
    try:
        for n in range(patients):
            pid = f"bench-{n:06d}"
            if rng.random() < oncology:
                counts["oncology_patients"] += 1
                lines = oncology_chart(pid, seed=n, n_resources=onc_resources)
            else:
                chart = (
                    synthea_like_chart(pid, rng, plain_resources)
                    if plain_resources
                    else plain_chart(pid, rng)
                )
                lines = [json.dumps(r) for r in chart]
            for line in lines:
                rtype = json.loads(line[: line.index(",")] + "}")["resourceType"]
                for target in (folder, peer) if n < sample else (folder,):
                    path = target / f"{rtype}.ndjson"
                    if path not in files:
                        files[path] = path.open("w")
                    files[path].write(line + "\n")
                counts["lines"] += 1
    finally:
        for handle in files.values():
            handle.close()
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
        "--plain-resources",
        type=int,
        default=0,
        help="charts without cancer as Synthea-like records of this many resources (default: small ones)",
    )
    parser.add_argument("--peer-sample", type=int, default=200)
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
        export = write_export(
            folder,
            args.patients,
            args.oncology,
            args.onc_resources,
            sample,
            args.peer_sample,
            args.plain_resources,
        )
        counts = sorted({int(w) for w in args.workers.split(",")})
        every: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
        for repeat in range(args.repeat):
            # Alternating which worker count goes first, so a slow moment of the machine does not
            # always fall on the same one.
            for n in counts if repeat % 2 == 0 else counts[::-1]:
                every[n].append(screen(folder, n, work, repeat))
        report: dict[str, Any] = {
            "machine": machine(),
            "export": export,
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

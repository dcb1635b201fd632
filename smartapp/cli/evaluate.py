"""`secondlook evaluate PATH`: evaluate a FHIR Bundle / resource / NDJSON file / folder of NDJSON files."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from fhirmaps.bundles import parse_json_text
from smartapp.engine import EngineOptions, evaluate_resources, to_document
from smartapp.findings import DataIssue


class InputError(Exception):
    """The input is not readable FHIR JSON."""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("evaluate", help="evaluate FHIR data for second-opinion triggers")
    parser.add_argument(
        "path", type=Path, help="FHIR Bundle or resource JSON, an NDJSON file, or a folder of NDJSON files"
    )
    parser.add_argument(
        "--as-of",
        dest="as_of",
        type=date.fromisoformat,
        default=None,
        help="evaluation date YYYY-MM-DD (default: today)",
    )
    parser.add_argument("--format", choices=("json", "text"), default="json")
    parser.add_argument("--rare-definition", choices=("rarecare", "nci"), default="rarecare")


def load_resources(path: Path, skipped: list[DataIssue] | None = None) -> list[dict[str, Any]]:
    """FHIR resources of a file or folder; NDJSON lines that are not JSON go to `skipped` (or fail the
    whole input when no list is given)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".ndjson", ".json", ".jsonl"))
        if not files:
            raise InputError(f"{path}: folder has no .ndjson or .json files")
        return [r for f in files for r in load_resources(f, skipped)]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read file ({exc.__class__.__name__})") from exc
    items, bad = parse_json_text(text)
    if bad and (skipped is None or not items):
        raise InputError(f"{path}: line {bad[0]} is not JSON")
    if skipped is not None:
        skipped.extend(
            DataIssue(
                resource=path.name,
                reason=(
                    f"Line {number} of {path.name} is not valid JSON and was not read; "
                    "if it held this patient's data, that data was not assessed."
                ),
            )
            for number in bad
        )
    resources = [i for i in items if isinstance(i, dict) and isinstance(i.get("resourceType"), str)]
    if not resources:
        raise InputError(f"{path}: no FHIR resources found")
    return resources


def _text(document: dict[str, Any]) -> str:
    lines = []
    for patient in document["patients"]:
        lines.append(patient["patient"])
        lines += [f"  {note}" for note in patient.get("notes", [])]
        if patient["time_critical"]:
            lines.append(
                f"  TIME-CRITICAL: {patient['time_critical']['reason']} {patient['time_critical']['advice']}"
            )
        for finding in patient["findings"]:
            lines.append(f"  [{finding['urgency']}] {finding['trigger']}: {finding['summary']}")
            for ev in finding["evidence"]:
                lines.append(f"      - {ev['reference']} {ev['path']}: {ev['text'][:160]}")
        for issue in patient["data_issues"]:
            lines.append(f"  data issue: {issue['resource']}: {issue['reason']}")
        if not patient["findings"] and not patient["time_critical"] and not patient.get("notes"):
            lines.append("  no second-opinion triggers found in the data provided")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    as_of = args.as_of or date.today()  # the clock is read only here, in the CLI layer
    try:
        skipped: list[DataIssue] = []
        resources = load_resources(args.path, skipped)
        if not any(r.get("resourceType") == "Patient" or _has_patient(r) for r in resources):
            raise InputError(f"{args.path}: no Patient found in the input")
        results = evaluate_resources(
            resources, as_of=as_of, options=EngineOptions(rare_definition=args.rare_definition)
        )
        if not results:
            raise InputError(f"{args.path}: no Patient found in the input")
        for result in results:
            result.data_issues.extend(skipped)
        if skipped:
            sys.stderr.write(
                f"secondlook evaluate: {len(skipped)} line(s) are not JSON and were skipped; "
                "each patient's data issues list them\n"
            )
    except InputError as exc:
        sys.stderr.write(f"secondlook evaluate: {exc}\n")
        return 2
    document = to_document(results)
    if args.format == "text":
        sys.stdout.write(_text(document))
    else:
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return 0


def _has_patient(resource: dict[str, Any]) -> bool:
    if resource.get("resourceType") != "Bundle":
        return False
    return any(
        isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") == "Patient"
        for e in resource.get("entry") or []
    )

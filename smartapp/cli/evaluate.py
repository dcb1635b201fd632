"""`secondlook evaluate PATH`: evaluate a FHIR Bundle / resource / NDJSON file / folder of NDJSON files."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from smartapp.engine import EngineOptions, evaluate_resources, to_document


class InputError(Exception):
    """The input is not readable FHIR JSON."""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("evaluate", help="evaluate FHIR data for second-opinion triggers")
    parser.add_argument("path", type=Path, help="FHIR Bundle or resource JSON, an NDJSON file, or a folder of NDJSON files")
    parser.add_argument("--as-of", dest="as_of", type=date.fromisoformat, default=None, help="evaluation date YYYY-MM-DD (default: today)")
    parser.add_argument("--format", choices=("json", "text"), default="json")
    parser.add_argument("--rare-definition", choices=("rarecare", "nci"), default="rarecare")


def load_resources(path: Path) -> list[dict[str, Any]]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".ndjson", ".json", ".jsonl"))
        if not files:
            raise InputError(f"{path}: folder has no .ndjson or .json files")
        return [r for f in files for r in load_resources(f)]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read file ({exc.__class__.__name__})") from exc
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}: line {number} is not JSON") from exc
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
            lines.append(f"  TIME-CRITICAL: {patient['time_critical']['reason']} {patient['time_critical']['advice']}")
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
        resources = load_resources(args.path)
        if not any(r.get("resourceType") == "Patient" or _has_patient(r) for r in resources):
            raise InputError(f"{args.path}: no Patient found in the input")
        results = evaluate_resources(resources, as_of=as_of, options=EngineOptions(rare_definition=args.rare_definition))
        if not results:
            raise InputError(f"{args.path}: no Patient found in the input")
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
    return any(isinstance(e, dict) and isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") == "Patient"
               for e in resource.get("entry") or [])

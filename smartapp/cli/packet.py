"""`secondlook packet BUNDLE --patient ID --out DIR`: draft one patient's referral packet from a
FHIR Bundle and write packet.pdf and packet.json (the FHIR document Bundle, the PDF inside it)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fhirmaps import document
from smartapp.cli.evaluate import InputError, load_resources
from smartapp.packet.directory import DirectoryError, load_directory
from smartapp.packet.draft import draft_for_patient
from smartapp.packet.pdf import render_pdf


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "packet", help="draft a second-opinion referral packet (PDF + FHIR document)"
    )
    parser.add_argument(
        "bundle", type=Path, help="FHIR Bundle or resource JSON, an NDJSON file, or a folder of NDJSON files"
    )
    parser.add_argument("--patient", required=True, help="the Patient id (with or without 'Patient/')")
    parser.add_argument("--out", type=Path, required=True, help="folder for packet.pdf and packet.json")
    parser.add_argument(
        "--as-of",
        dest="as_of",
        type=date.fromisoformat,
        default=None,
        help="evaluation date YYYY-MM-DD (default: today)",
    )
    parser.add_argument(
        "--destination", default="", help="directory key CENTER/PROGRAM, e.g. msk/msk-more-health"
    )
    parser.add_argument("--directory", type=Path, default=None, help="a site's own center directory JSON")
    parser.add_argument(
        "--referrer",
        default="",
        help=(
            "the referring clinician in the bundle, Practitioner/ID or PractitionerRole/ID (as a "
            "launch's fhirUser)"
        ),
    )
    parser.add_argument(
        "--sender-name", default="", help="the referring clinician's name (overrides --referrer's)"
    )
    parser.add_argument("--sender-organization", default="")
    parser.add_argument("--sender-contact", default="")


def run(args: argparse.Namespace) -> int:
    as_of = args.as_of or date.today()  # the clock is read only here, in the CLI layer
    created = datetime.now(UTC).isoformat(timespec="seconds")
    patient_ref = args.patient if args.patient.startswith("Patient/") else f"Patient/{args.patient}"
    try:
        resources = load_resources(args.bundle)
        packet = draft_for_patient(resources, patient_ref, as_of=as_of, created=created, user=args.referrer)
        if args.destination:
            option = load_directory(args.directory).get(args.destination)
            if option is None:
                raise InputError(f"--destination {args.destination}: not in the center directory")
            packet.destination = option.destination()
    except (InputError, DirectoryError) as exc:
        sys.stderr.write(f"secondlook packet: {exc}\n")
        return 2
    except LookupError:
        sys.stderr.write(f"secondlook packet: {patient_ref} is not in {args.bundle}\n")
        return 2
    packet.sender.name = args.sender_name or packet.sender.name
    packet.sender.organization = args.sender_organization or packet.sender.organization
    packet.sender.contact = args.sender_contact or packet.sender.contact
    args.out.mkdir(parents=True, exist_ok=True)
    pdf = render_pdf(packet)
    (args.out / "packet.pdf").write_bytes(pdf)
    bundle = document.document_bundle(packet.to_json(), timestamp=created, pdf=pdf)
    (args.out / "packet.json").write_text(json.dumps(bundle, indent=2) + "\n", encoding="utf-8")
    sys.stderr.write(f"wrote {args.out / 'packet.pdf'} and {args.out / 'packet.json'}\n")
    return 0

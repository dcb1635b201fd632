"""Golden letters and document structures: `python -m tests.packet.golden` rewrites
tests/data/packets/<case>/letter.txt and document.json from the demo charts. Read every file it
changes before committing: they are what a receiving center gets."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from fhirmaps import document
from fhirmaps.narrative import html_to_text
from smartapp.packet.directory import load_directory
from smartapp.packet.draft import draft_for_patient
from smartapp.packet.model import ReferralPacket
from smartapp.packet.pdf import render_html

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "packets"
FIXTURES = ROOT / "demo" / "demo_ehr" / "fixtures" / "patients"
CREATED = "2026-11-25T09:00:00+00:00"


def cases() -> list[str]:
    return sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.json").exists())


def packet_for(case: str) -> ReferralPacket:
    spec = json.loads((GOLDEN / case / "expected.json").read_text())
    bundle = json.loads((FIXTURES / spec["bundle"]).read_text())
    packet = draft_for_patient(
        [bundle],
        spec["patient"]["reference"],
        as_of=date.fromisoformat(spec["as_of"]),
        created=CREATED,
        user=spec.get("referrer", ""),
    )
    option = load_directory().get(spec["destination"])
    assert option is not None, spec["destination"]
    packet.destination = option.destination()
    return packet


def letter(packet: ReferralPacket) -> str:
    return html_to_text(render_html(packet)) + "\n"


def structure(packet: ReferralPacket) -> dict[str, Any]:
    doc = document.document_bundle(packet.to_json(), timestamp=CREATED, pdf=b"%PDF-1.7")
    composition = doc["entry"][0]["resource"]
    return {
        "resource_types": dict(sorted(Counter(e["resource"]["resourceType"] for e in doc["entry"]).items())),
        "sections": [
            {"code": s["code"]["coding"][0]["code"], "title": s["title"], "entries": len(s.get("entry", []))}
            for s in composition["section"]
        ],
    }


def main() -> None:
    for case in cases():
        packet = packet_for(case)
        (GOLDEN / case / "letter.txt").write_text(letter(packet))
        (GOLDEN / case / "document.json").write_text(json.dumps(structure(packet), indent=2) + "\n")


if __name__ == "__main__":
    main()

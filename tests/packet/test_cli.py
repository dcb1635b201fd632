"""`secondlook packet BUNDLE --patient ID --out DIR`."""

from __future__ import annotations

import json
from pathlib import Path

import pypdf

from smartapp.cli.main import main

BUNDLE = (
    Path(__file__).resolve().parents[2]
    / "demo"
    / "demo_ehr"
    / "fixtures"
    / "patients"
    / "01-gist-vs-lms.json"
)


def test_packet_writes_pdf_and_document_bundle(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "packet",
            str(BUNDLE),
            "--patient",
            "demo-gist",
            "--out",
            str(out),
            "--as-of",
            "2026-11-25",
            "--destination",
            "cleveland-clinic/cleveland-myconsult-pathology",
            "--sender-name",
            "Dr Ada Jones",
        ]
    )
    assert code == 0
    bundle = json.loads((out / "packet.json").read_text())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "document"
    entries = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    composition = bundle["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition" and composition["status"] == "preliminary"
    patient = entries[composition["subject"]["reference"]]
    assert patient["identifier"][0]["value"] == "RB-2026-100481"
    request = next(
        r for r in entries.values() if r["resourceType"] == "ServiceRequest" and r.get("identifier")
    )
    role = entries[request["requester"]["reference"]]
    assert entries[role["practitioner"]["reference"]]["name"] == [{"text": "Dr Ada Jones"}]
    assert "Cleveland Clinic" in entries[request["performer"][0]["reference"]]["name"]
    text = " ".join(" ".join(p.extract_text().split()) for p in pypdf.PdfReader(out / "packet.pdf").pages)
    assert "GIST vs leiomyosarcoma" in text and "MRN RB-2026-100481" in text and "Dr Ada Jones" in text


def test_referrer_from_the_bundle_fills_the_sender(tmp_path: Path) -> None:
    code = main(
        [
            "packet",
            str(BUNDLE),
            "--patient",
            "demo-gist",
            "--out",
            str(tmp_path),
            "--as-of",
            "2026-11-25",
            "--referrer",
            "Practitioner/gist-surg",
        ]
    )
    assert code == 0
    text = " ".join(
        " ".join(p.extract_text().split()) for p in pypdf.PdfReader(tmp_path / "packet.pdf").pages
    )
    assert "From: Dr. Miriam Adeyemi, NPI 1912000105" in text


def test_unknown_patient_or_destination_is_an_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["packet", str(BUNDLE), "--patient", "nobody", "--out", str(tmp_path)]) == 2
    assert "Patient/nobody is not in" in capsys.readouterr().err
    assert (
        main(
            [
                "packet",
                str(BUNDLE),
                "--patient",
                "demo-gist",
                "--out",
                str(tmp_path),
                "--destination",
                "nowhere/x",
            ]
        )
        == 2
    )
    assert not (tmp_path / "packet.pdf").exists()

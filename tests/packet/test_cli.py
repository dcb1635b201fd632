"""`secondlook packet BUNDLE --patient ID --out DIR`."""

from __future__ import annotations

import json
from pathlib import Path

import pypdf

from smartapp.cli.main import main

BUNDLE = Path(__file__).resolve().parents[2] / "smartapp" / "demo_ehr" / "fixtures" / "patients" / "01-gist-vs-lms.json"


def test_packet_writes_pdf_and_document_bundle(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(["packet", str(BUNDLE), "--patient", "demo-gist", "--out", str(out), "--as-of", "2026-11-25",
                 "--destination", "cleveland-clinic/cleveland-myconsult-pathology", "--sender-name", "Dr Ada Jones"])
    assert code == 0
    bundle = json.loads((out / "packet.json").read_text())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "document"
    composition, patient, request = (e["resource"] for e in bundle["entry"])
    assert composition["resourceType"] == "Composition" and composition["status"] == "preliminary"
    assert patient["id"] == "demo-gist"
    assert request["requester"] == {"display": "Dr Ada Jones"}
    assert "Cleveland Clinic" in request["performer"][0]["display"]
    text = " ".join(" ".join(p.extract_text().split()) for p in pypdf.PdfReader(out / "packet.pdf").pages)
    assert "GIST vs leiomyosarcoma" in text and "MRN RB-2026-100481" in text and "Dr Ada Jones" in text


def test_unknown_patient_or_destination_is_an_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["packet", str(BUNDLE), "--patient", "nobody", "--out", str(tmp_path)]) == 2
    assert "Patient/nobody is not in" in capsys.readouterr().err
    assert main(["packet", str(BUNDLE), "--patient", "demo-gist", "--out", str(tmp_path), "--destination", "nowhere/x"]) == 2
    assert not (tmp_path / "packet.pdf").exists()

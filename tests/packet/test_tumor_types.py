"""The packet's tumor type from its diagnosis lines, and the words a directory may use."""

from __future__ import annotations

import pytest

from smartapp.packet.model import DiagnosisLine
from smartapp.packet.tumor_types import packet_tumor_types, tumor_types


def line(text: str, *codes: str) -> DiagnosisLine:
    return DiagnosisLine(text=text, codes=list(codes))


@pytest.mark.parametrize(
    ("lines", "keys"),
    [
        (
            [line("Malignant neoplasm of upper-outer quadrant of left female breast", "ICD-10-CM C50.412")],
            ["breast"],
        ),
        ([line("Invasive ductal carcinoma", "ICD-O-3 8500/3")], []),
        ([line("GIST of stomach", "ICD-10-CM C49.A2")], ["gist", "sarcoma", "gastrointestinal"]),
        ([line("Leiomyosarcoma of stomach", "SNOMED CT 363346000", "ICD-O-3 8890/3")], ["sarcoma"]),
        ([line("Lipoma", "ICD-O-3 8850/0")], []),  # benign: not a sarcoma
        ([line("Follicular lymphoma", "ICD-10-CM C82.18", "ICD-O-3 9690/3")], ["lymphoma", "hematologic"]),
        ([line("AML", "ICD-10-CM C92.00")], ["leukemia", "hematologic"]),
        (
            [line("Uveal melanoma", "ICD-O-3 8720/3"), line("Choroid", "ICD-10-CM C69.31")],
            ["melanoma", "eye"],
        ),
        (
            [line("Malignant neoplasm of sigmoid colon", "ICD-10-CM C18.7")],
            ["colorectal", "gastrointestinal"],
        ),
        ([line("Osteosarcoma of femur", "ICD-10-CM C40.22")], ["sarcoma", "bone"]),
        ([line("Carcinoid of ileum", "ICD-10-CM C7A.012")], ["neuroendocrine"]),
        ([line("Malignant neoplasm of the prostate", "ICD-10 C61")], ["prostate", "genitourinary"]),
    ],
)
def test_codes_give_the_tumor_type(lines: list[DiagnosisLine], keys: list[str]) -> None:
    assert packet_tumor_types(lines) == keys


def test_words_are_read_only_when_no_code_maps() -> None:
    assert packet_tumor_types(
        [line("Adenocarcinoma of sigmoid colon, metastatic to liver", "ICD-O-3 8140/3")]
    ) == [
        "colorectal",
        "gastrointestinal",
    ]
    assert packet_tumor_types([line("Carcinosarcoma of the uterus")]) == ["gynecologic"]
    assert packet_tumor_types([line("Pancreatic adenocarcinoma")]) == ["pancreas", "gastrointestinal"]


def test_a_metastasis_is_not_the_tumor_type() -> None:
    lines = [
        line("Secondary malignant neoplasm of liver", "ICD-10-CM C78.7"),
        line("Secondary malignant neoplasm of bone", "ICD-10-CM C79.51"),
        line("Pulmonary metastases", "ICD-10-CM C78.00"),
        line("Secondary malignant neoplasm of brain"),
    ]
    assert packet_tumor_types(lines) == []
    assert packet_tumor_types([*lines, line("Breast cancer", "ICD-10-CM C50.911")]) == ["breast"]


def test_unknown_diagnoses_give_no_type() -> None:
    assert packet_tumor_types([]) == []
    assert packet_tumor_types([line("Atypical ductal hyperplasia", "SNOMED CT 49713003")]) == []


@pytest.mark.parametrize(
    ("word", "key"),
    [
        ("breast", "breast"),
        ("Breast cancer", "breast"),
        ("Soft tissue sarcoma", "sarcoma"),
        ("bone tumors", "bone"),
        ("Head and neck", "head-and-neck"),
        ("colon", "colorectal"),
        ("all", "all"),
        ("Any", "all"),
        ("breats", None),
    ],
)
def test_directory_words_name_tumor_types(word: str, key: str | None) -> None:
    assert tumor_types().key_for(word) == key

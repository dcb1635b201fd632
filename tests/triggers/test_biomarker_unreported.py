"""incomplete-biomarker says when a predictive biomarker has no result at all: HER2 for invasive
breast carcinoma, driver mutations for metastatic non-squamous lung cancer. A result anywhere (an
Observation, a report line, an order) or a cancer it does not apply to says nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.fhirmaps.builders import condition, medication, observation, report, service_request
from tests.triggers.engine_helpers import run

AS_OF = date(2026, 3, 1)
BREAST = condition("c1", "C50.412", "Invasive ductal carcinoma of left breast", onset="2026-01-10")
CORE = report("r1", "Invasive ductal carcinoma, grade 2. ER positive (95%). PR positive (60%).")


def notes(*resources: dict[str, Any]) -> list[str]:
    return run(*resources, as_of=AS_OF).notes


def test_breast_carcinoma_with_er_and_pr_but_no_her2_is_said() -> None:
    assert notes(BREAST, CORE) == [
        "Whether the HER2 work-up is complete could not be assessed: no HER2 result for the invasive "
        "breast carcinoma is in any report, note or observation."
    ]


def test_a_her2_result_in_a_report_line_an_observation_or_an_order_is_enough() -> None:
    stated = report("r1", "Invasive ductal carcinoma. ER positive. HER2 negative (IHC 1+).")
    structured = observation("o1", "85319-2", "HER2 by immune stain", text_value="Negative (score 1+)")
    ordered = service_request("s1", "HER2 IHC on block A2")
    for extra in (stated, structured, ordered):
        assert not any("HER2" in n for n in notes(BREAST, extra)), extra["resourceType"]


def test_ductal_carcinoma_in_situ_needs_no_her2() -> None:
    dcis = condition("c1", "D05.12", "Intraductal carcinoma in situ of left breast", onset="2026-01-10")
    assert notes(dcis) == []


def test_a_breast_cancer_recorded_more_than_two_years_ago_without_distant_disease_says_nothing() -> None:
    within = condition("c1", "C50.412", "Invasive ductal carcinoma of left breast", onset="2024-03-01")
    beyond = condition("c1", "C50.412", "Invasive ductal carcinoma of left breast", onset="2024-02-29")
    bone = condition("c2", "C79.51", "Bone metastases", onset="2026-01-20")
    assert len(notes(within)) == 1
    assert notes(beyond) == []
    assert any("HER2" in n for n in notes(beyond, bone))  # metastatic: HER2 decides treatment again


LUNG = condition("c1", "C34.12", "Adenocarcinoma of left upper lobe of lung", onset="2026-01-05")
LIVER = condition("c2", "C78.7", "Liver metastases", onset="2026-01-05")


def test_metastatic_lung_adenocarcinoma_without_molecular_results_names_egfr() -> None:
    said = notes(LUNG, LIVER)
    assert len(said) == 1 and "no EGFR, ALK, ROS1 or other driver mutation result" in said[0]


def test_a_molecular_result_squamous_histology_or_regional_nodes_say_nothing() -> None:
    egfr = report("r1", "Lung, biopsy: adenocarcinoma. EGFR exon 19 deletion detected by NGS.")
    squamous = condition("c1", "C34.12", "Squamous cell carcinoma of left upper lobe of lung")
    nodes = condition("c2", "C77.1", "Metastatic carcinoma in mediastinal lymph nodes", onset="2026-01-05")
    assert notes(LUNG, LIVER, egfr) == []
    assert notes(squamous, LIVER) == []
    assert notes(LUNG, nodes) == []


def test_a_line_saying_testing_was_not_done_is_no_result() -> None:
    not_done = report("r1", "Lung, biopsy: adenocarcinoma. EGFR and ALK testing not performed.")
    chemo = medication("m1", "carboplatin", date="2026-01-20")
    result = run(LUNG, LIVER, not_done, chemo, as_of=AS_OF)
    assert "guideline-deviation" in result.triggers
    assert any("EGFR" in n for n in result.notes)

from tests.fhirmaps.builders import condition, medication, note, observation, report, service_request
from tests.triggers.engine_helpers import fired

BREAST = condition("c1", "C50.912", "Malignant neoplasm of left female breast")
BONE = condition("c2", "C79.51", "Secondary malignant neoplasm of bone")
HER2 = observation("o1", "85319-2", "HER2 by IHC", text_value="3+ (positive)")


def test_g1_her2_positive_metastatic_breast_without_anti_her2_fires() -> None:
    assert "guideline-deviation" in fired(BREAST, BONE, HER2, medication("m1", "letrozole 2.5 mg"))


def test_g1_not_when_trastuzumab_ordered_or_trial_or_refusal() -> None:
    assert "guideline-deviation" not in fired(BREAST, BONE, HER2, medication("m1", "trastuzumab 8 mg/kg"))
    trial = {
        "resourceType": "ResearchSubject",
        "id": "rs1",
        "status": "on-study",
        "study": {"display": "Trial"},
        "individual": {"reference": "Patient/p1"},
    }
    assert "guideline-deviation" not in fired(BREAST, BONE, HER2, trial)
    refusal = note(
        "n1", "She declines HER2-directed therapy after a full discussion; informed refusal documented."
    )
    assert "guideline-deviation" not in fired(BREAST, BONE, HER2, refusal)


def test_g2_low_risk_prostate_with_prostatectomy_planned_and_no_as_discussion() -> None:
    prostate = condition("c1", "C61", "Malignant neoplasm of prostate")
    biopsy = report(
        "r1",
        "FINAL DIAGNOSIS:\n"
        "Prostate, needle biopsy: Adenocarcinoma, Gleason score 3+3=6 (Grade Group 1), 1 of 12 cores. "
        "Clinical stage cT1c.\n",
    )
    psa = observation("o1", "2857-1", "PSA", value=4.8, unit="ng/mL")
    surgery = service_request("s1", "Robotic radical prostatectomy", when="2026-04-15")
    assert "guideline-deviation" in fired(prostate, biopsy, psa, surgery)
    discussed = note("n1", "Options reviewed including active surveillance; patient prefers surgery.")
    assert "guideline-deviation" not in fired(prostate, biopsy, psa, surgery, discussed)


def test_g3_metastatic_nsclc_on_chemo_without_molecular_testing() -> None:
    lung = condition(
        "c1",
        "C34.11",
        "Malignant neoplasm of upper lobe, right bronchus or lung",
        text="Adenocarcinoma of right upper lobe",
    )
    mets = condition("c2", "C79.31", "Secondary malignant neoplasm of brain", onset="2025-09-20")
    chemo = medication("m1", "carboplatin AUC 5 + pemetrexed 500 mg/m2")
    pdl1 = observation("o1", "85147-7", "PD-L1 by immune stain", text_value="TPS 60%")
    assert "guideline-deviation" in fired(lung, mets, chemo, pdl1)
    ngs = report("r1", "FINAL DIAGNOSIS:\nNGS panel: EGFR exon 19 deletion detected; ALK, ROS1 negative.\n")
    assert "guideline-deviation" not in fired(lung, mets, chemo, ngs)

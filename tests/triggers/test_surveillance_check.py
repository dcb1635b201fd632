from tests.fhirmaps.builders import condition, note, observation, report
from tests.triggers.engine_helpers import fired, run

PROSTATE = condition("c1", "C61", "Malignant neoplasm of prostate")
AS_NOTE = note(
    "n1", "Assessment and plan: low-risk prostate cancer. Plan active surveillance with PSA every 6 months."
)


def _complete_biopsy(cores: str = "2 of 12 cores", pct: str = "20%") -> dict:
    return report(
        "r1",
        f"FINAL DIAGNOSIS:\nProstate, needle biopsies: Adenocarcinoma, Gleason score 3+3=6 (Grade Group 1), "
        f"{cores} positive, involving {pct} of the core. Clinical stage cT1c.\n",
    )


def test_all_criteria_documented_and_met_does_not_fire() -> None:
    psa = observation("o1", "2857-1", "PSA", value=5.1, unit="ng/mL")
    mri = report(
        "r2",
        "IMPRESSION: PI-RADS 2. Prostate volume 50 mL. PSA density 0.10.\n",
        kind="imaging",
        title="MRI prostate",
    )
    assert "surveillance-check" not in fired(PROSTATE, AS_NOTE, psa, _complete_biopsy(), mri)


def test_missing_psa_density_fires_and_names_the_gap() -> None:
    psa = observation("o1", "2857-1", "PSA", value=5.1, unit="ng/mL")
    finding = next(
        f
        for f in run(PROSTATE, AS_NOTE, psa, _complete_biopsy()).findings
        if f.trigger == "surveillance-check"
    )
    assert "PSA density" in finding.summary


def test_too_many_cores_is_a_violation() -> None:
    psa = observation("o1", "2857-1", "PSA", value=5.1, unit="ng/mL")
    mri = report("r2", "IMPRESSION: Prostate volume 50 mL.\n", kind="imaging", title="MRI prostate")
    finding = next(
        f
        for f in run(PROSTATE, AS_NOTE, psa, _complete_biopsy(cores="5 of 12 cores"), mri).findings
        if f.trigger == "surveillance-check"
    )
    assert "5 positive cores" in finding.summary


def test_watchful_waiting_for_cll_does_not_fire() -> None:
    cll = condition(
        "c2", "C91.10", "Chronic lymphocytic leukemia of B-cell type not having achieved remission"
    )
    ww = note("n2", "Rai stage 0 CLL, asymptomatic. Plan watchful waiting with CBC every 3 months.")
    assert "surveillance-check" not in fired(cll, ww)


def test_surveillance_after_completed_treatment_does_not_fire() -> None:
    done = {
        "resourceType": "Procedure",
        "id": "pr1",
        "status": "completed",
        "code": {"text": "Radical prostatectomy"},
        "subject": {"reference": "Patient/p1"},
        "performedDateTime": "2025-05-01",
    }
    plan = note(
        "n3", "Post-prostatectomy: surveillance protocol with PSA every 6 months; active surveillance of PSA."
    )
    assert "surveillance-check" not in fired(PROSTATE, done, plan)


def test_surveillance_discussed_but_prostatectomy_chosen_is_not_surveillance() -> None:
    from tests.fhirmaps.builders import service_request

    chose = note(
        "n9", "Active surveillance was discussed; he prefers surgery. Plan robotic radical prostatectomy."
    )
    surgery = service_request("s1", "Robotic radical prostatectomy", when="2026-04-20")
    assert "surveillance-check" not in fired(PROSTATE, chose, surgery)

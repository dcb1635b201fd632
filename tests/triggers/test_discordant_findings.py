from tests.fhirmaps.builders import LOINC, SNOMED, cc, condition, observation, report
from tests.triggers.engine_helpers import fired, run


def test_gist_condition_vs_leiomyosarcoma_report_fires() -> None:
    gist = condition("c1", "C49.A2", "Gastrointestinal stromal tumor of stomach")
    path = report(
        "r1",
        "FINAL DIAGNOSIS:\nStomach, wedge resection: Leiomyosarcoma, 6 cm.\n"
        "IHC: CD117 negative, DOG1 negative, desmin positive.\n",
    )
    result = run(gist, path)
    finding = next(f for f in result.findings if f.trigger == "discordant-findings")
    assert {e.reference for e in finding.evidence} >= {"Condition/c1", "DiagnosticReport/r1"}


def test_gastric_leiomyosarcoma_without_kit_or_dog1_fires() -> None:
    path = report(
        "r1",
        "FINAL DIAGNOSIS:\nStomach, antrum, biopsy: Spindle cell neoplasm consistent with leiomyosarcoma.\n"
        "IHC: SMA positive; CD117 and DOG1 not performed.\n",
    )
    assert "discordant-findings" in fired(path)


def test_gastric_leiomyosarcoma_with_kit_and_dog1_negative_does_not_fire() -> None:
    path = report(
        "r1",
        "FINAL DIAGNOSIS:\nStomach, antrum, biopsy: Leiomyosarcoma.\n"
        "IHC: CD117 (KIT) negative; DOG1 negative; desmin positive.\n",
    )
    assert "discordant-findings" not in fired(path)


def test_follicular_vs_mantle_cell_across_sources_fires() -> None:
    fl = condition("c1", "C82.03", "Follicular lymphoma grade I, intra-abdominal lymph nodes")
    mcl = report(
        "r1",
        "FINAL DIAGNOSIS:\nLymph node, excision: Mantle cell lymphoma; cyclin D1 positive, SOX11 positive.\n",
    )
    assert "discordant-findings" in fired(fl, mcl)


def test_cd5_positive_follicular_without_cyclin_d1_fires() -> None:
    text = (
        "FINAL DIAGNOSIS:\nLymph node: Follicular lymphoma, grade 1-2.\n"
        "IHC: CD20 positive, CD10 positive, CD5 positive. Cyclin D1 not performed.\n"
    )
    assert "discordant-findings" in fired(report("r1", text))


def test_gleason_grade_group_1_vs_3_fires_but_4_vs_5_does_not() -> None:
    biopsy = report(
        "r1",
        "FINAL DIAGNOSIS:\n"
        "Prostate, left base, needle biopsy: Adenocarcinoma, Gleason score 3+3=6 (Grade Group 1).\n",
        date="2025-10-01",
    )
    outside = report(
        "r2",
        "FINAL DIAGNOSIS:\n"
        "Prostate, left base (outside slides reviewed): "
        "Adenocarcinoma, Gleason score 4+3=7 (Grade Group 3).\n",
        date="2025-12-01",
    )
    assert "discordant-findings" in fired(biopsy, outside)
    gg4 = report(
        "r3",
        "FINAL DIAGNOSIS:\nProstate: Adenocarcinoma, Gleason score 4+4=8 (Grade Group 4).\n",
        date="2025-10-01",
    )
    gg5 = report(
        "r4",
        "FINAL DIAGNOSIS:\nProstate: Adenocarcinoma, Gleason score 4+5=9 (Grade Group 5).\n",
        date="2025-12-01",
    )
    assert "discordant-findings" not in fired(gg4, gg5)


def test_gleason_observations_crossing_threshold_fire() -> None:
    gg1 = observation("o1", "94734-1", "Grade group", coded=cc(SNOMED, "1279715000", "Grade group 1"))
    gg2 = observation(
        "o2", "94734-1", "Grade group", coded=cc(SNOMED, "1279714001", "Grade group 2"), date="2026-02-01"
    )
    assert "discordant-findings" in fired(gg1, gg2)


def test_synonyms_do_not_fire() -> None:
    idc = condition(
        "c1",
        "C50.411",
        "Malignant neoplasm of upper-outer quadrant of right female breast",
        text="Infiltrating ductal carcinoma",
    )
    nst = report(
        "r1",
        "FINAL DIAGNOSIS:\n"
        "Breast, right, core biopsy: Invasive carcinoma of no special type, Nottingham grade 2.\n",
    )
    assert "discordant-findings" not in fired(idc, nst)


def test_corrected_report_that_only_fixed_a_typo_does_not_fire() -> None:
    text = (
        "CORRECTED REPORT\nFINAL DIAGNOSIS:\n"
        "Colon, sigmoid, biopsy: Invasive adenocarcinoma, moderately differentiated.\n"
        "COMMENT: Report corrected to fix the specimen laterality typo; diagnosis unchanged.\n"
    )
    assert "discordant-findings" not in fired(report("r1", text, status="corrected"))


def test_amended_report_with_changed_diagnosis_fires() -> None:
    text = (
        "AMENDED FINAL DIAGNOSIS:\n"
        "Lung, right upper lobe, core biopsy: Large cell neuroendocrine carcinoma.\n"
        "REASON FOR AMENDMENT:\n"
        "Diagnosis changed; originally reported as poorly differentiated adenocarcinoma.\n"
    )
    assert "discordant-findings" in fired(report("r1", text, status="amended"))


def test_observation_loinc_is_used_for_code_lookup() -> None:
    assert LOINC.endswith("loinc.org")


def test_different_cores_of_one_biopsy_session_are_not_discordant() -> None:
    core_a = report(
        "r1",
        "FINAL DIAGNOSIS:\nProstate, right base: Adenocarcinoma, Gleason score 3+3=6 (Grade Group 1).\n",
        date="2026-01-05",
    )
    core_b = report(
        "r2",
        "FINAL DIAGNOSIS:\nProstate, left apex: Adenocarcinoma, Gleason score 4+3=7 (Grade Group 3).\n",
        date="2026-01-05",
    )
    assert "discordant-findings" not in fired(core_a, core_b)


def test_bone_osteosarcoma_report_is_not_a_gi_sarcoma() -> None:
    text = (
        "FINAL DIAGNOSIS:\n"
        "Left distal femur, core biopsy: High-grade sarcoma, consistent with conventional osteosarcoma.\n"
        "COMMENT: Tumor cells directly producing osteoid establish the diagnosis.\n"
    )
    assert "discordant-findings" not in fired(report("r1", text))


def test_appended_report_with_unchanged_diagnosis_does_not_fire() -> None:
    text = (
        "FINAL DIAGNOSIS:\nLymph node, core biopsy: Diffuse large B-cell lymphoma, GCB subtype.\n"
        "ADDENDUM:\nMYC FISH negative. The diagnosis is unchanged: diffuse large B-cell lymphoma.\n"
    )
    result = run(report("r1", text, status="appended"))
    assert "discordant-findings" not in result.triggers
    assert result.time_critical is not None


def test_nsclc_nos_refined_to_squamous_is_not_discordant_but_sclc_vs_nsclc_is() -> None:
    nos = condition(
        "c1",
        "C34.11",
        "Malignant neoplasm of upper lobe, right bronchus or lung",
        text="Non-small cell lung cancer",
    )
    squamous = report(
        "r1",
        "FINAL DIAGNOSIS:\n"
        "Lung, right upper lobe, lobectomy: Squamous cell carcinoma of the lung, keratinizing.\n",
    )
    assert "discordant-findings" not in fired(nos, squamous)
    small_cell = report("r2", "FINAL DIAGNOSIS:\nLymph node, station 7, EBUS: Small cell carcinoma.\n")
    assert "discordant-findings" in fired(nos, small_cell)

from tests.fhirmaps.builders import SNOMED, condition, report
from tests.triggers.engine_helpers import fired, run


def test_cannot_rule_out_lymphoma_in_final_diagnosis_fires() -> None:
    text = (
        "FINAL DIAGNOSIS:\n"
        "Cervical lymph node, core biopsy: Atypical lymphoid infiltrate; lymphoma cannot be excluded.\n"
    )
    result = run(report("r1", text))
    finding = next(f for f in result.findings if f.trigger == "uncertain-pathology")
    assert any("cannot be excluded" in e.text for e in finding.evidence)


def test_hedge_only_in_clinical_history_does_not_fire() -> None:
    text = (
        "CLINICAL HISTORY: Suspicious for lymphoma, rule out lymphoma.\nFINAL DIAGNOSIS:\n"
        "Reactive follicular hyperplasia.\n"
    )
    assert "uncertain-pathology" not in fired(report("r1", text))


def test_negated_atypia_does_not_fire() -> None:
    text = (
        "FINAL DIAGNOSIS:\n"
        "Colon, random biopsies: Colonic mucosa with no significant abnormality; "
        "negative for dysplasia and malignancy. No atypical cells identified.\n"
    )
    assert "uncertain-pathology" not in fired(report("r1", text))


def test_benign_atypia_and_named_entities_do_not_fire() -> None:
    adh = "FINAL DIAGNOSIS:\nBreast, left, core biopsy: Atypical ductal hyperplasia.\n"
    carcinoid = "FINAL DIAGNOSIS:\nLung, right lower lobe, wedge: Atypical carcinoid tumor, 1.8 cm.\n"
    assert "uncertain-pathology" not in fired(report("r1", adh))
    result = run(report("r2", carcinoid))
    assert "uncertain-pathology" not in result.triggers
    assert "rare-cancer" in result.triggers


def test_borderline_ovarian_tumour_fires_as_defined_borderline_entity() -> None:
    text = (
        "FINAL DIAGNOSIS:\n"
        "Ovary, right, salpingo-oophorectomy: Serous borderline tumor, 7 cm, capsule intact.\n"
    )
    finding = next(f for f in run(report("r1", text)).findings if f.trigger == "uncertain-pathology")
    assert "borderline" in finding.summary


def test_borderline_resectable_is_not_pathology_uncertainty() -> None:
    text = (
        "FINAL DIAGNOSIS:\nPancreas, head, EUS-FNB: Adenocarcinoma.\n"
        "COMMENT: Radiology describes the tumour as borderline resectable.\n"
    )
    assert "uncertain-pathology" not in fired(report("r1", text))


def test_consistent_with_is_confident_and_favor_alone_does_not_fire() -> None:
    text = (
        "FINAL DIAGNOSIS:\n"
        "Liver, core biopsy: Metastatic adenocarcinoma, consistent with colorectal primary; "
        "favor colonic origin.\n"
    )
    assert "uncertain-pathology" not in fired(report("r1", text))


def test_uncertain_behaviour_codes_fire_and_a_provisional_condition_does_not() -> None:
    # A provisional problem-list entry (biopsy pending) is a work-up in progress, not uncertain pathology.
    assert "uncertain-pathology" not in fired(
        condition("c1", "C64.1", "Malignant neoplasm of right kidney", verification="provisional")
    )
    assert "uncertain-pathology" in fired(
        condition("c2", "D48.1", "Neoplasm of uncertain behavior of connective and other soft tissue")
    )
    assert "uncertain-pathology" not in fired(
        condition("c3", "D49.2", "Neoplasm of unspecified behavior of bone, soft tissue, and skin")
    )


def test_thymoma_coded_behaviour_1_is_whitelisted() -> None:
    result = run(condition("c1", "363346000", system=SNOMED, morphology="8580/1", topography="C37.9"))
    assert "uncertain-pathology" not in result.triggers
    assert "rare-cancer" in result.triggers


def test_preliminary_report_fires_until_a_final_report_follows() -> None:
    text = "FINAL DIAGNOSIS:\nColon, sigmoid, biopsy: Invasive adenocarcinoma.\n"
    assert "uncertain-pathology" in fired(report("r1", text, status="preliminary"))
    later = report("r2", text, status="final", date="2026-01-25")
    assert "uncertain-pathology" not in fired(report("r1", text, status="preliminary"), later)


def test_old_hedged_report_superseded_by_confident_final_report() -> None:
    old = report(
        "r1",
        "FINAL DIAGNOSIS:\nLymph node: Atypical lymphoid proliferation, lymphoma cannot be excluded.\n",
        date="2025-01-10",
    )
    new = report(
        "r2",
        "FINAL DIAGNOSIS:\nLymph node, excision: Classic Hodgkin lymphoma, nodular sclerosis type.\n",
        date="2025-11-10",
    )
    assert "uncertain-pathology" not in fired(old, new)


def test_versus_between_two_neoplasms_fires() -> None:
    text = (
        "FINAL DIAGNOSIS:\n"
        "Lung, left upper lobe, biopsy: Poorly differentiated non-small cell carcinoma, "
        "adenocarcinoma versus squamous cell carcinoma.\n"
    )
    assert "uncertain-pathology" in fired(report("r1", text))


def test_pending_her2_fish_in_a_breast_report_is_not_diagnostic_doubt() -> None:
    text = (
        "FINAL DIAGNOSIS:\nBreast, right, core: Invasive ductal carcinoma, grade 2.\n"
        "HER2 (IHC) 2+; HER2 FISH studies are pending.\n"
    )
    assert "uncertain-pathology" not in fired(report("r1", text))

from tests.fhirmaps.builders import ICD10, SNOMED, condition, report
from tests.triggers.engine_helpers import fired, run


def test_gist_coded_as_behaviour_1_in_mcode_extension_is_rare_and_not_uncertain() -> None:
    gist = condition(
        "c1",
        "363346000",
        "Malignant neoplastic disease",
        system=SNOMED,
        morphology="8936/1",
        topography="C16.2",
    )
    result = run(gist)
    assert "rare-cancer" in result.triggers
    assert "uncertain-pathology" not in result.triggers
    finding = next(f for f in result.findings if f.trigger == "rare-cancer")
    assert "GIST" in finding.summary
    assert finding.evidence[0].reference == "Condition/c1"


def test_gist_by_icd10_c49a() -> None:
    assert "rare-cancer" in fired(condition("c1", "C49.A2", "Gastrointestinal stromal tumor of stomach"))


def test_uveal_melanoma_by_morphology_and_topography() -> None:
    result = run(condition("c1", "363346000", system=SNOMED, morphology="8720/3", topography="C69.3"))
    finding = next(f for f in result.findings if f.trigger == "rare-cancer")
    assert "uveal" in finding.summary.lower()


def test_conjunctival_melanoma_is_rare_but_not_called_uveal() -> None:
    result = run(condition("c1", "363346000", system=SNOMED, morphology="8720/3", topography="C69.0"))
    finding = next(f for f in result.findings if f.trigger == "rare-cancer")
    assert "conjunctival" in finding.summary.lower()
    assert "uveal" not in finding.summary.lower()


def test_cutaneous_melanoma_and_small_cell_lung_are_not_rare() -> None:
    assert "rare-cancer" not in fired(condition("c1", "C43.5", "Malignant melanoma of trunk"))
    assert "rare-cancer" not in fired(
        condition("c2", "C34.11", "Malignant neoplasm of upper lobe", text="Small cell lung carcinoma")
    )


def test_mesothelioma_requires_malignant_behaviour() -> None:
    assert "rare-cancer" in fired(condition("c1", "C45.0", "Mesothelioma of pleura"))
    assert "rare-cancer" not in fired(
        condition("c1", "363346000", system=SNOMED, morphology="9055/1", topography="C38.4")
    )


def test_personal_and_family_history_codes_never_fire() -> None:
    assert fired(condition("c1", "Z85.831", "Personal history of malignant neoplasm of soft tissue")) == set()
    assert fired(condition("c2", "Z80.8", "Family history of malignant neoplasm of other organs")) == set()
    # The code alone says "history": a problem list whose display names the cancer itself.
    assert fired(condition("c3", "Z85.831", "Leiomyosarcoma of left thigh")) == set()
    assert fired(condition("c4", "Z80.8", "Ewing sarcoma")) == set()


def test_resolved_or_refuted_sarcoma_does_not_fire() -> None:
    assert "rare-cancer" not in fired(
        condition("c1", "C49.22", "Leiomyosarcoma of left thigh", clinical="resolved")
    )
    assert "rare-cancer" not in fired(
        condition("c1", "C49.22", "Leiomyosarcoma of left thigh", verification="refuted")
    )


def test_narrative_final_diagnosis_names_rare_entity() -> None:
    text = (
        "CLINICAL HISTORY: r/o lymphoma\nFINAL DIAGNOSIS:\n"
        "Lymph node, excision: Mantle cell lymphoma, classic variant.\n"
    )
    assert "rare-cancer" in fired(report("r1", text))


def test_negated_family_and_history_mentions_do_not_fire() -> None:
    text = (
        "FINAL DIAGNOSIS:\nSkin, left arm, shave: Seborrheic keratosis. No evidence of malignancy.\n"
        "COMMENT: Family history of sarcoma noted. History of melanoma (2009).\n"
    )
    assert fired(report("r1", text)) == set()


def test_hypothesis_in_clinical_history_is_not_a_diagnosis() -> None:
    text = "CLINICAL HISTORY: Evaluate for sarcoma.\nFINAL DIAGNOSIS:\nSoft tissue, thigh: Lipoma.\n"
    assert "rare-cancer" not in fired(report("r1", text))


def test_papillary_thyroid_is_not_rare_but_medullary_is() -> None:
    assert "rare-cancer" not in fired(
        condition("c1", "C73", "Malignant neoplasm of thyroid gland", text="Papillary thyroid carcinoma")
    )
    assert "rare-cancer" in fired(
        condition("c1", "363346000", system=SNOMED, morphology="8345/3", topography="C73.9")
    )


def test_nci_option_is_broader_than_rarecare() -> None:
    gastric = condition("c1", "C16.9", "Malignant neoplasm of stomach, unspecified", system=ICD10)
    assert "rare-cancer" not in fired(gastric)
    assert "rare-cancer" in fired(gastric, rare="nci")


def test_hedged_rare_entity_is_not_a_confident_rare_diagnosis_but_favoured_one_is() -> None:
    hedged = report(
        "r1",
        "FINAL DIAGNOSIS:\n"
        "Lymph node: Atypical lymphoid proliferation. Mantle cell lymphoma cannot be excluded.\n",
    )
    result = run(hedged)
    assert "rare-cancer" not in result.triggers
    assert "uncertain-pathology" in result.triggers
    favoured = report(
        "r2",
        "FINAL DIAGNOSIS:\nStomach, biopsy: Spindle cell neoplasm, favor gastrointestinal stromal tumor.\n",
    )
    assert "rare-cancer" in fired(favoured)


def test_epic_hcc_suffix_is_not_hepatocellular_carcinoma() -> None:
    result = run(
        condition(
            "c1",
            "C50.412",
            "Malignant neoplasm of upper-outer quadrant of left female breast",
            text="Breast cancer, left, ER positive (HCC)",
        )
    )
    assert result.triggers == []


def test_right_colectomy_with_terminal_ileum_is_colon_not_small_bowel() -> None:
    text = (
        "FINAL DIAGNOSIS:\nA. Terminal ileum and right colon, right hemicolectomy:\n"
        "- Adenocarcinoma, moderately differentiated, 4.3 cm, ascending colon.\n"
    )
    assert "rare-cancer" not in fired(report("r1", text))
    anal = "FINAL DIAGNOSIS:\nA. Anal canal, biopsy:\n- Squamous cell carcinoma, invasive.\n"
    assert "rare-cancer" in fired(report("r2", anal))


def test_histology_extension_with_a_snomed_morphology_uses_its_display() -> None:
    gist = condition("c1", "363346000", "Malignant neoplastic disease", system=SNOMED)
    gist["extension"] = [
        {
            "url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-histology-morphology-behavior",
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": SNOMED,
                        "code": "128755003",
                        "display": "Gastrointestinal stromal tumor, uncertain malignant potential",
                    }
                ]
            },
        }
    ]
    assert "rare-cancer" in fired(gist)


def test_a_cancer_recorded_without_type_or_site_says_rarity_could_not_be_assessed() -> None:
    generic = condition("c1", "363346000", "Malignant neoplastic disease", system=SNOMED, onset="2025-12-01")
    result = run(generic)
    assert result.findings == []
    assert any("could not be assessed" in n and "Malignant neoplastic disease" in n for n in result.notes)


def rarity_notes(*resources: dict) -> list[str]:
    return [n for n in run(*resources).notes if "rare cancer" in n]


def test_a_cancer_with_a_site_or_a_type_gets_no_undecided_note() -> None:
    breast = condition("c1", "C50.911", "Malignant neoplasm of right female breast", onset="2025-12-01")
    generic = condition("c2", "363346000", "Malignant neoplastic disease", system=SNOMED, onset="2025-12-01")
    assert rarity_notes(breast) == []
    assert rarity_notes(breast, generic) == []
    assert run().notes == []  # no cancer at all: nothing to decide

from tests.fhirmaps.builders import condition, observation, report
from tests.triggers.engine_helpers import fired, run

BREAST = condition("c1", "C50.412", "Malignant neoplasm of upper-outer quadrant of left female breast")


def test_breast_her2_ihc_2_plus_without_ish_fires() -> None:
    ihc = observation(
        "o1",
        "85319-2",
        "HER2 [Presence] in Breast cancer specimen by Immune stain",
        text_value="2+ (equivocal)",
        date="2026-01-05",
    )
    result = run(BREAST, ihc)
    finding = next(f for f in result.findings if f.trigger == "incomplete-biomarker")
    assert finding.evidence[0].reference == "Observation/o1"


def test_ihc_2_plus_followed_by_ish_does_not_fire() -> None:
    ihc = observation("o1", "85319-2", "HER2 by IHC", text_value="2+ (equivocal)", date="2026-01-05")
    ish = observation("o2", "85318-4", "ERBB2 by FISH", text_value="Not amplified", date="2026-01-12")
    assert "incomplete-biomarker" not in fired(BREAST, ihc, ish)


def test_narrative_ihc_2_plus_with_fish_in_later_addendum_does_not_fire() -> None:
    text = (
        "FINAL DIAGNOSIS:\nBreast, left, core: Invasive ductal carcinoma.\nHER2 (IHC): 2+, equivocal.\n"
        "ADDENDUM:\nHER2 FISH: HER2/CEP17 ratio 2.6, average HER2 copy number 5.8 signals/cell; amplified.\n"
    )
    assert "incomplete-biomarker" not in fired(BREAST, report("r1", text))


def test_ihc_3_plus_and_1_plus_do_not_fire() -> None:
    for value in ("3+ (positive)", "1+ (negative)", "0"):
        ihc = observation("o1", "85319-2", "HER2 by IHC", text_value=value)
        assert "incomplete-biomarker" not in fired(BREAST, ihc), value


def test_gastric_her2_2_plus_is_not_scored_with_breast_rules() -> None:
    gastric = condition("c1", "C16.0", "Malignant neoplasm of cardia")
    text = (
        "FINAL DIAGNOSIS:\nStomach, cardia, biopsy: Adenocarcinoma, intestinal type.\n"
        "HER2 (IHC): 2+ (equivocal).\n"
    )
    assert "incomplete-biomarker" not in fired(gastric, report("r1", text))


def test_ish_group_4_fires_and_group_1_does_not() -> None:
    g4 = observation("o1", "85318-4", "ERBB2 by FISH", text_value="ISH group 4 (ratio 1.7, 4.6 signals/cell)")
    assert "incomplete-biomarker" in fired(BREAST, g4)
    g1 = observation("o2", "85318-4", "ERBB2 by FISH", text_value="ISH group 1 (amplified)")
    assert "incomplete-biomarker" not in fired(BREAST, g1)


def test_indeterminate_mmr_never_repeated_fires() -> None:
    colon = condition("c1", "C18.7", "Malignant neoplasm of sigmoid colon")
    text = (
        "FINAL DIAGNOSIS:\nColon, sigmoid: Adenocarcinoma.\n"
        "MMR immunohistochemistry: indeterminate (weak internal control staining).\n"
    )
    assert "incomplete-biomarker" in fired(colon, report("r1", text))


def test_er_low_positive_is_not_an_incomplete_biomarker() -> None:
    text = (
        "FINAL DIAGNOSIS:\nBreast, left, core: Invasive ductal carcinoma.\n"
        "ER: low positive (5%). PR negative. HER2 (IHC): 3+.\n"
    )
    assert "incomplete-biomarker" not in fired(BREAST, report("r1", text))

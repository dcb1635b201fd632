import warnings

from fhirmaps.context import analyze
from fhirmaps.r4b import validation_problem


def _cancer(text: str) -> list:
    return [m for m in analyze([text])[0] if m.label == "CANCER"]


def test_negation_family_and_history_are_flagged() -> None:
    [negated] = _cancer("No evidence of malignancy.")
    assert negated.negated and not negated.asserted
    [family] = _cancer("Family history of sarcoma.")
    assert family.family and not family.asserted
    [history] = _cancer("History of melanoma (2009).")
    assert history.historical and not history.asserted


def test_named_entities_win_over_hedge_words_and_keep_their_entity_id() -> None:
    labels = [(m.label, m.key) for m in analyze(["Atypical carcinoid tumor of the lung."])[0]]
    assert labels == [("CANCER", "atypical-carcinoid")]
    labels = [(m.label, m.key) for m in analyze(["Atypical ductal hyperplasia."])[0]]
    assert labels == [("BENIGN_ATYPIA", "atypical ductal hyperplasia")]


def test_results_are_cached_per_text() -> None:
    first = analyze(["Gastrointestinal stromal tumor."])[0]
    assert analyze(["Gastrointestinal stromal tumor."])[0] is first


def test_r4b_validation_reports_a_short_reason_and_ignores_unknown_types() -> None:
    assert validation_problem({"resourceType": "Patient", "id": "p1", "birthDate": "1960-05-01"}) is None
    problem = validation_problem({"resourceType": "Patient", "id": "p1", "birthDate": "May 1960"})
    assert problem is not None and "birthDate" in problem and len(problem) <= 300
    assert validation_problem({"resourceType": "NotAResource", "id": "x"}) is None


def test_context_runs_only_where_there_is_a_target_and_gives_what_the_whole_pipeline_gives() -> None:
    from fhirmaps.context import _PHRASES, _mentions, clear_cache, pipeline

    texts = [
        "Primary care visit. Known problems: hypertension. No weight loss, no night sweats.",
        "No evidence of malignancy. Family history of sarcoma; history of melanoma (2009).",
        "Possible lymphoma cannot be excluded. Patient denies fevers.",
        "Blood pressure follow-up, no complaints.",
        "Biopsy: invasive ductal carcinoma, grade 2. Brother with colon cancer.",
        # Texts the regular-expression rules match, between texts they do not: matched by the other
        # target component, and returned in their place.
        "Spindle cell neoplasm, favored to represent leiomyosarcoma over GIST; melanoma vs. carcinoma.",
        "No complaints today.",
        "Poorly differentiated carcinoma versus lymphoma.",
    ]
    nlp = pipeline()
    assert nlp.pipe_names[-1] == "medspacy_context"  # nothing after it needs it on every piece
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*\[W036\].*")  # medspaCy's empty internal matchers
        with nlp.select_pipes(disable=[_PHRASES]):  # the pipeline as medspaCy builds it: every component
            whole = [tuple(_mentions(nlp(text))) for text in texts]
    clear_cache()
    assert analyze(texts) == whole
    assert [bool(mentions) for mentions in whole] == [False, True, True, False, True, True, False, True]
    assert [m.label for m in whole[5] + whole[7]].count("HEDGE") >= 3

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

"""FoldedPattern finds what the same expression with re.IGNORECASE finds, on ASCII text (lowercased,
searched without the flag) and on any other text (searched with the flag)."""

from __future__ import annotations

import random
import re

import pytest

from fhirmaps.context import _any_pattern
from fhirmaps.folded import FoldedPattern
from smartapp.triggers import rules
from smartapp.triggers.common import _terms_regex

# Words of the patterns in use, cased every way, with the characters around them that decide a
# word boundary; and the four non-ASCII letters re.IGNORECASE matches to ASCII ones (K, ſ, İ, ı).
PIECES = [
    "EQUIVOCAL", "Indeterminate", "not evaluable", "NOT  EVALUABLE", "could not be assessed",
    "Quantity Not Sufficient", "QNS", "unable", "failed", "versus", "VS.", "vs", "favored", "over",
    "Favouring", "rather than", "her2", "HER-2", "Ki-67", "ki67", "Whipple", "ESOPHAGECTOMY",
    "-", "_", ".", ";", " ", "\n", "x", "1", "(", ")", "\u212a", "\u017f", "\u0130", "\u0131", "é",
]  # fmt: skip


def _texts(seed: int, count: int) -> list[str]:
    chance = random.Random(seed)
    return ["".join(chance.choice(PIECES) for _ in range(chance.randint(0, 12))) for _ in range(count)]


def _patterns_in_use() -> list[FoldedPattern]:
    return [
        rules.folded("incomplete-biomarker", "equivocal_words"),
        _any_pattern(),
        _terms_regex(("HER2", "Ki-67", "whipple", "esophagectomy", "not evaluable")),
    ]


@pytest.mark.parametrize("index", range(3))
def test_a_folded_search_finds_what_the_case_insensitive_search_finds(index: int) -> None:
    pattern = _patterns_in_use()[index]
    texts = _texts(index, 4000)
    assert any(t.isascii() for t in texts) and any(not t.isascii() for t in texts)
    for text in texts:
        assert pattern.search(text) == (pattern.ignoring_case.search(text) is not None), text
        expected = [(m.span(), m.group(0).lower()) for m in pattern.ignoring_case.finditer(text)]
        assert [(m.span(), m.group(0).lower()) for m in pattern.finditer(text)] == expected, text


def test_both_outcomes_occur_in_the_comparison() -> None:
    # The comparison above would prove nothing if every text matched, or none did.
    for index, pattern in enumerate(_patterns_in_use()):
        outcomes = {pattern.search(text) for text in _texts(index, 4000)}
        assert outcomes == {True, False}


def test_ascii_text_in_any_case_is_found_and_non_ascii_letters_fold_as_re_does() -> None:
    words = FoldedPattern(r"\bnot evaluable\b|insufficient")
    assert words.search("PD-L1: NOT EVALUABLE.") and words.search("Insufficient tumor")
    assert not words.search("not evaluated") and not words.search("notevaluable")
    # Non-ASCII text goes to re.IGNORECASE, which matches the long s to "s".
    assert words.search("in\u017fufficient") and words.search("INSUFFICIENT – see note")


def test_an_expression_with_an_uppercase_letter_is_refused() -> None:
    with pytest.raises(ValueError, match="lowercase"):
        FoldedPattern(r"\bHER2\b")
    # Escapes are not letters of the text: \S, \W, \B and \D are allowed.
    assert FoldedPattern(r"b\W\D").search("AB-CD") and FoldedPattern(r"a\Bb").search("AB")


def test_every_lowercase_rule_entry_searched_folded_matches_as_its_pattern() -> None:
    assert re.compile(rules.folded("incomplete-biomarker", "equivocal_words").source, re.I).pattern == (
        rules.pattern("incomplete-biomarker", "equivocal_words").pattern
    )

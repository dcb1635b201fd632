"""The phrase filter skips only text in which the pipeline finds no target: on random text made of
the rule phrases' own words, `analyze` (which skips what the filter rejects) gives exactly what the
whole medspaCy pipeline gives, and the filter rejects a good share of the texts."""

from __future__ import annotations

import random
import warnings

from fhirmaps.context import _PHRASES, _mentions, _phrase_filter, _phrases, analyze, clear_cache, pipeline
from fhirmaps.phrase_filter import PhraseFilter

# What can stand between the words: nothing, one space (the only whitespace a token carries), other
# whitespace (a token of its own), punctuation the tokenizer splits off, and letters and digits glued
# to a word (a unit after a number is its own token: "3cm").
JOINS = ["", " ", " ", " ", "  ", "\n", "-", "/", ", ", ". ", "(", ")", "+", "3", "x", "é"]


def _texts(seed: int, count: int) -> list[str]:
    chance = random.Random(seed)
    phrases = sorted(phrase for phrase, _ in _phrases())
    words = sorted({word for phrase in phrases for word in phrase.split()})
    words += ["no", "evidence", "of", "history", "the", "patient", "biopsy", "shows", "with"]
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(chance.randint(1, 4)):
            # A word, or a whole phrase whose words are joined in one of the ways above.
            if chance.random() < 0.5:
                part = chance.choice(words)
            else:
                part = "".join(w + chance.choice(JOINS) for w in chance.choice(phrases).split()).strip()
            part = chance.choice([part, part.upper(), part.capitalize()])
            parts += [part, chance.choice(JOINS)]
        texts.append("".join(parts))
    return texts


def _whole_pipeline(texts: list[str]) -> list[tuple]:
    nlp = pipeline()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*\[W036\].*")  # medspaCy's empty internal matchers
        with nlp.select_pipes(disable=[_PHRASES]):  # every component, as medspaCy builds it
            return [tuple(_mentions(nlp(text))) for text in texts]


def test_analyze_with_the_filter_gives_what_the_whole_pipeline_gives() -> None:
    texts = _texts(7, 1500)
    whole = _whole_pipeline(texts)
    clear_cache()
    assert analyze(texts) == whole
    # The comparison proves something only if the filter both kept and rejected texts, and texts
    # with mentions were among those it kept.
    kept = [_phrase_filter().may_match(text) for text in texts]
    assert sum(bool(m) for m in whole) > 100
    assert 0.1 < kept.count(False) / len(texts) < 0.9
    assert all(keep for keep, mentions in zip(kept, whole, strict=True) if mentions)


def test_every_phrase_as_written_and_spaced_as_spacy_spaces_tokens_is_kept() -> None:
    check = _phrase_filter()
    tokenizer = pipeline().tokenizer
    for phrase, _ in _phrases():
        tokens = [t.text for t in tokenizer(phrase.upper())]
        assert check.may_match(phrase.upper()), phrase
        assert check.may_match(" ".join(tokens)), phrase
        assert check.may_match("".join(tokens)), phrase


def test_a_run_matches_its_tokens_joined_by_nothing_or_one_space_in_any_case() -> None:
    check = PhraseFilter([("her2", "-", "positive"), ("gist",)])
    for text in ("HER2-positive", "her2 - positive", "Her2- Positive", "her2 -positive tumor", "GIST"):
        assert check.may_match(text), text
    # A necessary condition only: a word that holds a phrase's letters is kept for the pipeline.
    assert check.may_match("logistic")
    for text in ("her2 positive", "her2  -  positive", "her2\n-positive", "", "no tumor"):
        assert not check.may_match(text), text
    assert check.may_match("her2 status: négatif")  # not ASCII: always to the pipeline
    assert not PhraseFilter([]).may_match("anything")
    assert PhraseFilter([()]).may_match("")  # an empty phrase matches everywhere

"""medspaCy ConText over narrative sections: target phrases with negation / uncertainty / history / family.

The pipeline is built once per process (lazy singleton) from the project's code files: cancer
entity names, hedge and borderline terms, progression phrases, and extra ConText modifier rules.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhirmaps import codes
from fhirmaps.folded import FoldedPattern
from fhirmaps.phrase_filter import PhraseFilter

_LOCK = threading.Lock()
_NLP: Any = None
_CACHE: dict[str, tuple[RawMention, ...]] = {}
_CACHE_LIMIT = 20000

# ConText compares every modifier with every other modifier and target of a Doc, so its work grows
# with the square of a Doc's length (hedge-dense run-on text: 4x per doubling). Text therefore enters
# the pipeline in pieces of at most PIECE_CHARS, cut at sentence ends, else at a space, else anywhere:
# work is linear in the text's length and one "sentence" never exceeds a piece.
PIECE_CHARS = 1_000
_SENTENCE_END = re.compile(r"[.!?;\n]")
_CONTEXT = "medspacy_context"  # the last component of the pipeline
# The target phrases are matched by two components. medspaCy's matcher also runs the regular
# expression rules (HEDGE_PATTERN), each over the Doc's text joined again from its tokens: a sixth of
# a screening worker's NLP time, for a few words ("versus", "favored ... over") that most texts lack.
# The second holds the same phrase rules without them, and takes every piece those expressions
# cannot match: nothing they could find is lost, and the phrases match as in the first.
_TARGETS = "medspacy_target_matcher"
_PHRASES = "secondlook_phrase_targets"


@dataclass(frozen=True)
class RawMention:
    """One target phrase in one text, with its ConText flags."""

    label: str  # CANCER, HEDGE, BORDERLINE, BENIGN_ATYPIA, PROGRESSION, ...
    key: str  # entity id for CANCER, lower-case phrase otherwise
    text: str
    sentence: str
    start: int
    negated: bool
    uncertain: bool
    historical: bool
    hypothetical: bool
    family: bool

    @property
    def asserted(self) -> bool:
        """Affirmed, current and about the patient."""
        return not (self.negated or self.historical or self.hypothetical or self.family)


@cache
def entity_terms() -> dict[str, str]:
    """Lower-case narrative term -> entity id (first entity listing a term wins)."""
    table: dict[str, str] = {}
    for entity in codes.load("entities")["entities"]:
        for term in entity["terms"]:
            table.setdefault(term.lower(), entity["id"])
    return table


def _build() -> Any:
    from loguru import logger

    # PyRuSH logs every sentence at DEBUG through loguru; that is slow and noisy.
    logger.disable("PyRuSH")
    import medspacy
    from medspacy.context import ConTextRule
    from medspacy.ner import TargetRule

    nlp = medspacy.load()
    if "medspacy_pyrush" in nlp.pipe_names:
        # spaCy's rule sentencizer is much faster than PyRuSH and good enough for report prose.
        nlp.remove_pipe("medspacy_pyrush")
        nlp.add_pipe("sentencizer", first=True, config={"punct_chars": [".", "!", "?", ";", "\n"]})
    phrases = _phrases()
    # Both matchers get their phrase rules in the same order (each numbers its rules as it takes them).
    nlp.get_pipe(_TARGETS).add(
        [TargetRule(p, category) for p, category in phrases]
        + [TargetRule(p.pattern, "HEDGE", pattern=p.pattern) for p in _patterns()]
    )
    nlp.add_pipe(_TARGETS, name=_PHRASES, after=_TARGETS).add(
        [TargetRule(p, category) for p, category in phrases]
    )
    context = nlp.get_pipe("medspacy_context")
    known = {r.literal.lower() for r in context.rules}
    extra = [
        ConTextRule(r["literal"], r["category"], direction=r.get("direction", "BIDIRECTIONAL"))
        for r in codes.load("context_rules")["rules"]
        if r["literal"].lower() not in known
    ]
    context.add(extra)
    return nlp


@cache
def _phrases() -> tuple[tuple[str, str], ...]:
    """(phrase, label) of the target phrase rules: cancer names, then the lexicon's words by category."""
    phrases: list[tuple[str, str]] = [(term, "CANCER") for term in entity_terms()]
    for category, listed in codes.load("lexicon")["categories"].items():
        if isinstance(listed, list) and category != "HEDGE_PATTERN":
            phrases += [(p, category) for p in listed]
    return tuple(phrases)


@cache
def _phrase_filter() -> PhraseFilter:
    """The phrase rules as the target matcher holds them: lowercased, cut by the pipeline's tokenizer."""
    tokenizer = pipeline().tokenizer
    return PhraseFilter(tuple(t.lower_ for t in tokenizer(phrase.lower())) for phrase, _ in _phrases())


def pipeline() -> Any:
    """The shared medspaCy pipeline (built on first use)."""
    global _NLP
    with _LOCK:
        if _NLP is None:
            _NLP = _build()
        return _NLP


def clear_cache() -> None:
    """Forget analysed texts (benchmarks; the cache is otherwise bounded at _CACHE_LIMIT texts)."""
    with _LOCK:
        _CACHE.clear()


def warm() -> None:
    analyze(["No evidence of malignancy."])


def pieces(text: str, limit: int = PIECE_CHARS) -> list[tuple[int, str]]:
    """(offset, piece) covering the text, each piece at most `limit` characters."""
    out: list[tuple[int, str]] = []
    start = 0
    while len(text) - start > limit:
        window = text[start : start + limit]
        cut = max((m.end() for m in _SENTENCE_END.finditer(window)), default=0)
        if cut < limit // 3:
            cut = window.rfind(" ") + 1
        if cut < limit // 3:
            cut = limit
        out.append((start, window[:cut]))
        start += cut
    if start < len(text):
        out.append((start, text[start:]))
    return out


def analyze(texts: Sequence[str]) -> list[tuple[RawMention, ...]]:
    """Mentions for each text (results cached by text; safe to call from several threads)."""
    with _LOCK:
        found = {t: _CACHE[t] for t in dict.fromkeys(texts) if t in _CACHE}
    missing = [t for t in dict.fromkeys(texts) if t not in found]
    if missing:
        nlp = pipeline()
        phrase_filter = _phrase_filter()
        split = [(text, offset, piece) for text in missing for offset, piece in pieces(text)]
        with _LOCK, warnings.catch_warnings():
            # medspaCy's empty internal matchers warn (spaCy W036) on every document.
            warnings.filterwarnings("ignore", message=r".*\[W036\].*")
            # ConText only sets flags on target phrases; most texts of a record (a primary-care
            # note, a lab comment) have none, and its modifier matching was a quarter of a
            # screening worker's CPU. It runs on the pieces that have a target.
            docs = _docs(nlp, phrase_filter, [piece for _, _, piece in split])
            context = nlp.get_pipe(_CONTEXT)
            fresh: dict[str, list[RawMention]] = {text: [] for text in missing}
            for (text, offset, _), doc in zip(split, docs, strict=True):
                if doc is not None and doc.ents:
                    fresh[text].extend(_mentions(context(doc), offset))
            if len(_CACHE) + len(fresh) > _CACHE_LIMIT:
                _CACHE.clear()
            _CACHE.update((text, tuple(mentions)) for text, mentions in fresh.items())
            found.update((text, _CACHE[text]) for text in fresh)
    return [found[t] for t in texts]


@cache
def _patterns() -> tuple[re.Pattern[str], ...]:
    """The HEDGE_PATTERN rules as medspaCy's matcher compiles them (case-insensitive)."""
    listed = codes.load("lexicon")["categories"].get("HEDGE_PATTERN", [])
    return tuple(re.compile(p, re.IGNORECASE) for p in listed)


@cache
def _any_pattern() -> FoldedPattern:
    """Whether any HEDGE_PATTERN rule matches a piece, in one search."""
    return FoldedPattern("|".join(f"(?:{p.pattern})" for p in _patterns()))


def _docs(nlp: Any, phrase_filter: PhraseFilter, pieces: list[str]) -> Iterator[Any]:
    """The pieces through the pipeline without ConText, in order: through the matcher with regular
    expressions where one of them matches the piece's text, else through the phrases alone where a
    phrase could match (None for the others: no target, so no mention)."""
    hedged = _any_pattern()
    routes = [
        "full" if hedged.search(piece) else "plain" if phrase_filter.may_match(piece) else ""
        for piece in pieces
    ]
    full = nlp.pipe(
        (p for p, route in zip(pieces, routes, strict=True) if route == "full"),
        batch_size=64,
        disable=[_CONTEXT, _PHRASES],
    )
    plain = nlp.pipe(
        (p for p, route in zip(pieces, routes, strict=True) if route == "plain"),
        batch_size=64,
        disable=[_CONTEXT, _TARGETS],
    )
    return (next(full) if route == "full" else next(plain) if route else None for route in routes)


def _mentions(doc: Any, offset: int = 0) -> Iterable[RawMention]:
    terms = entity_terms()
    for ent in doc.ents:
        label = str(ent.label_)
        phrase = str(ent.text)
        key = terms.get(phrase.lower(), phrase.lower()) if label == "CANCER" else phrase.lower()
        sent = ent.sent
        yield RawMention(
            label=label,
            key=key,
            text=phrase,
            sentence=str(sent.text).strip(),
            start=offset + int(ent.start_char),
            negated=bool(ent._.is_negated),
            uncertain=bool(ent._.is_uncertain),
            historical=bool(ent._.is_historical),
            hypothetical=bool(ent._.is_hypothetical),
            family=bool(ent._.is_family),
        )

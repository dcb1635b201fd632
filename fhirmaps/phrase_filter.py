"""Which pieces of text could hold a target phrase, found without running spaCy.

medspaCy's target matcher matches a phrase rule on the LOWER attribute of tokens: the phrase,
lowercased and cut into tokens by the pipeline's own tokenizer, must meet the same run of tokens in
the Doc. In a Doc, two neighbouring tokens are separated by nothing or by one space (spaCy keeps any
other whitespace as a token of its own), and each token is a stretch of the text. So where a phrase
matches, the lowercased text holds the phrase's tokens joined each by nothing or by one space. A
piece of ASCII text that holds no such run for any phrase has no phrase match: the pipeline would
find nothing in it, and it is not run. Text with other characters always goes to the pipeline
(lowercasing a whole text and lowercasing one token can differ there).

Most texts of a record (a primary-care note, a lab comment) name no target: on the demo population
34 of 10,637 report pieces hold one, and tokenizing the rest was two thirds of a screening worker's
NLP time. The runs are searched as one expression, built as a tree of their characters so that
`re` tries one branch per next character instead of every phrase at every position.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_SEPARATOR = "\x00"  # in the tree: nothing or one space, between two tokens
_Node = dict[str, "_Node"]  # next character -> the rest of the tree ("" marks a phrase's end)


class PhraseFilter:
    """A necessary condition for a phrase match: `may_match` is False only for text that none of
    the token runs (each a phrase's lowercased tokens) can match."""

    def __init__(self, runs: Iterable[Sequence[str]]) -> None:
        tree: _Node = {}
        for run in runs:
            node = tree
            for index, token in enumerate(run):
                for char in (_SEPARATOR, *token) if index else token:
                    node = node.setdefault(char, {})
            node[""] = {}  # a phrase ends here
        self.expression = re.compile(_alternatives(tree))

    def may_match(self, text: str) -> bool:
        """False when no phrase can match in `text`; True otherwise (and for non-ASCII text)."""
        return not text.isascii() or self.expression.search(text.lower()) is not None


def _alternatives(node: _Node) -> str:
    """The expression of a tree node: any phrase ending here is enough for a match."""
    if "" in node:
        return ""
    branches = [
        ("(?: )?" if char == _SEPARATOR else re.escape(char)) + _alternatives(child)
        for char, child in sorted(node.items())
    ]
    if not branches:
        return "(?!)"  # no phrase at all: nothing matches
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

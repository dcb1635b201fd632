"""The progress line of a screen on stderr (only on a terminal): patients done / total, rate, ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()
        self.total = 0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        eta = f"{(self.total - done) / rate:.0f} s" if rate > 0 and self.total >= done else "?"
        total = str(self.total) if self.total else "?"
        self.stream.write(f"\rsecondlook screen: {done}/{total} patients, {rate:.1f}/s, ETA {eta}   ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

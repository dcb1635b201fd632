"""Where a packet can go: NCI-designated centers and remote second-opinion programs, from a data file.

The bundled file is a partial list compiled from the domain research (see its `source` and
`date`); a site replaces it with its own through `Settings.packet_directory`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from smartapp.packet.model import Destination

BUNDLED = Path(__file__).parent / "data" / "centers.json"
# Research-only centers: NCI designates them, but they do not see patients.
NOT_FOR_REFERRAL = frozenset({"basic-laboratory"})
CATEGORY_LABELS = {
    "comprehensive": "NCI-designated Comprehensive Cancer Center",
    "clinical": "NCI-designated Cancer Center",
    "unknown": "NCI-designated (category not confirmed)",
    "not-listed": "Not an NCI-designated center on its own",
}
IN_PERSON = "in-person"


class DirectoryError(Exception):
    """The directory file is missing or malformed."""


@dataclass(frozen=True)
class Option:
    """One choice in the destination picker: a center with one of its programs."""

    center_id: str
    program_id: str
    center: str
    program: str
    city: str
    state: str
    category: str
    remote: bool
    review: str  # clinical | pathology | both
    note: str
    fhir_endpoint: str = ""

    @property
    def key(self) -> str:
        return f"{self.center_id}/{self.program_id}"

    @property
    def category_label(self) -> str:
        return CATEGORY_LABELS.get(self.category, self.category)

    def destination(self) -> Destination:
        return Destination(
            center_id=self.key,
            name=self.center,
            program=self.program,
            city=self.city,
            state=self.state,
            category=self.category_label,
            remote=self.remote,
            contact=self.note,
            fhir_endpoint=self.fhir_endpoint,
        )


@dataclass(frozen=True)
class Directory:
    source: str
    date: str
    options: tuple[Option, ...]

    def states(self) -> list[str]:
        return sorted({o.state for o in self.options if o.state})

    def search(self, *, state: str = "", remote: bool | None = None, review: str = "") -> list[Option]:
        """Options in `state` (remote programs are offered whatever the state), optionally only remote
        ones, optionally only programs that do the requested kind of review."""
        found = []
        for option in self.options:
            if remote and not option.remote:
                continue
            if state and option.state != state and not option.remote:
                continue
            if review and review != "both" and option.review not in (review, "both"):
                continue
            found.append(option)
        return found

    def get(self, key: str) -> Option | None:
        return next((o for o in self.options if o.key == key), None)


def parse_directory(document: dict[str, Any]) -> Directory:
    try:
        options: list[Option] = []
        for center in document["centers"]:
            if center.get("category") in NOT_FOR_REFERRAL:
                continue
            programs = center.get("programs") or []
            if not programs:
                programs = [
                    {
                        "id": IN_PERSON,
                        "name": "Second opinion at the center (contact the center)",
                        "review": "both",
                        "remote": False,
                        "note": "",
                    }
                ]
            for program in programs:
                options.append(
                    Option(
                        center_id=str(center["id"]),
                        program_id=str(program["id"]),
                        center=str(center["name"]),
                        program=str(program["name"]),
                        city=str(center.get("city", "")),
                        state=str(center.get("state", "")),
                        category=str(center.get("category", "unknown")),
                        remote=bool(program.get("remote", False)),
                        review=str(program.get("review", "both")),
                        note=str(program.get("note", "")),
                        fhir_endpoint=str(program.get("fhir_endpoint", "")),
                    )
                )
        return Directory(source=str(document["source"]), date=str(document["date"]), options=tuple(options))
    except (KeyError, TypeError) as exc:
        raise DirectoryError(f"The center directory is malformed (missing {exc}).") from exc


@lru_cache(maxsize=8)
def load_directory(path: Path | None = None) -> Directory:
    """The site's directory when `path` is given, else the bundled one."""
    target = path or BUNDLED
    try:
        document = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DirectoryError(
            f"The center directory {target.name} cannot be read ({type(exc).__name__})."
        ) from exc
    return parse_directory(document)

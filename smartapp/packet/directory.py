"""Where a packet can go: cancer centers and their second-opinion programs, from a data file.

The bundled file is a partial list compiled from public pages (see its `source` and `date`); a
site replaces it with its own through `Settings.packet_directory`. The format is documented in
docs/directory.md. Every field but a center's and a program's id and name is optional; a program
takes its center's intake contact, turnaround, diseases and states unless it gives its own, and
adds its own caveats and exclusions to the center's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from smartapp.packet.model import Destination
from smartapp.packet.places import states as us_states
from smartapp.packet.tumor_types import tumor_types

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
REVIEWS = ("clinical", "pathology", "both")
# Exclusions a program states, in a form the matcher can check against the packet; "residents:XX"
# (XX a state code) is the third kind. Anything looser belongs in `caveats`.
EXCLUSIONS = ("active-treatment", "inpatient")
RESIDENTS = "residents:"
# A program takes these from its center unless it states its own; caveats and exclusions add up.
INHERITED = ("phone", "fax", "portal", "email", "turnaround", "diseases", "states", "source")
EMPTY: dict[str, Any] = {name: "" for name in INHERITED} | {"diseases": (), "states": ()}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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
    diseases: tuple[str, ...] = ()  # tumor-type keys (data/tumor_types.toml); () or ("all",): any
    states: tuple[str, ...] = ()  # states whose residents it serves; (): any (in person: its own)
    phone: str = ""
    fax: str = ""
    portal: str = ""
    email: str = ""
    turnaround: str = ""
    caveats: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    source: str = ""  # where the program's details come from, in words

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
            phone=self.phone,
            fax=self.fax,
            portal=self.portal,
            email=self.email,
            turnaround=self.turnaround,
            caveats=list(self.caveats),
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


def parse_directory(document: Any) -> Directory:
    if not isinstance(document, dict):
        raise DirectoryError("The center directory is malformed: the file must hold one JSON object.")
    top = _Fields(document, "the file")
    centers = document.get("centers")
    if not isinstance(centers, list):
        raise DirectoryError('The center directory is malformed: "centers" must be a list of centers.')
    options: list[Option] = []
    for index, raw in enumerate(centers):
        center = _Fields(raw, f"centers[{index}]")
        center_id = center.text("id", required=True)
        center.where = center_id
        if center.text("category", "unknown") in NOT_FOR_REFERRAL:
            continue
        shared = center.program_fields()
        programs = raw.get("programs") or [
            {"id": IN_PERSON, "name": "Second opinion at the center (contact the center)"}
        ]
        if not isinstance(programs, list):
            raise center.error('"programs" must be a list of programs')
        for number, raw_program in enumerate(programs):
            program = _Fields(raw_program, f"{center_id}/programs[{number}]")
            program.where = f"{center_id}/{program.text('id', required=True)}"
            own = program.program_fields()
            fields = {name: own[name] if own[name] is not None else shared[name] for name in INHERITED}
            fields = {name: value if value is not None else EMPTY[name] for name, value in fields.items()}
            options.append(
                Option(
                    center_id=center_id,
                    program_id=program.text("id", required=True),
                    center=center.text("name", required=True),
                    program=program.text("name", required=True),
                    city=center.text("city"),
                    state=center.state("state"),
                    category=center.text("category", "unknown"),
                    remote=program.flag("remote"),
                    review=program.choice("review", REVIEWS, "both"),
                    note=program.text("note"),
                    fhir_endpoint=program.text("fhir_endpoint"),
                    caveats=(shared["caveats"] or ()) + (own["caveats"] or ()),
                    excludes=tuple(dict.fromkeys((shared["excludes"] or ()) + (own["excludes"] or ()))),
                    **fields,
                )
            )
    return Directory(
        source=top.text("source", required=True), date=top.text("date", required=True), options=tuple(options)
    )


class _Fields:
    """One center's or program's JSON object, read field by field; an error names where it is."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, dict):
            raise DirectoryError(f"The center directory is malformed: {where} must be a JSON object.")
        self.raw: dict[str, Any] = raw
        self.where = where

    def error(self, problem: str) -> DirectoryError:
        return DirectoryError(f"The center directory is malformed: {self.where}: {problem}.")

    def text(self, name: str, default: str = "", *, required: bool = False) -> str:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise self.error(f'"{name}" is missing')
            return default
        if not isinstance(value, str):
            raise self.error(f'"{name}" must be text, not {json.dumps(value)}')
        return value.strip()

    def flag(self, name: str) -> bool:
        value = self.raw.get(name, False)
        if not isinstance(value, bool):
            raise self.error(f'"{name}" must be true or false, not {json.dumps(value)}')
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.text(name, default)
        if value not in allowed:
            raise self.error(f'"{name}" must be {", ".join(allowed[:-1])} or {allowed[-1]}, not "{value}"')
        return value

    def state(self, name: str) -> str:
        value = self.text(name).upper()
        if value and value not in us_states():
            raise self.error(f'"{name}" must be a two-letter US state code, not "{value}"')
        return value

    def words(self, name: str) -> tuple[str, ...] | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(f'"{name}" must be a list of text, not {json.dumps(value)}')
        return tuple(v.strip() for v in value if v.strip())

    def program_fields(self) -> dict[str, Any]:
        """The fields a program may state and a center may state for all its programs; None: not stated."""
        found: dict[str, Any] = {
            name: self.text(name) if name in self.raw else None
            for name in ("phone", "fax", "turnaround", "source")
        }
        portal = self.text("portal")
        if portal and not re.match(r"^https?://[^\s/]+", portal):
            raise self.error(f'"portal" must be an https:// (or http://) address, not "{portal}"')
        found["portal"] = portal if "portal" in self.raw else None
        email = self.text("email")
        if email and not _EMAIL.match(email):
            raise self.error(f'"email" must be an e-mail address, not "{email}"')
        found["email"] = email if "email" in self.raw else None
        found["diseases"] = self._diseases()
        states = self.words("states")
        bad = [s for s in states or () if s.upper() not in us_states()]
        if bad:
            raise self.error(f'"states" must list two-letter US state codes, not {", ".join(bad)}')
        found["states"] = None if states is None else tuple(s.upper() for s in states)
        found["caveats"] = self.words("caveats")
        found["excludes"] = self._excludes()
        return found

    def _diseases(self) -> tuple[str, ...] | None:
        words = self.words("diseases")
        if words is None:
            return None
        table = tumor_types()
        keys = [(w, table.key_for(w)) for w in words]
        unknown = [w for w, key in keys if key is None]
        if unknown:
            raise self.error(
                f'"diseases" has words no tumor type is known by: {", ".join(unknown)} '
                f"(known: all, {', '.join(table.types)})"
            )
        return tuple(dict.fromkeys(key for _, key in keys if key))

    def _excludes(self) -> tuple[str, ...] | None:
        words = self.words("excludes")
        if words is None:
            return None
        found = []
        for word in words:
            if word.lower() in EXCLUSIONS:
                found.append(word.lower())
            elif word.lower().startswith(RESIDENTS) and word[len(RESIDENTS) :].upper() in us_states():
                found.append(RESIDENTS + word[len(RESIDENTS) :].upper())
            else:
                raise self.error(
                    f'"excludes" has "{word}"; it may hold {", ".join(EXCLUSIONS)} or residents:XX '
                    "(XX a state code); put other limits in caveats"
                )
        return tuple(found)


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

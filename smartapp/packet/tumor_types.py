"""The packet's tumor type, in the words a referral directory uses for its disease programs.

Derived from the packet's diagnosis lines through data/tumor_types.toml (codes first, words only
for a line no code maps). The result is a set of keys ("gist", "sarcoma", "gastrointestinal"):
a program whose `diseases` share one of them takes the patient.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from smartapp.packet.model import DiagnosisLine

DATA = Path(__file__).parent / "data" / "tumor_types.toml"
ANY = frozenset({"all", "any"})


@dataclass(frozen=True)
class TumorType:
    key: str
    label: str
    also: tuple[str, ...]
    aliases: tuple[str, ...]
    icd10: tuple[str, ...]
    icdo3: tuple[tuple[int, int], ...]
    words: tuple[re.Pattern[str], ...]

    def matches_icd10(self, code: str) -> bool:
        code = code.upper()
        for entry in self.icd10:
            if "-" in entry:
                low, high = entry.split("-")
                if low <= code[:3] <= high:
                    return True
            elif code.startswith(entry):
                return True
        return False

    def matches_icdo3(self, morphology: int) -> bool:
        return any(low <= morphology <= high for low, high in self.icdo3)


@dataclass(frozen=True)
class TumorTypes:
    types: dict[str, TumorType]
    secondary_icd10: tuple[str, ...]

    def key_for(self, word: str) -> str | None:
        """The type a directory's disease word names ("Breast cancer" → "breast"), "all" for any,
        or None when the word is not known."""
        normal = normal_word(word)
        if normal in ANY:
            return "all"
        if normal in self.types:
            return normal
        return next((t.key for t in self.types.values() if normal in t.aliases), None)

    def label(self, key: str) -> str:
        found = self.types.get(key)
        return found.label if found else key


def normal_word(word: str) -> str:
    normal = re.sub(r"[\s_]+", "-", word.strip().lower())
    return re.sub(r"-(cancers?|tumou?rs?)$", "", normal)


def _range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


@cache
def tumor_types() -> TumorTypes:
    data = tomllib.loads(DATA.read_text(encoding="utf-8"))
    types = {
        key: TumorType(
            key=key,
            label=str(entry["label"]),
            also=tuple(entry.get("also", [])),
            aliases=tuple(normal_word(a) for a in entry.get("aliases", [])),
            icd10=tuple(str(c).upper() for c in entry.get("icd10", [])),
            icdo3=tuple(_range(str(r)) for r in entry.get("icdo3", [])),
            words=tuple(re.compile(w, re.IGNORECASE) for w in entry.get("words", [])),
        )
        for key, entry in data["types"].items()
    }
    return TumorTypes(types=types, secondary_icd10=tuple(data["secondary_icd10"]))


_ICD10 = re.compile(r"^ICD-10(?:-CM)?\s+([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)$", re.IGNORECASE)
_ICDO3 = re.compile(r"^ICD-O-3\s+(\d{4})/(\d)$", re.IGNORECASE)


def packet_tumor_types(diagnoses: Sequence[DiagnosisLine]) -> list[str]:
    """Keys of the tumor types the diagnosis lines name, most specific first, each once."""
    table = tumor_types()
    found: list[str] = []
    for line in diagnoses:
        icd10 = [m.group(1).upper() for c in line.codes if (m := _ICD10.match(c.strip()))]
        if any(code.startswith(table.secondary_icd10) for code in icd10):
            continue
        morphologies = [
            int(m.group(1)) for c in line.codes if (m := _ICDO3.match(c.strip())) and m.group(2) != "0"
        ]
        keys = [
            t.key
            for t in table.types.values()
            if any(t.matches_icd10(code) for code in icd10) or any(t.matches_icdo3(m) for m in morphologies)
        ]
        if not keys:
            # "Adenocarcinoma of sigmoid colon, metastatic to liver": the site after "metastatic"
            # is where it spread, not what it is.
            text = re.split(r"metasta", line.text, maxsplit=1, flags=re.IGNORECASE)[0]
            if not re.match(r"\s*secondary\b", text, re.IGNORECASE):
                keys = [t.key for t in table.types.values() if any(w.search(text) for w in t.words)]
        found += [k for k in keys if k not in found]
    broader = [b for k in found for b in table.types[k].also if b not in found]
    return found + list(dict.fromkeys(broader))

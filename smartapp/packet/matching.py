"""Rank the directory's programs for one packet, and say why in words a coordinator reads.

Order: a program whose stated exclusion applies to this patient comes last, whatever else; then
(1) the kind of review the packet asks for, (2) the named center the patient asked for, (3) the
tumor type (a program listing it before one taking any type, before one listing other types
only), (4) where: in person in the patient's state and remote programs first, in person in
another state after (a stated preference for in person near home or for remote moves those
first), then the directory's own order. Nothing is dropped: a poor match only ranks lower.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from smartapp.packet.directory import RESIDENTS, Option
from smartapp.packet.model import ReferralPacket, ReviewType
from smartapp.packet.places import state_name, state_of
from smartapp.packet.tumor_types import packet_tumor_types, tumor_types

# Treatment lines still going on (FHIR request/administration/procedure statuses).
CURRENT = frozenset({"active", "in-progress", "on-hold"})
PREFERENCES = {"": "Not stated", "in-person": "In person, near home", "remote": "Remote review"}
CENTER = "center:"
# Where-rank by preference: near = in person in the patient's state; far = in person elsewhere;
# unknown = in person, the patient's or the center's state unknown.
_WHERE_RANK = {
    "": {"near": 0, "remote": 0, "unknown": 0, "far": 1},
    "in-person": {"near": 0, "unknown": 1, "far": 1, "remote": 2},
    "remote": {"remote": 0, "near": 1, "unknown": 1, "far": 2},
}


@dataclass(frozen=True)
class Needs:
    """What the packet asks of a destination, read from its typed content."""

    review: ReviewType
    tumor_types: tuple[str, ...]  # keys, specific and broader
    state: str  # two-letter code, "" when the address gives none
    current_treatment: str  # a treatment line still going on, "" when none
    preference: str = ""

    @classmethod
    def of(cls, packet: ReferralPacket) -> Needs:
        current = next((t for t in packet.treatment_so_far if t.status in CURRENT), None)
        return cls(
            review=packet.review_type,
            tumor_types=tuple(packet_tumor_types(packet.diagnoses)),
            state=state_of(packet.patient.address),
            current_treatment=f"{current.text} ({current.status})" if current else "",
            preference=packet.preference,
        )

    @property
    def tumor_labels(self) -> list[str]:
        """The specific types, in words: "sarcoma", not also "gastrointestinal cancer" when that is
        only the broader family of another type found."""
        table = tumor_types()
        broader = {b for k in self.tumor_types for b in table.types[k].also}
        return [table.label(k) for k in self.tumor_types if k not in broader]

    @property
    def state_name(self) -> str:
        return state_name(self.state) if self.state else ""

    @property
    def preferred_center(self) -> str:
        return self.preference.removeprefix(CENTER) if self.preference.startswith(CENTER) else ""


@dataclass(frozen=True)
class Match:
    option: Option
    fits: tuple[str, ...]  # why it suits this packet
    misfits: tuple[str, ...]  # where it falls short (it ranks lower)
    excluded: tuple[str, ...]  # a stated exclusion applies to this patient (it ranks last)
    to_check: tuple[str, ...]  # stated limits the record cannot settle
    rank: tuple[int, ...] = field(repr=False)


def rank_options(options: Sequence[Option], needs: Needs) -> list[Match]:
    return sorted((match(o, needs, i) for i, o in enumerate(options)), key=lambda m: m.rank)


def match(option: Option, needs: Needs, index: int = 0) -> Match:
    fits: list[str] = []
    misfits: list[str] = []
    excluded: list[str] = []
    to_check: list[str] = []

    review_rank, review_words = _review(option.review, needs.review)
    (fits if review_rank == 0 else misfits).append(review_words)

    center_rank = 1
    if needs.preferred_center:
        center_rank = 0 if option.center_id == needs.preferred_center else 1
        if center_rank == 0:
            fits.append("The center the patient asked for")

    disease_rank = _disease(option, needs, fits, misfits, to_check)
    where = _where(option, needs, fits, misfits, excluded, to_check)
    preference = needs.preference if needs.preference in _WHERE_RANK else ""
    where_rank = _WHERE_RANK[preference][where]
    if preference == "in-person" and where == "near":
        fits.append("In person near home, as the patient prefers")
    elif preference == "remote" and where == "remote":
        fits.append("Remote, as the patient prefers")
    _exclusions(option, needs, excluded, to_check)
    rank = (1 if excluded else 0, review_rank, center_rank, disease_rank, where_rank, index)
    return Match(option, tuple(fits), tuple(misfits), tuple(excluded), tuple(to_check), rank)


def _review(offered: str, needed: ReviewType) -> tuple[int, str]:
    if needed == "both":
        if offered == "both":
            return 0, "Reviews the pathology slides and gives the clinical opinion, as this packet asks"
        if offered == "pathology":
            return 1, "Reviews the pathology slides only; the clinical opinion needs another program"
        return 1, "Gives the clinical opinion only; the pathology slides need another review"
    if needed == "pathology":
        if offered == "clinical":
            return 2, "Gives clinical opinions only; this packet asks for a pathology slide review"
        return 0, "Reviews pathology slides, as this packet asks"
    if offered == "pathology":
        return 2, "Reviews pathology slides only; this packet asks for a clinical second opinion"
    return 0, "Gives clinical second opinions, as this packet asks"


def _disease(option: Option, needs: Needs, fits: list[str], misfits: list[str], to_check: list[str]) -> int:
    table = tumor_types()
    listed = [d for d in option.diseases if d != "all"]
    if not listed:
        if option.diseases:
            fits.append("Takes every tumor type")
        return 1 if needs.tumor_types else 0
    names = ", ".join(table.label(d) for d in listed)
    if not needs.tumor_types:
        to_check.append(f"Lists {names}: the packet's tumor type could not be worked out, so check")
        return 0
    shared = [d for d in listed if d in needs.tumor_types]
    if shared:
        fits.append(f"Has a program for {', '.join(table.label(d) for d in shared)}")
        return 0
    misfits.append(f"Lists {names} only")
    return 2


def _where(
    option: Option,
    needs: Needs,
    fits: list[str],
    misfits: list[str],
    excluded: list[str],
    to_check: list[str],
) -> str:
    served = ", ".join(state_name(s) for s in option.states)
    if option.remote:
        if option.states and needs.state and needs.state not in option.states:
            excluded.append(f"Serves residents of {served} only")
        elif option.states and not needs.state:
            to_check.append(f"Serves residents of {served} only; the patient's state is not in the address")
        fits.append("Remote: the patient need not travel")
        return "remote"
    near = option.states or ((option.state,) if option.state else ())
    where = f" in {state_name(option.state)}" if option.state else ""
    if not near or not needs.state:
        return "unknown"
    if needs.state in near:
        fits.append(f"In person in the patient's state ({state_name(needs.state)})")
        return "near"
    misfits.append(f"In person{where}; the patient lives in {state_name(needs.state)}")
    return "far"


def _exclusions(option: Option, needs: Needs, excluded: list[str], to_check: list[str]) -> None:
    for rule in option.excludes:
        if rule == "active-treatment":
            if needs.current_treatment:
                excluded.append(
                    f"Excludes patients on active treatment; the record shows {needs.current_treatment}"
                )
            else:
                to_check.append("Not for patients on active treatment; the record shows none going on")
        elif rule == "inpatient":
            to_check.append("Not for inpatients: check the patient is not in hospital")
        elif rule.startswith(RESIDENTS):
            state = rule.removeprefix(RESIDENTS)
            if needs.state == state:
                excluded.append(f"Not for residents of {state_name(state)}; the patient lives there")
            elif not needs.state:
                to_check.append(
                    f"Not for residents of {state_name(state)}; the patient's state is not in the address"
                )

"""Reading the worklist for one source (EHR issuer): filters, order, counts, the latest run."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, desc, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from smartapp.triggers import SPECS
from smartapp.web.labels import trigger_label
from smartapp.worklist.tables import STATUSES, screening_runs, worklist_entries

URGENCIES = ("expedite", "routine")
CHANGES = {
    "new": "New since last run",
    "changed": "Changed since last run",
    "new-or-changed": "New or changed since last run",
}
CHANGE_LABELS = {"new": "New since last run", "changed": "Changed", "unchanged": "", "resolved": "Resolved"}
STATUS_LABELS = {
    "new": "New",
    "reviewed": "Reviewed",
    "referral-drafted": "Referral drafted",
    "referral-sent": "Referral sent",
    "opinion-returned": "Opinion returned",
    "dismissed": "Dismissed",
}
TRIGGER_IDS = tuple(spec.id for spec in SPECS)


@dataclass(frozen=True)
class Filters:
    """The GET form's values; anything not in the allowed set is ignored (treated as "any")."""

    trigger: str = ""
    urgency: str = ""
    time_critical: str = ""  # "" | "yes" | "no"
    group: str = ""
    status: str = ""
    change: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        def pick(name: str, allowed: Any) -> str:
            value = query.get(name, "")
            return value if value in allowed else ""

        group = query.get("group", "")
        return cls(
            trigger=pick("trigger", TRIGGER_IDS),
            urgency=pick("urgency", URGENCIES),
            time_critical=pick("time_critical", ("yes", "no")),
            group=group if 0 < len(group) <= 200 else "",
            status=pick("status", STATUSES),
            change=pick("change", CHANGES),
        )

    def query(self) -> dict[str, str]:
        return {key: value for key, value in asdict(self).items() if value}


def _flagged() -> ColumnElement[bool]:
    # The worklist lists patients with something to act on (or whose findings just resolved);
    # patients screened without findings stay out of the coordinator's way.
    entries = worklist_entries.c
    return or_(entries.finding_count > 0, entries.time_critical.is_(True), entries.change == "resolved")


def _conditions(source: str, filters: Filters) -> list[ColumnElement[bool]]:
    entries = worklist_entries.c
    where = [entries.source == source, _flagged()]
    if filters.trigger:
        spaced = literal(" ") + entries.triggers + literal(" ")
        where.append(spaced.contains(f" {filters.trigger} ", autoescape=True))
    if filters.urgency:
        where.append(entries.urgency == filters.urgency)
    if filters.time_critical:
        where.append(entries.time_critical.is_(filters.time_critical == "yes"))
    if filters.group:
        # The list may have been written with or without ASCII escapes.
        where.append(
            or_(
                *(
                    entries.groups_json.contains(
                        json.dumps(filters.group, ensure_ascii=escaped), autoescape=True
                    )
                    for escaped in (True, False)
                )
            )
        )
    if filters.status:
        where.append(entries.status == filters.status)
    if filters.change == "new-or-changed":
        where.append(entries.change.in_(("new", "changed")))
    elif filters.change:
        where.append(entries.change == filters.change)
    return where


@dataclass(frozen=True)
class Row:
    patient_id: str
    name: str
    birth_date: date | None
    triggers: list[str]
    trigger_labels: list[str]
    finding_count: int
    urgency: str
    time_critical: bool
    change: str
    status: str
    groups: list[str]
    screened: datetime | None


def _row(mapping: Mapping[Any, Any]) -> Row:
    triggers = [t for t in (mapping["triggers"] or "").split() if t]
    try:
        groups = [str(g) for g in json.loads(mapping["groups_json"] or "[]")]
    except ValueError:
        groups = []
    return Row(
        patient_id=mapping["patient_id"],
        name=mapping["display_name"] or "(no name recorded)",
        birth_date=mapping["birth_date"],
        triggers=triggers,
        trigger_labels=[trigger_label(t) for t in triggers],
        finding_count=mapping["finding_count"],
        urgency=mapping["urgency"],
        time_critical=bool(mapping["time_critical"]),
        change=mapping["change"],
        status=mapping["status"],
        groups=groups,
        screened=mapping["screened"] or mapping["updated_at"],
    )


# Every column a row shows: not the stored result, which would only be decrypted to be dropped.
_LISTED = [column for column in worklist_entries.c if column.name != "result_json"]


async def list_rows(engine: AsyncEngine, source: str, filters: Filters, limit: int = 2000) -> list[Row]:
    """Time-critical first, then expedite, then the most recently screened, then by name."""
    entries, runs = worklist_entries.c, screening_runs.c
    screened = func.coalesce(runs.started_at, entries.updated_at)
    query = (
        select(*_LISTED, screened.label("screened"))
        .select_from(worklist_entries.outerjoin(screening_runs, runs.id == entries.last_run_id))
        .where(and_(*_conditions(source, filters)))
        .order_by(
            desc(entries.time_critical),
            case((entries.urgency == "expedite", 0), else_=1),
            desc(screened),
            entries.patient_id,
        )
        .limit(limit)
    )
    async with engine.connect() as conn:
        found = [
            (r._mapping["display_name"] or "", _row(r._mapping)) for r in (await conn.execute(query)).all()
        ]
    # Names are encrypted, so SQL cannot order by them: the name order within one screening time
    # is applied here, to the rows the database chose.
    found.sort(
        key=lambda item: (
            not item[1].time_critical,
            item[1].urgency != "expedite",
            -item[1].screened.timestamp() if item[1].screened else 0.0,
            item[0],
            item[1].patient_id,
        )
    )
    return [row for _, row in found]


async def count_rows(engine: AsyncEngine, source: str, filters: Filters) -> int:
    query = select(func.count()).select_from(worklist_entries).where(and_(*_conditions(source, filters)))
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def status_counts(engine: AsyncEngine, source: str) -> dict[str, int]:
    """Flagged entries of the source per status (every status present, zero when none)."""
    entries = worklist_entries.c
    query = (
        select(entries.status, func.count())
        .where(entries.source == source, _flagged())
        .group_by(entries.status)
    )
    async with engine.connect() as conn:
        found = {status: int(n) for status, n in (await conn.execute(query)).all()}
    return {status: found.get(status, 0) for status in STATUSES}


async def groups(engine: AsyncEngine, source: str) -> list[str]:
    query = select(worklist_entries.c.groups_json).where(worklist_entries.c.source == source).distinct()
    names: set[str] = set()
    async with engine.connect() as conn:
        for (text,) in (await conn.execute(query)).all():
            try:
                names.update(str(g) for g in json.loads(text or "[]"))
            except ValueError:
                continue
    return sorted(names)


async def find_entry(engine: AsyncEngine, source: str, patient_id: str) -> Row | None:
    """The entry of exactly this source and patient; None for any other source's patient."""
    entries, runs = worklist_entries.c, screening_runs.c
    query = (
        select(*_LISTED, func.coalesce(runs.started_at, entries.updated_at).label("screened"))
        .select_from(worklist_entries.outerjoin(screening_runs, runs.id == entries.last_run_id))
        .where(entries.source == source, entries.patient_id == patient_id)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return _row(row._mapping) if row is not None else None


async def set_status(engine: AsyncEngine, source: str, patient_id: str, status: str) -> bool:
    if status not in STATUSES:
        raise ValueError(status)
    entries = worklist_entries.c
    async with engine.begin() as conn:
        result = await conn.execute(
            update(worklist_entries)
            .where(entries.source == source, entries.patient_id == patient_id)
            .values(status=status)
        )
    return bool(result.rowcount)


@dataclass(frozen=True)
class RunProgress:
    status: str
    started_at: datetime
    finished_at: datetime | None
    patients_done: int
    patients_total: int | None
    errors: list[tuple[str, int]]

    @property
    def percent(self) -> int | None:
        if not self.patients_total:
            return None
        return min(100, round(100 * self.patients_done / self.patients_total))


def error_causes(errors_json: str) -> list[tuple[str, int]]:
    """`{"cause": count}` (or `{"cause": {"count": n, "examples": [...]}}`): causes with counts only."""
    try:
        document = json.loads(errors_json or "{}")
    except ValueError:
        return [("unreadable error record", 1)]
    causes: list[tuple[str, int]] = []
    for cause, value in document.items() if isinstance(document, dict) else []:
        count = value.get("count") if isinstance(value, dict) else value
        if isinstance(count, int) and not isinstance(count, bool):
            causes.append((str(cause), count))
    return sorted(causes, key=lambda item: (-item[1], item[0]))


async def latest_run(engine: AsyncEngine, source: str) -> RunProgress | None:
    runs = screening_runs.c
    query = select(screening_runs).where(runs.source == source).order_by(desc(runs.started_at)).limit(1)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        return None
    return RunProgress(
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        patients_done=row.patients_done or 0,
        patients_total=row.patients_total,
        errors=error_causes(row.errors_json),
    )


CSV_COLUMNS = (
    "patient_id",
    "name",
    "birth_date",
    "triggers",
    "finding_count",
    "urgency",
    "time_critical",
    "change",
    "status",
    "groups",
    "last_screened",
)


def _cell(value: str) -> str:
    # A spreadsheet runs a cell that starts with = + - @ (or a tab / CR) as a formula (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = [
            row.patient_id,
            row.name,
            row.birth_date.isoformat() if row.birth_date else "",
            "; ".join(row.trigger_labels),
            str(row.finding_count),
            row.urgency,
            "yes" if row.time_critical else "no",
            CHANGE_LABELS.get(row.change, row.change),
            STATUS_LABELS.get(row.status, row.status),
            "; ".join(row.groups),
            row.screened.date().isoformat() if row.screened else "",
        ]
        writer.writerow([_cell(value) for value in values])
    return out.getvalue()

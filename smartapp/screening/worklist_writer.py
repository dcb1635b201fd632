"""Writes a screening run and its patients into the worklist tables (smartapp/worklist/tables.py).

Dialect-neutral upsert (SQLite and PostgreSQL): per batch, one transaction that selects the existing
entries of the batch's patients and then inserts or updates each. An entry's `change` compares this
run's findings with the entry's fingerprint; the coordinator's `status` survives re-runs, except
that a dismissed entry whose findings changed is back to "new"."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, select, update

from smartapp.worklist.tables import screening_runs, worklist_entries

BATCH = 500  # patients per statement (bound parameters stay far below SQLite's limit)


def fingerprint(findings: Sequence[dict[str, Any]]) -> str:
    pairs = sorted((str(f.get("trigger", "")), str(f.get("summary", ""))) for f in findings)
    return hashlib.sha256(json.dumps(pairs, separators=(",", ":")).encode("utf-8")).hexdigest()


class WorklistWriter:
    def __init__(self, engine: Engine, source: str, group_id: str | None = None) -> None:
        self.engine = engine
        self.source = source
        self.group_id = group_id
        self.run_id = ""
        self.changes: Counter[str] = Counter()
        self.patients_done = 0
        # Patients written twice by this run: an export that gave one patient two blocks in files
        # not chained by continuesInFile (each screened apart; the later result is kept).
        self.repeated = 0
        self._unfinished: set[str] = set()

    def start(self, as_of: date, transaction_time: str | None) -> str:
        self.run_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            # Entries last written by a run that never finished (a crash) keep their change on a re-run.
            self._unfinished = {
                row[0]
                for row in conn.execute(
                    select(screening_runs.c.id).where(
                        screening_runs.c.source == self.source, screening_runs.c.status != "finished"
                    )
                )
            }
            conn.execute(
                screening_runs.insert().values(
                    id=self.run_id,
                    source=self.source,
                    group_id=self.group_id,
                    as_of=as_of,
                    started_at=_now(),
                    status="running",
                    transaction_time=transaction_time,
                    patients_done=0,
                    resources=0,
                    errors_json="{}",
                )
            )
        return self.run_id

    def set_total(self, patients_total: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(screening_runs)
                .where(screening_runs.c.id == self.run_id)
                .values(patients_total=patients_total)
            )

    def write(self, items: Sequence[dict[str, Any]], resources: int = 0) -> None:
        """Upsert the bucket results `items` ({"patient_id", "result", "display_name", "birth_date"})."""
        for start in range(0, len(items), BATCH):
            self._write_batch(items[start : start + BATCH])
        self.patients_done += len(items)
        with self.engine.begin() as conn:
            conn.execute(
                update(screening_runs)
                .where(screening_runs.c.id == self.run_id)
                .values(patients_done=self.patients_done, resources=screening_runs.c.resources + resources)
            )

    def finish(
        self,
        status: str,
        errors: dict[str, Any],
        resources: int | None = None,
        transaction_time: str | None = None,
    ) -> None:
        """Close the run; `resources` (every line read, shared ones included) replaces the running sum;
        `transaction_time`: the export's, when it was known only at the end (an export screened as
        it arrived)."""
        values: dict[str, Any] = {
            "status": status,
            "finished_at": _now(),
            "patients_done": self.patients_done,
            "errors_json": json.dumps(errors, sort_keys=True),
        }
        if resources is not None:
            values["resources"] = resources
        if transaction_time is not None:
            values["transaction_time"] = transaction_time
        with self.engine.begin() as conn:
            conn.execute(update(screening_runs).where(screening_runs.c.id == self.run_id).values(**values))

    def _write_batch(self, items: Sequence[dict[str, Any]]) -> None:
        t = worklist_entries
        now = _now()
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(
                    t.c.patient_id, t.c.fingerprint, t.c.status, t.c.change, t.c.groups_json, t.c.last_run_id
                ).where(t.c.source == self.source, t.c.patient_id.in_([i["patient_id"] for i in items]))
            )
            existing = {row.patient_id: row for row in rows}
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for item in items:
                values = self._values(item, now)
                old = existing.get(item["patient_id"])
                if old is None:
                    values |= {
                        "source": self.source,
                        "patient_id": item["patient_id"],
                        "change": "new",
                        "status": "new",
                        "first_run_id": self.run_id,
                        "groups_json": json.dumps([self.group_id] if self.group_id else []),
                    }
                    inserts.append(values)
                else:
                    self.repeated += old.last_run_id == self.run_id
                    values |= self._compare(old, values) | {"key_patient": item["patient_id"]}
                    updates.append(values)
                self.changes[values["change"]] += 1
            if inserts:
                conn.execute(t.insert(), inserts)
            if updates:
                columns = [c for c in updates[0] if c != "key_patient"]
                conn.execute(
                    update(t)
                    .where(t.c.source == self.source, t.c.patient_id == bindparam("key_patient"))
                    .values({c: bindparam(c) for c in columns}),
                    updates,
                )

    def _compare(self, old: Any, values: dict[str, Any]) -> dict[str, Any]:
        groups = json.loads(old.groups_json or "[]")
        if self.group_id and self.group_id not in groups:
            groups.append(self.group_id)
        if old.fingerprint == values["fingerprint"]:
            change = old.change if old.last_run_id in self._unfinished else "unchanged"
            status = old.status
        else:
            change = "resolved" if values["finding_count"] == 0 else "changed"
            status = "new" if old.status == "dismissed" else old.status
        return {"change": change, "status": status, "groups_json": json.dumps(groups)}

    def _values(self, item: dict[str, Any], now: datetime) -> dict[str, Any]:
        result = item["result"]
        findings = result.get("findings") or []
        return {
            "display_name": item.get("display_name"),
            "birth_date": _date(item.get("birth_date")),
            "result_json": json.dumps(result),
            "triggers": " ".join(sorted({str(f.get("trigger")) for f in findings})),
            "finding_count": len(findings),
            "urgency": "expedite" if any(f.get("urgency") == "expedite" for f in findings) else "routine",
            "time_critical": result.get("time_critical") is not None,
            "fingerprint": fingerprint(findings),
            "last_run_id": self.run_id,
            "updated_at": now,
        }


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        return None


def _now() -> datetime:
    return datetime.now(UTC)

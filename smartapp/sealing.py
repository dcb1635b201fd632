"""Whole-table work on encrypted columns, on raw stored values: encrypting clear values (the
migration to encryption, and leftovers of an older version at every start-up), decrypting them
back (that migration's downgrade), and re-encrypting everything under the newest key
(`secondlook rotate-keys`).

Rows are read in primary-key order, a batch at a time, and each write only replaces the value it
read: a row the app rewrote meanwhile (already under the newest key) is left alone rather than
overwritten with older content.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    LargeBinary,
    MetaData,
    Text,
    column,
    func,
    literal,
    select,
    table,
    tuple_,
    update,
)
from sqlalchemy.sql.elements import ColumnClause, ColumnElement

from launch.crypto import DecryptionError, TokenCipher
from smartapp.encryption import ENCRYPTED_TYPES, FERNET_PREFIX, EncryptedBytes, looks_encrypted

BATCH_ROWS = 200
BATCH_ROWS_BINARY = 5  # outside reports are files of up to 10 MB


@dataclass(frozen=True)
class SealedColumn:
    """A column whose stored value is a Fernet token: `binary` when kept as bytes."""

    table: str
    keys: tuple[str, ...]
    column: str
    binary: bool = False
    app_typed: bool = True  # False: tokens written by launch.sessions (never clear, never sealed here)

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


class UnreadableRow(Exception):
    """A stored value that no configured key decrypts (or clear text where a token belongs)."""

    def __init__(self, sealed: SealedColumn, row_id: str, reason: str) -> None:
        super().__init__(f"{sealed.table} row {row_id}: {sealed.column} {reason}")
        self.sealed = sealed
        self.row_id = row_id


def encrypted_columns(metadatas: Iterable[MetaData]) -> list[SealedColumn]:
    """Every encrypted column of these tables: the app's encrypted types and launch's token columns."""
    found = []
    for metadata in metadatas:
        for tab in metadata.sorted_tables:
            keys = tuple(c.name for c in tab.primary_key.columns)
            for col in tab.columns:
                if isinstance(col.type, ENCRYPTED_TYPES):
                    found.append(SealedColumn(tab.name, keys, col.name, isinstance(col.type, EncryptedBytes)))
                elif col.info.get("fernet_token"):
                    found.append(SealedColumn(tab.name, keys, col.name, app_typed=False))
    return found


def seal_clear_values(conn: Connection, cipher: TokenCipher, columns: Sequence[SealedColumn]) -> int:
    """Encrypts every value of the app's encrypted columns that is still clear; returns how many.
    Idempotent: tokens are recognised by their prefix, in SQL."""
    sealed = 0
    for sealed_column in (c for c in columns if c.app_typed):
        stored = _Stored(sealed_column)
        clear = stored.value.isnot(None) & (
            func.substr(stored.value, 1, len(FERNET_PREFIX)) != stored.prefix()
        )
        for rows in stored.batches(conn, clear):
            for row in rows:
                if sealed_column.binary:
                    new: str | bytes = cipher.encrypt_bytes(bytes(row[-1]))
                else:
                    new = cipher.encrypt(str(row[-1]))
                sealed += stored.replace(conn, row, new)
    return sealed


def open_values(conn: Connection, cipher: TokenCipher, columns: Sequence[SealedColumn]) -> int:
    """Decrypts every value of these columns back to clear text (the downgrade of the migration
    that introduced encryption); UnreadableRow names the first value no key decrypts."""
    opened = 0
    for sealed_column in columns:
        stored = _Stored(sealed_column)
        for rows in stored.batches(conn, stored.value.isnot(None)):
            for row in rows:
                if not looks_encrypted(row[-1]):
                    continue  # already clear
                try:
                    clear = cipher.decrypt_bytes(stored.token(row))
                except DecryptionError as exc:
                    raise stored.unreadable(row) from exc
                opened += stored.replace(conn, row, clear if sealed_column.binary else clear.decode())
    return opened


@dataclass
class Rotation:
    """What `rotate` did, per column ("table.column"): values re-encrypted (or, checking, that
    would be) and values already under the newest key."""

    reencrypted: dict[str, int] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "reencrypted": sum(self.reencrypted.values()),
            "already_current": sum(self.current.values()),
            "columns": {
                name: {"reencrypted": self.reencrypted[name], "already_current": self.current[name]}
                for name in self.reencrypted
            },
        }


def rotate(
    conn: Connection, cipher: TokenCipher, columns: Sequence[SealedColumn], *, check: bool = False
) -> Rotation:
    """Re-encrypts every value under the newest key, committing a batch at a time (a failure
    leaves earlier batches done, which is harmless while the old keys are still configured).
    With `check`, writes nothing and only counts. UnreadableRow stops at the first value no key
    decrypts."""
    done = Rotation()
    for sealed_column in columns:
        name = sealed_column.name
        done.reencrypted[name] = done.current[name] = 0
        stored = _Stored(sealed_column)
        for rows in stored.batches(conn, stored.value.isnot(None)):
            for row in rows:
                token = stored.token(row)
                if cipher.is_current(token):
                    done.current[name] += 1
                    continue
                try:
                    rotated = cipher.rotate_bytes(token)
                except DecryptionError as exc:
                    raise stored.unreadable(row) from exc
                new = rotated if sealed_column.binary else rotated.decode("ascii")
                if not check and not stored.replace(conn, row, new):
                    done.current[name] += 1  # the app rewrote it meanwhile, under the newest key
                    continue
                done.reencrypted[name] += 1
            if not check:
                conn.commit()
    conn.rollback()  # ends the read transaction of a check
    return done


class _Stored:
    """An encrypted column and its table's primary key as stored: no type conversion."""

    def __init__(self, sealed_column: SealedColumn) -> None:
        self.sealed_column = sealed_column
        self.table = table(
            sealed_column.table,
            *(column(key) for key in sealed_column.keys),
            column(sealed_column.column, LargeBinary() if sealed_column.binary else Text()),
        )
        self.keys: list[ColumnClause[Any]] = [self.table.c[key] for key in sealed_column.keys]
        self.value: ColumnClause[Any] = self.table.c[sealed_column.column]

    def prefix(self) -> ColumnElement[Any]:
        if self.sealed_column.binary:
            return literal(FERNET_PREFIX.encode("ascii"), LargeBinary())
        return literal(FERNET_PREFIX, Text())

    def batches(self, conn: Connection, where: ColumnElement[bool]) -> Iterator[Sequence[Sequence[Any]]]:
        """(keys..., value) rows in primary-key order, a batch at a time."""
        size = BATCH_ROWS_BINARY if self.sealed_column.binary else BATCH_ROWS
        last: tuple[Any, ...] | None = None
        while True:
            query = select(*self.keys, self.value).where(where).order_by(*self.keys).limit(size)
            if last is not None:
                after = self.keys[0] > last[0] if len(self.keys) == 1 else tuple_(*self.keys) > tuple_(*last)
                query = query.where(after)
            rows = conn.execute(query).all()
            if not rows:
                return
            yield rows
            last = tuple(rows[-1][: len(self.keys)])

    def replace(self, conn: Connection, row: Sequence[Any], new: str | bytes) -> int:
        """Writes `new` where the row still holds what was read: 1 when it did, 0 when it changed."""
        match = [key == row[i] for i, key in enumerate(self.keys)]
        result = conn.execute(
            update(self.table).where(*match, self.value == row[-1]).values({self.sealed_column.column: new})
        )
        return int(result.rowcount)

    def token(self, row: Sequence[Any]) -> bytes:
        stored = row[-1]
        if not looks_encrypted(stored):
            raise UnreadableRow(
                self.sealed_column,
                self.row_id(row),
                "is clear text, not encrypted; `secondlook migrate` encrypts clear values",
            )
        return bytes(stored) if self.sealed_column.binary else str(stored).encode("ascii", "replace")

    def unreadable(self, row: Sequence[Any]) -> UnreadableRow:
        return UnreadableRow(
            self.sealed_column,
            self.row_id(row),
            "cannot be decrypted with any key in SECONDLOOK_SECRET_KEY "
            "(was it written with a key that is no longer listed?)",
        )

    def row_id(self, row: Sequence[Any]) -> str:
        return ", ".join(f"{key}={row[i]}" for i, key in enumerate(self.sealed_column.keys))

"""The embedded default store: one SQLite file with the OpenSIPS 3.4 tables.

Owns the SQL against SQLite (schema in sqlite.sql beside this file). Calls are short and
made only from the CLI and the loading process, so the async methods call sqlite3
directly. A write either reaches the file or raises StoreError; nothing is silent.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from fastds.errors import StoreError
from fastds.store import DIALPLAN_COLUMNS, DISPATCHER_COLUMNS, check_versions

SCHEMA = Path(__file__).with_name("sqlite.sql")


class SqliteStore:
    def __init__(self, path: str):
        self.path = path
        self._db: sqlite3.Connection | None = None

    def _connect(self, create: bool = False) -> sqlite3.Connection:
        if self._db is None:
            if not create and not Path(self.path).exists():
                raise StoreError(f"SQLite store {self.path} does not exist: run `fastds db init`")
            try:
                if create:
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, isolation_level=None)
                self._db.row_factory = sqlite3.Row
                self._db.execute("PRAGMA busy_timeout = 5000")
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from None
        return self._db

    def _execute(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        try:
            return self._connect().execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from None

    async def init_schema(self) -> None:
        db = self._connect(create=True)
        try:
            db.executescript(SCHEMA.read_text())
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create the schema in {self.path}: {exc}") from None
        await self.check_schema()

    async def check_schema(self) -> None:
        try:
            rows = self._connect().execute("SELECT table_name, table_version FROM version").fetchall()
        except sqlite3.OperationalError:
            raise StoreError(f"{self.path} has no version table: run `fastds db init`") from None
        check_versions({row["table_name"]: int(row["table_version"]) for row in rows})

    async def load_destinations(self) -> list[dict[str, Any]]:
        # no ORDER BY, as OpenSIPS: equal priorities keep the order the database returns
        return [dict(row) for row in self._execute(f"SELECT {', '.join(DISPATCHER_COLUMNS)} FROM dispatcher")]

    async def load_dialplan(self, dpid: int) -> list[dict[str, Any]]:
        return [dict(row) for row in self._execute(
            f"SELECT {', '.join(DIALPLAN_COLUMNS)} FROM dialplan WHERE dpid = ?", (dpid,))]

    async def get_destination(self, destination_id: int) -> dict[str, Any] | None:
        row = self._execute(f"SELECT {', '.join(DISPATCHER_COLUMNS)} FROM dispatcher WHERE id = ?",
                            (destination_id,)).fetchone()
        return dict(row) if row is not None else None

    async def update_destination(self, destination_id: int, fields: dict[str, Any]) -> None:
        columns = [column for column in DISPATCHER_COLUMNS if column != "id" and column in fields]
        cursor = self._execute(f"UPDATE dispatcher SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
                               (*(fields[column] for column in columns), destination_id))
        if cursor.rowcount != 1:
            raise StoreError(f"no destination with id {destination_id}")

    async def add_destination(self, fields: dict[str, Any]) -> int:
        columns = [column for column in DISPATCHER_COLUMNS if column != "id" and column in fields]
        cursor = self._execute(
            f"INSERT INTO dispatcher ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            tuple(fields[column] for column in columns))
        if cursor.rowcount != 1:
            raise StoreError("the destination was not written")
        return int(cursor.lastrowid)

    async def remove_destination(self, destination_id: int) -> None:
        if self._execute("DELETE FROM dispatcher WHERE id = ?", (destination_id,)).rowcount != 1:
            raise StoreError(f"no destination with id {destination_id}")

    async def set_state(self, destination_id: int, state: int) -> None:
        if self._execute("UPDATE dispatcher SET state = ? WHERE id = ?", (state, destination_id)).rowcount != 1:
            raise StoreError(f"no destination with id {destination_id}")

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

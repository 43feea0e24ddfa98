"""The embedded default store: one SQLite file with the OpenSIPS 3.4 tables.

Owns the SQL against SQLite (schema in sqlite.sql beside this file). Every call runs on
one thread of the store's own, so a locked database (waited on up to the 5 s busy
timeout) never stalls the caller's event loop: the prober keeps probing, the API keeps
answering. A write either reaches the file or raises StoreError; nothing is silent.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastds.errors import MissingTable, RowNotFound, StoreError
from fastds.store import (
    ADDRESS_COLUMNS,
    DIALPLAN_COLUMNS,
    DISPATCHER_COLUMNS,
    ROW_NOUNS,
    TABLE_COLUMNS,
    RowMethods,
    check_versions,
    columns_of,
)

SCHEMA = Path(__file__).with_name("sqlite.sql")


class SqliteStore(RowMethods):
    def __init__(self, path: str):
        self.path = path
        self.name = f"SQLite {path}"
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def _run(self, function, *args):
        """`function(*args)` on the store's thread (sqlite3 objects stay on one thread)."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastds-sqlite")
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    def _connect(self, create: bool = False) -> sqlite3.Connection:
        if self._db is None:
            if not create and not Path(self.path).exists():
                raise StoreError(f"SQLite store {self.path} does not exist: run `fastds db init`")
            try:
                if create:
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._db.row_factory = sqlite3.Row
                self._db.execute("PRAGMA busy_timeout = 5000")
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from None
        return self._db

    def _execute(self, sql: str, params: tuple, fetch: bool):
        """On the store's thread: rows as dicts (fetch), else (rowcount, lastrowid)."""
        try:
            cursor = self._connect().execute(sql, params)
            return [dict(row) for row in cursor] if fetch else (cursor.rowcount, cursor.lastrowid)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from None

    async def _query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        return await self._run(self._execute, sql, params, True)

    async def _change(self, sql: str, params: tuple = ()) -> tuple[int, int]:
        return await self._run(self._execute, sql, params, False)

    def _create_schema(self) -> None:
        try:
            self._connect(create=True).executescript(SCHEMA.read_text())
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create the schema in {self.path}: {exc}") from None

    def _versions(self) -> dict[str, int]:
        try:
            rows = self._connect().execute("SELECT table_name, table_version FROM version").fetchall()
        except sqlite3.OperationalError:
            raise StoreError(f"{self.path} has no version table: run `fastds db init`") from None
        return {row["table_name"]: int(row["table_version"]) for row in rows}

    async def init_schema(self) -> None:
        await self._run(self._create_schema)
        await self.check_schema()

    async def check_schema(self) -> None:
        check_versions(await self._run(self._versions))

    async def load_destinations(self) -> list[dict[str, Any]]:
        # no ORDER BY, as OpenSIPS: equal priorities keep the order the database returns
        return await self._query(f"SELECT {', '.join(DISPATCHER_COLUMNS)} FROM dispatcher")

    async def load_dialplan(self, dpid: int) -> list[dict[str, Any]]:
        return await self._query(f"SELECT {', '.join(DIALPLAN_COLUMNS)} FROM dialplan WHERE dpid = ?", (dpid,))

    async def load_addresses(self) -> list[dict[str, Any]]:
        try:
            return await self._query(f"SELECT {', '.join(ADDRESS_COLUMNS)} FROM address ORDER BY id")
        except StoreError as exc:
            if "no such table" in str(exc):
                raise MissingTable(f"{self.path} has no address table: run `fastds db init` to add it") from None
            raise


    # -- rows of the tables fastds writes (TABLE_COLUMNS) ---------------------------------

    async def _get_row(self, table: str, row_id: int) -> dict[str, Any] | None:
        rows = await self._query(f"SELECT {', '.join(TABLE_COLUMNS[table])} FROM {table} WHERE id = ?", (row_id,))
        return rows[0] if rows else None

    async def _insert(self, table: str, fields: dict[str, Any]) -> int:
        columns = columns_of(table, fields)
        count, row_id = await self._change(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            tuple(fields[column] for column in columns))
        if count != 1:
            raise StoreError(f"the {ROW_NOUNS[table]} was not written")
        return int(row_id)

    async def _update_row(self, table: str, row_id: int, fields: dict[str, Any]) -> None:
        columns = columns_of(table, fields)
        count, _ = await self._change(f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
                                      (*(fields[column] for column in columns), row_id))
        if count != 1:
            raise RowNotFound(f"no {ROW_NOUNS[table]} with id {row_id}")

    async def _delete_row(self, table: str, row_id: int) -> None:
        if (await self._change(f"DELETE FROM {table} WHERE id = ?", (row_id,)))[0] != 1:
            raise RowNotFound(f"no {ROW_NOUNS[table]} with id {row_id}")

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None

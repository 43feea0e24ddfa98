"""The production store: MySQL / MariaDB through asyncmy, with the OpenSIPS 3.4 tables.

Owns the SQL against MySQL (schema in mysql.sql beside this file) and the connection: one
connection, opened on first use and again after any failure, so a database that went
away is retried on the next call; every statement bounded in time. Every driver error
becomes a StoreError that names the server (never the password); a write either reaches
the table or raises. `db init` creates the database itself when the user may.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import warnings
from pathlib import Path
from typing import Any

import asyncmy
from asyncmy.cursors import DictCursor
from asyncmy.errors import Error as DriverError

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

SCHEMA = Path(__file__).with_name("mysql.sql")
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_S = 5  # connect included: every statement is answered, or is an error, within this
ER_BAD_DB_ERROR = 1049  # MySQL's "Unknown database"


class UnknownDatabase(StoreError):
    """The database FASTDS_DB_URL names does not exist on the server."""


def parse_mysql_url(url: str) -> dict[str, Any]:
    """mysql://user:password@host:port/database -> asyncmy.connect() arguments."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "mysql" or not parts.hostname or not parts.path.strip("/"):
        raise StoreError("FASTDS_DB_URL must look like mysql://user:password@host:port/database")
    return {"host": parts.hostname, "port": parts.port or 3306, "user": urllib.parse.unquote(parts.username or ""),
            "password": urllib.parse.unquote(parts.password or ""), "db": parts.path.strip("/")}


class MysqlStore(RowMethods):
    def __init__(self, url: str):
        self._params = parse_mysql_url(url)
        self.name = f"MySQL {self._params['user']}@{self._params['host']}:{self._params['port']}/{self._params['db']}"
        self._connection = None

    async def _execute(self, sql: str, params: tuple = (), fetch: bool = False, idempotent: bool = True):
        """Run one statement; (rows or None, rowcount, lastrowid), within STATEMENT_TIMEOUT_S:
        a server behind a partition (nothing answers, nothing closes) is an error, not a
        wait without end. A statement cut off (timed out, or its caller cancelled) leaves the
        connection in an unknown state: it is dropped."""
        try:
            return await asyncio.wait_for(self._attempt(sql, params, fetch, idempotent), STATEMENT_TIMEOUT_S)
        except asyncio.TimeoutError:
            await self.close()
            raise StoreError(f"{self.name}: not answering (no reply within {STATEMENT_TIMEOUT_S} s)") from None
        except asyncio.CancelledError:
            await self.close()
            raise

    async def _connect(self, with_database: bool = True):
        params = self._params if with_database else {k: v for k, v in self._params.items() if k != "db"}
        try:
            return await asyncmy.connect(**params, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except (DriverError, OSError, EOFError, RuntimeError) as exc:
            # on uvloop, asyncmy raises RuntimeError ("Transport does not expose socket
            # instance") when the server hangs up during the handshake
            if isinstance(exc, DriverError) and exc.args and exc.args[0] == ER_BAD_DB_ERROR:
                raise UnknownDatabase(f"{self.name}: database {self._params['db']!r} does not exist: run "
                                      "`fastds db init` (it creates it when the user may)") from None
            raise StoreError(f"{self.name}: cannot connect: {exc}") from None

    async def _attempt(self, sql: str, params: tuple, fetch: bool, idempotent: bool):
        """One statement. A failure drops the connection. A connection kept from before may
        have died with an outage since: an idempotent statement that fails on it is tried
        once more on a new one (an INSERT is not: it may have landed before the connection broke)."""
        reused = self._connection is not None
        if self._connection is None:
            self._connection = await self._connect()
        try:
            async with self._connection.cursor(DictCursor) as cursor:
                await cursor.execute(sql, params)
                rows = await cursor.fetchall() if fetch else None
                return rows, cursor.rowcount, cursor.lastrowid
        except (DriverError, OSError) as exc:
            await self.close()
            if reused and idempotent:
                return await self._attempt(sql, params, fetch, idempotent=False)
            raise StoreError(f"{self.name}: {exc}") from None

    async def _create_database(self) -> None:
        """CREATE DATABASE, for `fastds db init` on a server where the user may; a clear
        error naming what to do where it may not."""
        try:
            connection = await asyncio.wait_for(self._connect(with_database=False), STATEMENT_TIMEOUT_S)
            try:
                async with connection.cursor() as cursor:
                    await asyncio.wait_for(cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{self._params['db']}`"),
                                           STATEMENT_TIMEOUT_S)
            finally:
                connection.close()
        except (DriverError, OSError, asyncio.TimeoutError) as exc:
            raise StoreError(f"{self.name}: database {self._params['db']!r} does not exist and could not be created "
                             f"({exc or 'no reply'}); create it (CREATE DATABASE {self._params['db']}) or have it "
                             "created, then run `fastds db init` again") from None

    async def init_schema(self) -> None:
        try:
            await self._execute("SELECT 1")
        except UnknownDatabase:
            await self._create_database()
        with warnings.catch_warnings():  # the server's "already exists" notes of a partial schema
            warnings.simplefilter("ignore")
            for statement in filter(None, (part.strip() for part in SCHEMA.read_text().split(";\n"))):
                lines = [line for line in statement.splitlines() if not line.startswith("--")]
                if lines:
                    await self._execute("\n".join(lines))
        await self.check_schema()

    async def check_schema(self) -> None:
        try:
            rows, _, _ = await self._execute("SELECT table_name, table_version FROM version", fetch=True)
        except StoreError as exc:
            if "doesn't exist" in str(exc):
                raise StoreError(f"{self.name} has no version table: run `fastds db init`") from None
            raise
        check_versions({row["table_name"]: int(row["table_version"]) for row in rows})

    async def load_destinations(self) -> list[dict[str, Any]]:
        rows, _, _ = await self._execute(f"SELECT {', '.join(DISPATCHER_COLUMNS)} FROM dispatcher", fetch=True)
        return list(rows)

    async def load_dialplan(self, dpid: int) -> list[dict[str, Any]]:
        rows, _, _ = await self._execute(f"SELECT {', '.join(DIALPLAN_COLUMNS)} FROM dialplan WHERE dpid = %s",
                                         (dpid,), fetch=True)
        return list(rows)

    async def load_addresses(self) -> list[dict[str, Any]]:
        try:
            rows, _, _ = await self._execute(f"SELECT {', '.join(ADDRESS_COLUMNS)} FROM address ORDER BY id",
                                             fetch=True)
        except StoreError as exc:
            if "doesn't exist" in str(exc):
                raise MissingTable(f"{self.name} has no address table: run `fastds db init` to add it") from None
            raise
        return list(rows)


    # -- rows of the tables fastds writes (TABLE_COLUMNS) ---------------------------------

    async def _get_row(self, table: str, row_id: int) -> dict[str, Any] | None:
        rows, _, _ = await self._execute(f"SELECT {', '.join(TABLE_COLUMNS[table])} FROM {table} WHERE id = %s",
                                         (row_id,), fetch=True)
        return rows[0] if rows else None

    async def _insert(self, table: str, fields: dict[str, Any]) -> int:
        columns = columns_of(table, fields)
        _, count, row_id = await self._execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('%s' for _ in columns)})",
            tuple(fields[column] for column in columns), idempotent=False)
        if count != 1:
            raise StoreError(f"{self.name}: the {ROW_NOUNS[table]} was not written")
        return int(row_id)

    async def _update_row(self, table: str, row_id: int, fields: dict[str, Any]) -> None:
        columns = columns_of(table, fields)
        _, count, _ = await self._execute(f"UPDATE {table} SET {', '.join(f'{c} = %s' for c in columns)} WHERE id = %s",
                                          (*(fields[column] for column in columns), row_id))
        # MySQL counts changed rows: an UPDATE to the same values matches but changes none
        if count != 1 and await self._get_row(table, row_id) is None:
            raise RowNotFound(f"no {ROW_NOUNS[table]} with id {row_id}")

    async def _delete_row(self, table: str, row_id: int) -> None:
        _, count, _ = await self._execute(f"DELETE FROM {table} WHERE id = %s", (row_id,))
        if count != 1:
            raise RowNotFound(f"no {ROW_NOUNS[table]} with id {row_id}")

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()

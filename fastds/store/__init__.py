"""Destination stores: the OpenSIPS `dispatcher`, `dialplan` and `address` tables.

Owns the Store interface every backend implements and opening one from FASTDS_DB_URL.
Only `fastds db init` creates tables; everything else refuses a missing table or a
table version fastds does not speak (dispatcher 9, dialplan 5, address 5), saying what to
do -- except the address table, which an OpenSIPS database without the permissions module
lacks: without it, loading addresses raises MissingTable and fastds trusts what
FASTDS_TRUSTED_SOURCES and the destinations name.
Workers never import this package (docs/architecture.md §1).
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from fastds.dispatch.trust import ADDRESS_COLUMNS
from fastds.errors import StoreError, TableVersionMismatch

DISPATCHER_COLUMNS = ("id", "setid", "destination", "socket", "state", "probe_mode", "weight", "priority", "attrs",
                      "description")
DIALPLAN_COLUMNS = ("id", "dpid", "pr", "match_op", "match_exp", "match_flags", "subst_exp", "repl_exp", "timerec",
                    "disabled", "attrs")
TABLE_COLUMNS = {"dispatcher": DISPATCHER_COLUMNS, "address": ADDRESS_COLUMNS}  # the tables fastds writes rows to
ROW_NOUNS = {"dispatcher": "destination", "address": "address"}  # what messages call a row
TABLE_VERSIONS = {"dispatcher": 9, "dialplan": 5, "address": 5}
OPTIONAL_TABLES = {"address"}


class Store(Protocol):
    name: str  # what messages call it: "SQLite /path" or "MySQL user@host:port/db", never a password

    async def init_schema(self) -> None: ...
    async def check_schema(self) -> None: ...
    async def load_destinations(self) -> list[dict[str, Any]]: ...
    async def load_dialplan(self, dpid: int) -> list[dict[str, Any]]: ...
    async def get_destination(self, destination_id: int) -> dict[str, Any] | None: ...
    async def add_destination(self, fields: dict[str, Any]) -> int: ...
    async def update_destination(self, destination_id: int, fields: dict[str, Any]) -> None: ...
    async def remove_destination(self, destination_id: int) -> None: ...
    async def set_state(self, destination_id: int, state: int) -> None: ...
    async def load_addresses(self) -> list[dict[str, Any]]: ...
    async def get_address(self, address_id: int) -> dict[str, Any] | None: ...
    async def add_address(self, fields: dict[str, Any]) -> int: ...
    async def update_address(self, address_id: int, fields: dict[str, Any]) -> None: ...
    async def remove_address(self, address_id: int) -> None: ...
    async def close(self) -> None: ...


class RowMethods:
    """The per-table row methods every backend has, over its own _get_row, _insert,
    _update_row and _delete_row (`table` is one of TABLE_COLUMNS)."""

    async def get_destination(self, destination_id: int) -> dict[str, Any] | None:
        return await self._get_row("dispatcher", destination_id)

    async def add_destination(self, fields: dict[str, Any]) -> int:
        return await self._insert("dispatcher", fields)

    async def update_destination(self, destination_id: int, fields: dict[str, Any]) -> None:
        await self._update_row("dispatcher", destination_id, fields)

    async def remove_destination(self, destination_id: int) -> None:
        await self._delete_row("dispatcher", destination_id)

    async def set_state(self, destination_id: int, state: int) -> None:
        await self._update_row("dispatcher", destination_id, {"state": state})

    async def get_address(self, address_id: int) -> dict[str, Any] | None:
        return await self._get_row("address", address_id)

    async def add_address(self, fields: dict[str, Any]) -> int:
        return await self._insert("address", fields)

    async def update_address(self, address_id: int, fields: dict[str, Any]) -> None:
        await self._update_row("address", address_id, fields)

    async def remove_address(self, address_id: int) -> None:
        await self._delete_row("address", address_id)


def columns_of(table: str, fields: dict[str, Any]) -> list[str]:
    """The columns of `table` a write sets, in table order (id is the store's to assign)."""
    return [column for column in TABLE_COLUMNS[table] if column != "id" and column in fields]


def check_versions(found: dict[str, int]) -> None:
    """StoreError unless every table fastds reads has the version it speaks."""
    for table, version in TABLE_VERSIONS.items():
        if table not in found and table in OPTIONAL_TABLES:
            continue
        if table not in found:
            raise StoreError(f"table {table!r} is missing from the version table: run `fastds db init`")
        if found[table] != version:
            raise TableVersionMismatch(f"table {table!r} has version {found[table]}, fastds speaks version {version} "
                             "(OpenSIPS 3.4); migrate the table or point FASTDS_DB_URL elsewhere")


async def ensure_schema(store: Store) -> bool:
    """`fastds db init`: create what is missing; False when the schema was complete
    already (nothing run, so MySQL prints no "already exists" notes), True when created."""
    try:
        await store.check_schema()
        await store.load_addresses()  # the optional table too (MissingTable is a StoreError)
        return False
    except StoreError:
        pass
    await store.init_schema()
    return True


def open_store(url: str) -> Store:
    """The store of FASTDS_DB_URL. sqlite:///X is the path X relative to the working
    directory (SQLAlchemy's convention), sqlite:////X the absolute /X; the store holds,
    and its messages print, the absolute path either way."""
    if url.startswith("sqlite:///"):
        from fastds.store.sqlite import SqliteStore

        return SqliteStore(os.path.abspath(url.removeprefix("sqlite:///")))
    if url.startswith("mysql://"):
        from fastds.store.mysql import MysqlStore

        return MysqlStore(url)
    raise StoreError(f"FASTDS_DB_URL {url.split('@')[-1]!r}: expected sqlite:///path or mysql://...")

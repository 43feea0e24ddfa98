"""The SQLite store: schema, versions, and writes that either land or raise."""

import asyncio
import sqlite3

import pytest

from fastds.errors import StoreError
from fastds.store import open_store
from fastds.store.sqlite import SqliteStore


def run(coroutine):
    return asyncio.run(coroutine)


def test_init_creates_the_opensips_tables_and_is_idempotent(tmp_path):
    store = SqliteStore(str(tmp_path / "sub" / "ds.db"))
    run(store.init_schema())
    run(store.init_schema())
    versions = dict(sqlite3.connect(tmp_path / "sub" / "ds.db").execute("SELECT * FROM version").fetchall())
    assert versions == {"dispatcher": 9, "dialplan": 5, "address": 5}


def test_a_missing_store_or_table_says_run_db_init(tmp_path):
    with pytest.raises(StoreError, match="fastds db init"):
        run(SqliteStore(str(tmp_path / "none.db")).check_schema())
    sqlite3.connect(tmp_path / "empty.db").close()
    with pytest.raises(StoreError, match="no version table"):
        run(SqliteStore(str(tmp_path / "empty.db")).check_schema())


def test_an_unsupported_table_version_is_refused(tmp_path):
    path = tmp_path / "old.db"
    run(SqliteStore(str(path)).init_schema())
    with sqlite3.connect(path) as db:
        db.execute("UPDATE version SET table_version = 8 WHERE table_name = 'dispatcher'")
    with pytest.raises(StoreError, match="'dispatcher' has version 8, fastds speaks version 9"):
        run(SqliteStore(str(path)).check_schema())


def test_destinations_round_trip(tmp_path):
    store = SqliteStore(str(tmp_path / "ds.db"))
    run(store.init_schema())
    first = run(store.add_destination({"setid": 1, "destination": "sip:127.0.0.1:5070", "weight": "3"}))
    second = run(store.add_destination({"setid": 2, "destination": "sip:127.0.0.1:5071", "state": 1}))
    run(store.set_state(first, 2))
    rows = {row["id"]: row for row in run(store.load_destinations())}
    assert rows[first]["state"] == 2 and rows[first]["weight"] == "3" and rows[first]["attrs"] == ""
    assert rows[second]["setid"] == 2 and rows[second]["socket"] is None
    run(store.remove_destination(second))
    with pytest.raises(StoreError, match=f"no destination with id {second}"):
        run(store.remove_destination(second))
    with pytest.raises(StoreError):
        run(store.set_state(second, 0))


def test_dialplan_rows_of_one_dpid(tmp_path):
    path = tmp_path / "ds.db"
    run(SqliteStore(str(path)).init_schema())
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO dialplan (dpid, pr, match_op, match_exp, attrs) VALUES (1, 0, 0, '100', 'set=2')")
        db.execute("INSERT INTO dialplan (dpid, pr, match_op, match_exp, attrs) VALUES (2, 0, 0, '200', 'set=3')")
    rows = run(SqliteStore(str(path)).load_dialplan(1))
    assert [(row["match_exp"], row["attrs"]) for row in rows] == [("100", "set=2")]


def test_store_urls_pick_the_backend():
    from fastds.store.mysql import MysqlStore

    assert isinstance(open_store("sqlite:///tmp/x.db"), SqliteStore)
    assert isinstance(open_store("mysql://root:secret@127.0.0.1:3306/opensips"), MysqlStore)
    with pytest.raises(StoreError, match="expected sqlite:///path or mysql://"):
        open_store("postgres://x/y")


def test_the_default_store_is_the_absolute_var_lib_path_wherever_fastds_runs(tmp_path, monkeypatch):
    from fastds.config import load_settings

    monkeypatch.chdir(tmp_path)
    assert open_store(load_settings({}).db_url).path == "/var/lib/fastds/fastds.db"


def test_a_relative_sqlite_url_is_resolved_and_messages_print_the_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///nonexistent/dir/fastds.db")
    assert store.path == str(tmp_path / "nonexistent" / "dir" / "fastds.db")
    with pytest.raises(StoreError, match=f"SQLite store {tmp_path}/nonexistent/dir/fastds.db does not exist"):
        run(store.check_schema())


def test_address_rows_are_added_changed_listed_and_removed(tmp_path):
    store = SqliteStore(str(tmp_path / "ds.db"))
    run(store.init_schema())
    row = {"grp": 1, "ip": "198.51.100.7", "mask": 32, "port": 0, "proto": "any", "pattern": None, "context_info": "a"}
    first = run(store.add_address(row))
    run(store.update_address(first, {**row, "port": 5060}))
    assert run(store.load_addresses()) == [{"id": first, **row, "port": 5060}]
    run(store.remove_address(first))
    assert run(store.get_address(first)) is None
    with pytest.raises(StoreError, match=f"no address with id {first}"):
        run(store.remove_address(first))


def test_a_store_without_the_address_table_still_loads_and_db_init_adds_it(tmp_path):
    from fastds.errors import MissingTable
    from fastds.store import ensure_schema

    path = tmp_path / "ds.db"
    store = SqliteStore(str(path))
    run(store.init_schema())
    run(store.close())
    with sqlite3.connect(path) as db:  # an OpenSIPS database without the permissions module
        db.execute("DROP TABLE address")
        db.execute("DELETE FROM version WHERE table_name = 'address'")
    store = SqliteStore(str(path))
    run(store.check_schema())
    with pytest.raises(MissingTable, match="no address table: run `fastds db init`"):
        run(store.load_addresses())
    assert run(ensure_schema(store)) is True and run(store.load_addresses()) == []
    assert run(ensure_schema(store)) is False
    run(store.close())

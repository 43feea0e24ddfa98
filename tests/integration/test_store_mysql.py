"""The MySQL/MariaDB store against the real MariaDB of this machine (127.0.0.1:3306).

Each test gets a fresh database, dropped afterwards. A database outage is a TCP relay in
front of MariaDB that the test cuts and restores, so the shared server is never restarted.
"""

from __future__ import annotations

import asyncio

import pytest

from fastds.dispatch.dns import DnsTable, questions_of
from fastds.dispatch.sets import build_sets
from fastds.errors import StoreError
from fastds.store import open_store
from fastds.store.mysql import MysqlStore, parse_mysql_url
from tests.harness import Relay, admin, free_tcp_port, mysql_url

OPENSIPS_DISPATCHER = """CREATE TABLE dispatcher (
    id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
    setid INT DEFAULT 0 NOT NULL, destination CHAR(192) DEFAULT '' NOT NULL, socket CHAR(128) DEFAULT NULL,
    state INT DEFAULT 0 NOT NULL, probe_mode INT(11) UNSIGNED DEFAULT 0, weight CHAR(64) DEFAULT 1 NOT NULL,
    priority INT DEFAULT 0, attrs CHAR(128) DEFAULT '' NOT NULL, description CHAR(64) DEFAULT '' NOT NULL
) ENGINE=InnoDB"""


def run(coroutine):
    return asyncio.run(coroutine)


def test_url_parsing_and_errors_never_show_the_password():
    assert parse_mysql_url("mysql://ops:s%40cret@db.example:3307/opensips") == {
        "host": "db.example", "port": 3307, "user": "ops", "password": "s@cret", "db": "opensips"}
    with pytest.raises(StoreError, match="mysql://user:password@host:port/database"):
        parse_mysql_url("mysql://host-only")
    with pytest.raises(StoreError) as info:
        run(MysqlStore("mysql://ops:hunter2@127.0.0.1:1/opensips").check_schema())
    assert "ops@127.0.0.1:1/opensips" in str(info.value) and "hunter2" not in str(info.value)


def test_db_init_creates_the_opensips_tables_once(mysql_database):
    async def body():
        store = open_store(mysql_url(mysql_database))
        await store.init_schema()
        await store.init_schema()
        await store.check_schema()
        assert await store.load_destinations() == [] and await store.load_dialplan(0) == []
        await store.close()

    run(body())


def test_missing_tables_and_unsupported_versions_are_refused(mysql_database):
    async def body():
        store = MysqlStore(mysql_url(mysql_database))
        with pytest.raises(StoreError, match="run `fastds db init`"):
            await store.check_schema()
        await store.init_schema()
        await admin(f"UPDATE {mysql_database}.version SET table_version = 4 WHERE table_name = 'dialplan'")
        with pytest.raises(StoreError, match="'dialplan' has version 4, fastds speaks version 5"):
            await store.check_schema()
        await store.close()

    run(body())


def test_destinations_round_trip_and_state_write_back(mysql_database):
    async def body():
        store = MysqlStore(mysql_url(mysql_database))
        await store.init_schema()
        first = await store.add_destination({"setid": 1, "destination": "sip:127.0.0.1:5070", "weight": "3"})
        second = await store.add_destination({"setid": 1, "destination": "sip:127.0.0.1:5071"})
        await store.set_state(first, 2)
        await store.set_state(first, 2)  # unchanged value: still a known destination, not an error
        rows = {row["id"]: row for row in await store.load_destinations()}
        assert rows[first]["state"] == 2 and rows[first]["weight"] == "3" and rows[second]["socket"] is None
        await store.remove_destination(second)
        with pytest.raises(StoreError, match=f"no destination with id {second}"):
            await store.set_state(second, 0)
        with pytest.raises(StoreError):
            await store.remove_destination(second)
        await store.close()

    run(body())


def test_a_table_opensips_made_loads_as_opensips_reads_it(mysql_database):
    run(admin(f"USE {mysql_database}", OPENSIPS_DISPATCHER,
              "CREATE TABLE version (table_name CHAR(32) NOT NULL, table_version INT UNSIGNED DEFAULT 0 NOT NULL,"
              " CONSTRAINT t_name_idx UNIQUE (table_name))",
              "INSERT INTO version VALUES ('dispatcher', 9), ('dialplan', 5)",
              "CREATE TABLE dialplan (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, dpid INT NOT NULL, pr INT DEFAULT 0"
              " NOT NULL, match_op INT NOT NULL, match_exp CHAR(64) NOT NULL, match_flags INT DEFAULT 0 NOT NULL,"
              " subst_exp CHAR(64), repl_exp CHAR(32), timerec CHAR(255), disabled INT DEFAULT 0 NOT NULL,"
              " attrs CHAR(255))",
              "INSERT INTO dispatcher (setid, destination, weight, priority, probe_mode, description) VALUES"
              " (1, 'sip:127.0.0.1:5080', '5', NULL, NULL, 'by hand'),"
              " (1, 'sip:nowhere.invalid:5060', '1', 2, 0, 'does not resolve'),"
              " (2, 'sip:127.0.0.1:5081;transport=udp', '10', 1, 1, '')",
              "INSERT INTO dialplan (dpid, pr, match_op, match_exp, attrs) VALUES (0, 1, 1, '^00', 'set=2;alg=4')"))

    async def load():
        store = MysqlStore(mysql_url(mysql_database))
        await store.check_schema()
        rows, dialplan = await store.load_destinations(), await store.load_dialplan(0)
        await store.close()
        return rows, dialplan

    rows, dialplan = run(load())
    sets, problems = build_sets(rows)
    sets, unresolved, _ = DnsTable(10, 300).expand(sets, questions_of(sets))  # the name is for the prober to look up
    assert problems == [] and len(unresolved) == 1 and "could not resolve nowhere.invalid:5060" in str(unresolved[0])
    (by_hand,) = sets[1].destinations
    assert (by_hand.weight, by_hand.priority, by_hand.probe_mode, by_hand.description) == (5, 0, 0, "by hand")
    assert sets[2].destinations[0].transport == "udp" and sets[2].destinations[0].probe_mode == 1
    assert dialplan[0]["attrs"] == "set=2;alg=4"


def test_the_database_going_away_is_an_error_and_coming_back_is_picked_up(mysql_database):
    relay = Relay()
    try:
        async def outage_and_back():
            store = MysqlStore(mysql_url(mysql_database, relay.port))
            await store.init_schema()
            dest = await store.add_destination({"setid": 1, "destination": "sip:127.0.0.1:5070"})
            relay.cut()
            with pytest.raises(StoreError, match=f"root@127.0.0.1:{relay.port}/{mysql_database}"):
                await store.set_state(dest, 2)
            relay.restore()
            await store.set_state(dest, 2)  # reconnects by itself
            rows = await store.load_destinations()
            await store.close()
            return rows

        assert run(outage_and_back())[0]["state"] == 2
    finally:
        relay.close()


def test_db_init_on_an_existing_schema_says_so_without_the_servers_notes(mysql_database):
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "FASTDS_DB_URL": mysql_url(mysql_database)}
    first, again = (subprocess.run([sys.executable, "-m", "fastds", "db", "init"], capture_output=True, text=True,
                                   env=env, timeout=60) for _ in range(2))
    assert (first.returncode, first.stdout) == (0, "fastds: schema ready (created)\n"), first.stderr
    assert (again.returncode, again.stdout, again.stderr) == (0, "fastds: schema ready (existing)\n", "")


def test_db_init_creates_a_database_that_does_not_exist_yet(mysql_database):
    """The README's MySQL walk-through: `fastds db init` on a server where the database is not there yet."""
    import subprocess
    import sys

    run(admin(f"DROP DATABASE {mysql_database}"))  # the fixture drops it again afterwards (IF EXISTS)
    # an API port nothing listens on: the CLI must read the store, not a fastds running on the default port
    env = {"PATH": "/usr/bin:/bin", "FASTDS_DB_URL": mysql_url(mysql_database),
           "FASTDS_API_LISTEN": f"127.0.0.1:{free_tcp_port()}"}
    listed = subprocess.run([sys.executable, "-m", "fastds", "ds", "list"], capture_output=True, text=True, env=env,
                            timeout=60)
    assert listed.returncode == 1
    assert f"database '{mysql_database}' does not exist: run `fastds db init` (it creates it when the user may)" \
        in listed.stderr
    init = subprocess.run([sys.executable, "-m", "fastds", "db", "init"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert (init.returncode, init.stdout) == (0, "fastds: schema ready (created)\n"), init.stderr
    run(MysqlStore(mysql_url(mysql_database)).check_schema())


def test_a_silent_partition_is_an_error_within_the_statement_bound_not_a_wait(mysql_database):
    from fastds.store.mysql import STATEMENT_TIMEOUT_S

    relay = Relay()
    try:
        async def partition():
            store = MysqlStore(mysql_url(mysql_database, relay.port))
            await store.init_schema()
            relay.stall()  # nothing answers, nothing closes
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(StoreError, match=f"not answering \\(no reply within {STATEMENT_TIMEOUT_S} s\\)"):
                await store.load_destinations()
            waited = loop.time() - started
            relay.heal()
            rows = await store.load_destinations()  # a new connection: the cut-off one was dropped
            await store.close()
            return waited, rows

        waited, rows = run(partition())
        assert waited < STATEMENT_TIMEOUT_S + 5 and rows == []  # the bound is fastds's, with room for a busy box
    finally:
        relay.close()

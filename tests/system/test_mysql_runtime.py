"""fastds on MariaDB: the database goes away while fastds routes, and comes back.

The prober reaches MariaDB through a relay the test cuts: calls keep completing on what
fastds already has, the failed state write is logged and retried, and lands once the
database is back.
"""

import asyncio
import time

from fastds.store.mysql import MysqlStore
from tests.harness import Relay, free_udp_port, mysql_url, wait_for


async def seed(url: str, ports: list[int]) -> None:
    store = MysqlStore(url)
    await store.init_schema()
    for port in ports:
        await store.add_destination({"setid": 1, "destination": f"sip:127.0.0.1:{port}"})
    await store.close()


async def states(url: str) -> dict[str, int]:
    store = MysqlStore(url)
    rows = await store.load_destinations()
    await store.close()
    return {row["destination"]: row["state"] for row in rows}


def test_a_database_outage_while_routing(harness, mysql_database):
    relay = Relay()
    try:
        live, dead = free_udp_port(), free_udp_port()
        asyncio.run(seed(mysql_url(mysql_database), [live, dead]))
        harness.uas("uas.xml", live)
        harness.start_fastds(workers=2, probing_threshold=1, probing_mode=1, ping_interval_s=1, fr_timeout_ms=500,
                             db_url=mysql_url(mysql_database, relay.port))
        relay.cut()  # the database goes away: the dead destination's state change cannot be written
        wait_for(lambda: harness.log_lines(f"sip:127.0.0.1:{dead} active -> probing"), 10, "probing")
        wait_for(lambda: harness.log_lines("cannot write states to the store, will retry"), 10, "the write failure")
        code, stats = harness.uac("uac.xml", 100, rate=50)
        assert code == 0 and (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) == ("100", "0")
        assert asyncio.run(states(mysql_url(mysql_database)))[f"sip:127.0.0.1:{dead}"] == 0
        relay.restore()
        wait_for(lambda: harness.log_lines("store writable again"), 10, "the write to succeed")
        time.sleep(0.2)
        assert asyncio.run(states(mysql_url(mysql_database)))[f"sip:127.0.0.1:{dead}"] == 2
    finally:
        relay.close()


def test_the_api_on_mariadb_refuses_writes_while_the_database_is_away(harness, mysql_database):
    relay = Relay()
    try:
        port, added_port = free_udp_port(), free_udp_port()
        asyncio.run(seed(mysql_url(mysql_database), [port]))
        harness.start_fastds(db_url=mysql_url(mysql_database, relay.port))
        status, reply, _ = harness.api("POST", "/api/v1/destinations",
                                       {"setid": 2, "destination": f"sip:127.0.0.1:{added_port}", "weight": "4"})
        assert status == 201 and reply["applied"]
        relay.cut()
        status, reply, _ = harness.api("POST", "/api/v1/destinations",
                                       {"setid": 3, "destination": "sip:127.0.0.1:5995"})
        assert status == 503 and "nothing was changed" in reply["error"] and "MySQL root@127.0.0.1" in reply["error"]
        status, health, _ = harness.api("GET", "/api/v1/health")
        assert status == 200 and health["status"] == "degraded" and health["checks"]["store"] != "ok"
        sets = harness.mi("ds_list")["result"]["PARTITIONS"][0]["SETS"]  # shared memory keeps answering
        assert [s["id"] for s in sets] == [1, 2]
        relay.restore()
        assert sorted(asyncio.run(states(mysql_url(mysql_database)))) == sorted([f"sip:127.0.0.1:{added_port}",
                                                                                 f"sip:127.0.0.1:{port}"])
        status, reply, _ = harness.api("PUT", "/api/v1/destinations/2", {"weight": 4})  # unchanged values: still ok
        assert status == 200 and reply["applied"]
        assert harness.api("GET", "/api/v1/health")[1]["status"] == "ok"
    finally:
        relay.close()


def test_a_silent_database_partition_leaves_health_answering_degraded_while_calls_flow(harness, mysql_database):
    """A relay that stops forwarding without closing (a partition): /health must answer, say
    why, and the log must say it once; calls go on, and health is ok again once it heals."""
    relay = Relay()
    try:
        port = free_udp_port()
        asyncio.run(seed(mysql_url(mysql_database), [port]))
        harness.uas("uas.xml", port)
        harness.start_fastds(db_url=mysql_url(mysql_database, relay.port))
        assert harness.api("GET", "/api/v1/health")[1]["status"] == "ok"
        relay.stall()
        for _ in range(2):  # the first check times out; the second finds no connection to reuse, and times out too
            started = time.monotonic()
            status, health, _ = harness.api("GET", "/api/v1/health")
            assert time.monotonic() - started < 10  # fastds bounds it (2 s), not the client's 30 s
            assert status == 200 and health["status"] == "degraded", health
            assert health["checks"]["store"].startswith("store not answering"), health
        assert len(harness.log_lines("store check failed: store not answering")) == 1
        code, stats = harness.uac("uac.xml", 50, rate=50)
        assert code == 0 and (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) == ("50", "0")
        relay.heal()
        wait_for(lambda: harness.api("GET", "/api/v1/health")[1]["status"] == "ok" or None, 30, "health ok again")
        assert harness.log_lines("answers again")
    finally:
        relay.close()

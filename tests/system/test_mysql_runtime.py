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

"""The prober's handling of operators' requests over a real SQLite store and shared memory:
state changes and reloads in the order received, store and runtime agreeing afterwards,
and every state change a reload makes logged (issue 14 #4, #7)."""

import asyncio
import logging

from fastds.config import load_settings
from fastds.dispatch.state import DestinationState
from fastds.procs.prober import Prober
from fastds.shm.layout import ShmView, ShmWriter, create
from fastds.store.sqlite import SqliteStore

ACTIVE, INACTIVE = DestinationState.ACTIVE, DestinationState.INACTIVE


async def started_prober(tmp_path) -> tuple[Prober, SqliteStore, ShmView]:
    store = SqliteStore(str(tmp_path / "ds.db"))
    await store.init_schema()
    for port in (6001, 6002):
        await store.add_destination({"setid": 1, "destination": f"sip:127.0.0.1:{port}", "state": 0})
    region = create(16, 1, 4096)
    settings = load_settings({"FASTDS_EGRESS_ALLOW": "127.0.0.0/8"})
    prober = Prober(settings, ShmWriter(region), store, b"unit-test-secret", b"127.0.0.1:5099",
                    send=lambda data, addr: None)
    await prober.reload(0.0, inherit=False)
    return prober, store, ShmView(region)


def runtime_state(view: ShmView, dest_id: int) -> int:
    sets, _ = view.sets(view.generation)
    return next(d.state for d in sets[1].destinations if d.id == dest_id)


async def stored_state(store: SqliteStore, dest_id: int) -> int:
    return (await store.get_destination(dest_id))["state"]


def test_set_state_then_reload_without_inherit_keeps_the_change_in_store_and_runtime(tmp_path):
    async def body():
        prober, store, view = await started_prober(tmp_path)
        set_state = asyncio.create_task(prober.control({"op": "set_state", "destination": 1, "state": INACTIVE,
                                                        "mi": True}, 1.0))
        reload = asyncio.create_task(prober.control({"op": "reload", "inherit": False}, 1.0))
        assert (await set_state)["ok"] and (await reload)["ok"]
        await prober.write_back()
        return runtime_state(view, 1), await stored_state(store, 1)

    assert asyncio.run(body()) == (INACTIVE, INACTIVE)


def test_a_set_state_received_during_a_reload_is_applied_after_it(tmp_path):
    async def body():
        prober, store, view = await started_prober(tmp_path)
        reload = asyncio.create_task(prober.control({"op": "reload", "inherit": False}, 1.0))
        await asyncio.sleep(0)  # the reload is reading the store when the change arrives
        set_state = asyncio.create_task(prober.control({"op": "set_state", "destination": 2, "state": INACTIVE,
                                                        "mi": True}, 1.0))
        assert (await reload)["ok"] and (await set_state)["ok"]
        await prober.write_back()
        return runtime_state(view, 2), await stored_state(store, 2)

    assert asyncio.run(body()) == (INACTIVE, INACTIVE)


def test_states_picked_up_from_the_store_by_a_reload_are_logged(tmp_path, caplog):
    async def body():
        prober, store, view = await started_prober(tmp_path)
        await store.set_state(2, INACTIVE)  # the panel edited the state column
        with caplog.at_level(logging.INFO, logger="fastds.prober"):
            assert (await prober.control({"op": "reload", "inherit": True}, 1.0))["ok"]
        return runtime_state(view, 2)

    assert asyncio.run(body()) == INACTIVE
    assert "set 1 sip:127.0.0.1:6002 active -> inactive (set in the store, reloaded)" in caplog.messages


def test_the_status_report_reply_fits_one_control_datagram_at_its_largest():
    import orjson

    from fastds.dispatch.health import StateChange
    from fastds.dispatch.sets import build_sets
    from fastds.dispatch.status_report import StatusReport
    from fastds.procs.control import MAX_DATAGRAM

    longest = "sip:" + "a" * 180 + ".example:5060"
    (destination,) = build_sets([{"id": 1, "setid": 2147483647, "destination": longest}])[0][2147483647].destinations
    report = StatusReport()
    for n in range(300):
        report.loading(n)
        report.loaded(1000, 999, n)
        report.state_changed(StateChange(destination, 0, DestinationState.ACTIVE, DestinationState.PROBING,
                                         "timeout (no final reply)"), n)
    assert len(orjson.dumps({"id": 2**31, "ok": True, "groups": report.as_json()})) < MAX_DATAGRAM


def test_the_prober_arms_one_timer_for_its_cores_next_deadline(tmp_path):
    """No polling: the first probe goes out at start, the retransmission at T1 after it."""
    async def body():
        store = SqliteStore(str(tmp_path / "ds.db"))
        await store.init_schema()
        await store.add_destination({"setid": 1, "destination": "sip:127.0.0.1:6001", "state": 2})
        sent: list[tuple[float, bytes]] = []
        loop = asyncio.get_running_loop()
        settings = load_settings({"FASTDS_EGRESS_ALLOW": "127.0.0.0/8", "FASTDS_T1_MS": "200"})
        prober = Prober(settings, ShmWriter(create(16, 1, 4096)), store, b"unit-test-secret", b"127.0.0.1:5099",
                        send=lambda data, addr: sent.append((loop.time(), data)))
        await prober.reload(loop.time(), inherit=False)
        prober.start(loop)
        for _ in range(200):
            if len(sent) >= 2:
                break
            await asyncio.sleep(0.05)
        prober.stop()
        return sent

    (first_at, first), (second_at, second) = asyncio.run(body())[:2]
    assert first == second and second_at - first_at >= 0.2


def test_a_reload_publishes_the_address_rows_and_reports_the_bad_ones(tmp_path):
    async def body():
        prober, store, view = await started_prober(tmp_path)
        good = await store.add_address({"grp": 0, "ip": "198.51.100.7", "mask": 32, "port": 0, "proto": "any"})
        bad = await store.add_address({"grp": 0, "ip": "pbx.example.com", "mask": 32, "port": 0, "proto": "any"})
        reply = await prober.control({"op": "reload", "inherit": True}, 1.0)
        return good, bad, reply, view.addresses(view.generation)

    good, bad, reply, published = asyncio.run(body())
    assert [row["id"] for row in published] == [good]
    assert any(problem.startswith(f"address row id={bad}: ip ") for problem in reply["problems"])


def test_pike_rm_goes_to_the_workers_through_the_unblock_ring(tmp_path):
    async def body():
        prober, _, view = await started_prober(tmp_path)
        assert (await prober.control({"op": "unblock", "ip": "203.0.113.9"}, 1.0))["ok"]
        return view.unblock_requests(0)

    assert asyncio.run(body()) == (1, ["203.0.113.9"])


def test_a_reload_reports_a_table_version_mismatch(tmp_path):
    """The rows load, but the operator is told the version table disagrees (as /health and check say)."""
    async def body():
        prober, store, view = await started_prober(tmp_path)
        await store._change("UPDATE version SET table_version = 8 WHERE table_name = 'dispatcher'")
        reply = await prober.control({"op": "reload", "inherit": True}, 1.0)
        return reply, view.generation

    reply, generation = asyncio.run(body())
    assert reply["ok"] and reply["generation"] == generation == 2
    assert reply["problems"] == ["table 'dispatcher' has version 8, fastds speaks version 9 (OpenSIPS 3.4); "
                                 "migrate the table or point FASTDS_DB_URL elsewhere"]

"""sd_notify against a fake NOTIFY_SOCKET, and the shared-memory layout."""

import socket

import pytest

from fastds._ext import dshash
from fastds.config import systemd_environment
from fastds.dispatch.sets import build_sets
from fastds.errors import ShmLayoutError
from fastds.procs.notify import Notifier
from fastds.shm.layout import DESTINATION_COUNTERS, HEADER, WORKER_COUNTERS, ShmView, ShmWriter, create


def test_notifier_sends_to_a_path_and_to_the_abstract_namespace(tmp_path):
    for address in (str(tmp_path / "notify"), "@fastds-test-notify"):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        server.bind("\0" + address[1:] if address.startswith("@") else address)
        notifier = Notifier(address)
        assert notifier.notify("READY=1", "STATUS=2 workers")
        assert server.recv(1024) == b"READY=1\nSTATUS=2 workers"
        notifier.close()
        server.close()
    assert Notifier("").notify("READY=1") is False


def test_systemd_environment():
    assert systemd_environment({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "3000000"}) == ("/run/x", 3000000)
    assert systemd_environment({"WATCHDOG_USEC": "junk"}) == ("", 0)


def sets(n, setid=1, first_id=1):
    found, _ = build_sets([{"id": first_id + i, "setid": setid, "destination": f"sip:127.0.0.1:{7000 + i}",
                            "weight": i + 1} for i in range(n)])
    return found


def test_header_is_64_bytes_and_checked_on_attach():
    region = create(8, 2, 4096)
    assert HEADER.size == 64 and ShmView(region).generation == 0
    region[0:8] = b"NOTOURS!"
    with pytest.raises(ShmLayoutError, match="magic"):
        ShmView(region)


def test_publish_flips_areas_and_keeps_the_old_one_readable():
    writer = ShmWriter(create(8, 2, 4096))
    first = writer.publish(sets(2), {}, [{"id": 1}])
    second = writer.publish({**sets(3), **sets(1, setid=2, first_id=9)}, {2: 2}, [])
    assert (first, second) == (1, 2) and writer.generation == 2
    old, _ = writer.sets(first)
    new, first_slot = writer.sets(second)
    assert [d.id for d in old[1].destinations] == [1, 2] and writer.dialplan(first) == [{"id": 1}]
    assert [(d.id, d.state) for d in new[1].destinations] == [(1, 0), (2, 2), (3, 0)] and first_slot == {1: 0, 2: 3}
    assert writer.dialplan(second) == []


def test_too_many_destinations_or_routes_are_refused():
    writer = ShmWriter(create(2, 1, 4096))
    with pytest.raises(ShmLayoutError, match="FASTDS_SHM_DESTINATIONS=2"):
        writer.publish(sets(3), {}, [])
    with pytest.raises(ShmLayoutError, match="FASTDS_SHM_ROUTES_BYTES"):
        writer.publish(sets(1), {}, [{"x": "y" * 5000}])
    assert writer.generation == 0


def test_set_tables_read_states_loads_and_rtts_in_place():
    writer = ShmWriter(create(8, 2, 4096))
    generation = writer.publish(sets(3), {}, [])
    found, first_slot = writer.sets(generation)
    table = dshash.SetTable([1, 1, 1], [b"a", b"b", b"c"], writer.live(generation, first_slot[1]))
    writer.set_state(1, 2)
    assert table.get_state(1) == 2
    table.add_load(2, 3)
    writer.set_rtt(0, 12.5)
    states, in_flight, rtt, counters = writer.live_arrays(generation)
    assert (states, in_flight, rtt[0], counters) == (b"\0\2\0", (0, 0, 3), 12.5, (0,) * 3 * len(DESTINATION_COUNTERS))


def test_worker_counters_rows():
    view = ShmView(create(4, 3, 4096))
    view.write_worker_counters(2, {"packets_in": 7, "replies_5xx": 1, "unknown": 5})
    assert view.worker_counters(2) == {**dict.fromkeys(WORKER_COUNTERS, 0), "packets_in": 7, "replies_5xx": 1}
    assert view.worker_counters(0)["packets_in"] == 0


def test_destination_counts_are_shared_and_follow_a_destination_across_reloads():
    writer = ShmWriter(create(8, 1, 4096))
    generation = writer.publish(sets(3), {}, [])
    found, first_slot = writer.sets(generation)
    table = dshash.SetTable([1, 1, 1], [b"a", b"b", b"c"], writer.live(generation, first_slot[1]))
    table.add_pick(1)
    table.add_pick(1)
    table.add_failover(2)
    table.add_reply(2, 503)
    table.add_reply(2, 200)
    table.add_timeout(2)
    with pytest.raises(ValueError):
        table.add_reply(2, 180)  # finals only
    assert DESTINATION_COUNTERS == ("picks", "failovers", "replies_2xx", "replies_3xx", "replies_4xx", "replies_5xx",
                                    "replies_6xx", "timeouts")
    assert table.counts(1) == (2, 0, 0, 0, 0, 0, 0, 0) and writer.counts(generation, 2) == (0, 1, 1, 0, 0, 1, 0, 1)
    rows = [{"id": 3, "setid": 1, "destination": "sip:127.0.0.1:5003", "description": "kept"},
            {"id": 9, "setid": 1, "destination": "sip:127.0.0.1:5009"}]
    reloaded, _ = build_sets(rows)
    second = writer.publish(reloaded, {}, [])
    after, _ = writer.sets(second)
    assert [d.id for d in after[1].destinations] == [3, 9] and after[1].destinations[0].description == "kept"
    assert writer.counts(second, 0) == (0, 1, 1, 0, 0, 1, 0, 1) and writer.counts(second, 1) == (0,) * 8


def test_address_rows_are_published_with_their_generation():
    writer = ShmWriter(create(8, 1, 4096))
    rows = [{"id": 1, "grp": 0, "ip": "10.0.0.0", "mask": 8, "port": 0, "proto": "any", "pattern": None,
             "context_info": None}]
    generation = writer.publish(sets(1), {}, [{"id": 5}], rows)
    assert writer.addresses(generation) == rows and writer.dialplan(generation) == [{"id": 5}]
    assert writer.addresses(writer.publish(sets(1), {}, [])) == []


def test_blocked_ips_per_worker_and_the_unblock_ring():
    from fastds.shm.layout import BLOCKED_SLOTS, UNBLOCK_SLOTS

    writer = ShmWriter(create(4, 2, 4096))
    view = ShmView(writer.region)
    assert view.blocked(0) == ([], 0)
    many = [(f"203.0.113.{i}", 100.0 + i, 160.0 + i, i) for i in range(BLOCKED_SLOTS + 5)]
    view.write_blocked(1, many)
    shown, total = view.blocked(1)
    assert shown == many[:BLOCKED_SLOTS] and total == BLOCKED_SLOTS + 5 and view.blocked(0) == ([], 0)
    view.write_blocked(1, many[:1])
    assert view.blocked(1) == (many[:1], 1)
    seen, ips = view.unblock_requests(0)
    assert (seen, ips) == (0, [])
    writer.request_unblock("203.0.113.7")
    writer.request_unblock("2001:db8::7")
    assert view.unblock_requests(seen) == (2, ["203.0.113.7", "2001:db8::7"])
    for i in range(UNBLOCK_SLOTS + 3):
        writer.request_unblock(f"198.51.100.{i}")
    count, ips = view.unblock_requests(2)
    assert count == 2 + UNBLOCK_SLOTS + 3 and ips == [f"198.51.100.{i}" for i in range(3, UNBLOCK_SLOTS + 3)]


def test_a_row_left_odd_by_a_dead_writer_is_fixed_by_the_next_one():
    import struct

    view = ShmView(create(4, 1, 4096))
    struct.pack_into("<Q", view.region, view.layout.blocked_offset(0), 7)  # died while writing
    assert view.blocked(0) == ([], 0)
    view.write_blocked(0, [("203.0.113.1", 1.0, 2.0, 3)])
    assert view.blocked(0) == ([("203.0.113.1", 1.0, 2.0, 3)], 1)

"""The stream connection table (fastds/net/connections.py): node-unique ids that name their
owner, reuse of outgoing connections, the idle timeout and the cap, with an injected clock."""

import pytest

from fastds.dispatch.txn import TLS_CONNECTION, connection_owner, transport_of
from fastds.net.connections import ConnectionTable

PEER, DESTINATION = ("127.0.0.1", 40000), ("127.0.0.1", 5080)


def test_ids_are_unique_and_name_the_worker_that_holds_the_connection():
    first, second = ConnectionTable(0, 10, 60.0), ConnectionTable(3, 10, 60.0)
    ids = [first.add(PEER, "tcp", False, None, 0.0)[0].id for _ in range(3)]
    ids += [second.add(PEER, "tcp", False, None, 0.0)[0].id for _ in range(3)]
    assert len(set(ids)) == 6
    assert [connection_owner(i) for i in ids] == [0, 0, 0, 3, 3, 3]


def test_a_tls_connections_id_says_so():
    table = ConnectionTable(2, 10, 60.0)
    tls, _ = table.add(PEER, "tls", False, None, 0.0)
    tcp, _ = table.add(PEER, "tcp", False, None, 0.0)
    assert tls.id & TLS_CONNECTION and connection_owner(tls.id) == 2
    assert transport_of((*PEER, tls.id)) == "tls" and transport_of((*PEER, tcp.id)) == "tcp"
    assert transport_of(PEER) == "udp"


def test_an_outgoing_connection_is_found_again_by_destination_and_transport():
    table = ConnectionTable(1, 10, 60.0)
    tcp, _ = table.add(DESTINATION, "tcp", True, "tcp handle", 0.0)
    table.add(DESTINATION, "tls", True, "tls handle", 0.0)
    table.add(PEER, "tcp", False, "accepted", 0.0)  # an accepted one is never reused towards a destination
    assert table.towards(DESTINATION, "tcp").handle == "tcp handle"
    assert table.towards(DESTINATION, "tls").handle == "tls handle"
    assert table.towards(PEER, "tcp") is None
    table.remove(tcp.id)
    assert table.towards(DESTINATION, "tcp") is None and len(table) == 2


def test_a_new_outgoing_connection_replaces_the_old_one_to_the_same_destination():
    table = ConnectionTable(0, 10, 60.0)
    old, _ = table.add(DESTINATION, "tcp", True, "old", 0.0)
    new, to_close = table.add(DESTINATION, "tcp", True, "new", 1.0)
    assert to_close == [old] and table.towards(DESTINATION, "tcp") is new and table.get(old.id) is None


def test_the_cap_closes_the_connection_used_least_recently():
    table = ConnectionTable(0, 3, 60.0)
    a, b, c = (table.add(("127.0.0.1", 40000 + n), "tcp", False, n, float(n))[0] for n in range(3))
    table.used(a.id, 10.0)  # a is now the most recently used
    d, to_close = table.add(("127.0.0.1", 40003), "tcp", False, 3, 11.0)
    assert to_close == [b] and len(table) == 3
    assert table.get(b.id) is None and table.get(a.id) is a and table.get(c.id) is c and table.get(d.id) is d


def test_idle_connections_are_returned_once_past_the_timeout_and_use_restarts_it():
    table = ConnectionTable(0, 10, 30.0)
    a, _ = table.add(PEER, "tcp", False, "a", 0.0)
    b, _ = table.add(("127.0.0.1", 40001), "tcp", False, "b", 5.0)
    assert table.idle(29.9) == []
    table.used(a.id, 20.0)
    assert table.idle(35.0) == [b]  # b: unused since 5 s; a was used at 20 s
    assert table.idle(49.9) == [] and table.idle(50.0) == [a] and len(table) == 0


def test_removing_twice_or_an_unknown_id_is_harmless():
    table = ConnectionTable(0, 10, 30.0)
    a, _ = table.add(DESTINATION, "tcp", True, "a", 0.0)
    assert table.remove(a.id) is a and table.remove(a.id) is None and table.remove(12345) is None
    table.used(a.id, 1.0)  # a late read on a connection already gone
    assert len(table) == 0


def test_a_cap_below_one_is_refused():
    with pytest.raises(ValueError, match="max_connections"):
        ConnectionTable(0, 0, 30.0)

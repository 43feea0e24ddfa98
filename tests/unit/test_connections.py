"""The stream connection table (fastds/net/connections.py): node-unique ids that name their
owner and whether they are TLS, the idle timeout and the cap, with an injected clock."""

import pytest

from fastds.dispatch.peers import DIALED_CONNECTION, TLS_CONNECTION, connection_owner, dial, is_dial, transport_of
from fastds.net.connections import ConnectionTable

PEER = ("127.0.0.1", 40000)


def test_ids_are_unique_and_name_the_worker_that_holds_the_connection():
    first, second = ConnectionTable(0, 10, 60.0), ConnectionTable(3, 10, 60.0)
    ids = [first.add(PEER, "tcp", None, 0.0)[0].id for _ in range(3)]
    ids += [second.add(PEER, "tcp", None, 0.0)[0].id for _ in range(3)]
    assert len(set(ids)) == 6
    assert [connection_owner(i) for i in ids] == [0, 0, 0, 3, 3, 3]


def test_a_tls_connections_id_says_so():
    table = ConnectionTable(2, 10, 60.0)
    tls, _ = table.add(PEER, "tls", None, 0.0)
    tcp, _ = table.add(PEER, "tcp", None, 0.0)
    assert tls.id & TLS_CONNECTION and connection_owner(tls.id) == 2
    assert transport_of((*PEER, tls.id)) == "tls" and transport_of((*PEER, tcp.id)) == "tcp"
    assert transport_of(PEER) == "udp"


def test_an_opened_connections_id_says_so_and_is_never_a_dial_address():
    table = ConnectionTable(1, 10, 60.0, first_serial=(1 << 38) - 2)  # ids wrap round, skipping serial 0
    ids = [table.add(PEER, "tls", None, 0.0, dialled=True)[0].id for _ in range(3)]
    assert all(i & DIALED_CONNECTION and i & TLS_CONNECTION and connection_owner(i) == 1 for i in ids)
    assert not any(is_dial((*PEER, i)) for i in ids) and len(set(ids)) == 3
    assert is_dial(dial("127.0.0.1", 5061, "tls")) and transport_of(dial("127.0.0.1", 5060, "tcp")) == "tcp"


def test_the_cap_closes_the_connection_used_least_recently():
    table = ConnectionTable(0, 3, 60.0)
    a, b, c = (table.add(("127.0.0.1", 40000 + n), "tcp", n, float(n))[0] for n in range(3))
    table.used(a.id, 10.0)  # a is now the most recently used
    d, to_close = table.add(("127.0.0.1", 40003), "tcp", 3, 11.0)
    assert to_close == [b] and len(table) == 3
    assert table.get(b.id) is None and table.get(a.id) is a and table.get(c.id) is c and table.get(d.id) is d


def test_idle_connections_are_returned_once_past_the_timeout_and_use_restarts_it():
    table = ConnectionTable(0, 10, 30.0)
    a, _ = table.add(PEER, "tcp", "a", 0.0)
    b, _ = table.add(("127.0.0.1", 40001), "tcp", "b", 5.0)
    assert table.idle(29.9) == []
    table.used(a.id, 20.0)
    assert table.idle(35.0) == [b]  # b: unused since 5 s; a was used at 20 s
    assert table.idle(49.9) == [] and table.idle(50.0) == [a] and len(table) == 0


def test_removing_twice_or_an_unknown_id_is_harmless():
    table = ConnectionTable(0, 10, 30.0)
    a, _ = table.add(PEER, "tcp", "a", 0.0)
    assert table.remove(a.id) is a and table.remove(a.id) is None and table.remove(12345) is None
    table.used(a.id, 1.0)  # a late read on a connection already gone
    assert len(table) == 0


def test_a_cap_below_one_is_refused():
    with pytest.raises(ValueError, match="max_connections"):
        ConnectionTable(0, 0, 30.0)

"""The per-source flood limit with an injected clock."""

from fastds.dispatch.pike import FloodGuard, Pike
from fastds.dispatch.trust import TrustedSources, address_rules


def test_a_source_over_the_limit_is_blocked_for_the_block_time_while_another_passes():
    pike = Pike(limit=5, window_s=2.0, block_s=10.0, capacity=100)
    assert all(pike.admit("203.0.113.1", 0.1 * i) for i in range(5))
    assert not pike.admit("203.0.113.1", 0.6)  # the sixth in the window
    assert pike.admit("198.51.100.2", 0.7)
    blocked, released = pike.sweep(1.0)
    assert [b.ip for b in blocked] == ["203.0.113.1"] and released == []
    assert pike.sweep(1.5) == ([], [])  # logged once
    assert not pike.admit("203.0.113.1", 9.0) and pike.dropped == 2
    (shown,) = pike.blocked()
    assert (shown.since, shown.until, shown.dropped) == (0.6, 10.6, 2)
    blocked, released = pike.sweep(10.6)
    assert blocked == [] and [(b.ip, b.dropped) for b in released] == [("203.0.113.1", 2)]
    assert pike.admit("203.0.113.1", 10.7) and pike.blocked() == [] and pike.blocks == 1


def test_requests_spread_over_windows_never_block():
    pike = Pike(limit=3, window_s=1.0, block_s=60.0, capacity=10)
    assert all(pike.admit("203.0.113.1", t * 0.4) for t in range(100))  # 2.5 a second, under 3 per window


def test_a_block_ended_by_a_request_is_reported_once_by_the_next_sweep():
    pike = Pike(limit=1, window_s=5.0, block_s=1.0, capacity=10)
    pike.admit("203.0.113.1", 0.0)
    pike.admit("203.0.113.1", 0.1)
    pike.sweep(0.2)
    assert pike.admit("203.0.113.1", 2.0)
    blocked, released = pike.sweep(2.1)
    assert blocked == [] and [b.ip for b in released] == ["203.0.113.1"]
    assert pike.sweep(2.2) == ([], [])


def test_unblock_releases_at_once():
    pike = Pike(limit=1, window_s=5.0, block_s=60.0, capacity=10)
    pike.admit("203.0.113.1", 0.0)
    pike.admit("203.0.113.1", 0.1)
    assert not pike.unblock("198.51.100.1", 0.2)
    assert pike.unblock("203.0.113.1", 0.2) and pike.admit("203.0.113.1", 0.3)


def test_a_spray_of_sources_cannot_grow_the_table_beyond_its_bound():
    pike = Pike(limit=2, window_s=10.0, block_s=60.0, capacity=256)
    for i in range(20_000):
        pike.admit(f"127.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", i * 1e-4)
    assert len(pike) == 256 and pike.evicted == 20_000 - 256
    # the flooder that keeps sending stays known (least recently seen go first)
    for i in range(3):
        pike.admit("203.0.113.1", 3.0 + i * 0.01)
    for i in range(1000):
        pike.admit(f"10.0.{i >> 8}.{i & 255}", 3.1)
        pike.admit("203.0.113.1", 3.1)
    assert [b.ip for b in pike.blocked()] == ["203.0.113.1"] and len(pike) == 256


def test_the_guard_never_counts_responses_nor_trusted_sources_unless_asked():
    trust = TrustedSources(address_rules([{"id": 1, "ip": "198.51.100.7"}])[0])
    guard = FloodGuard(Pike(limit=1, window_s=10.0, block_s=60.0, capacity=10), trust, limit_trusted=False)
    assert all(guard.admit(b"SIP/2.0 200 OK\r\n", "203.0.113.1", 5060, 0.0) for _ in range(10))
    assert all(guard.admit(b"INVITE sip:x SIP/2.0\r\n", "198.51.100.7", 5060, 0.0) for _ in range(10))
    assert guard.admit(b"INVITE sip:x SIP/2.0\r\n", "203.0.113.1", 5060, 0.0)
    assert not guard.admit(b"OPTIONS sip:x SIP/2.0\r\n", "203.0.113.1", 5060, 0.0)
    strict = FloodGuard(Pike(limit=1, window_s=10.0, block_s=60.0, capacity=10), trust, limit_trusted=True)
    assert strict.admit(b"INVITE sip:x SIP/2.0\r\n", "198.51.100.7", 5060, 0.0)
    assert not strict.admit(b"INVITE sip:x SIP/2.0\r\n", "198.51.100.7", 5060, 0.0)

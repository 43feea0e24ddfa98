"""The egress check and the timer queue."""

import ipaddress

from fastds.dispatch.timers import TimerQueue
from fastds.net.egress import EgressPolicy


def networks(*cidrs):
    return [ipaddress.ip_network(c) for c in cidrs]


def test_egress_allows_only_the_listed_networks_and_counts_the_rest():
    policy = EgressPolicy(networks("127.0.0.0/8", "::1/128"))
    assert policy.allows("127.0.0.5", 0) and policy.allows("::1", 0) and policy.allows("::ffff:127.0.0.1", 0)
    assert not policy.allows("192.0.2.1", 0) and not policy.allows("2001:db8::1", 1) and not policy.allows("x", 2)
    assert policy.blocked == 3
    assert not policy.allows("192.0.2.1", 3) and policy.blocked == 4  # cached decisions still count


def test_egress_default_allows_everything():
    assert EgressPolicy(networks("0.0.0.0/0", "::/0")).allows("192.0.2.1", 0)
    assert not EgressPolicy(networks("0.0.0.0/0")).allows("2001:db8::1", 0)


def test_timer_queue_orders_cancels_and_reports_the_next_deadline():
    queue = TimerQueue()
    fired = []
    queue.call_at(3.0, fired.append, "c")
    first = queue.call_at(1.0, fired.append, "a")
    queue.call_at(2.0, fired.append, "b")
    queue.call_at(2.0, fired.append, "b2")
    assert queue.next_deadline() == 1.0
    first.cancel()
    assert queue.next_deadline() == 2.0
    for callback, subject in queue.expire(2.5):
        callback(subject)
    assert fired == ["b", "b2"] and queue.next_deadline() == 3.0
    assert queue.expire(2.9) == [] and len(queue.expire(3.0)) == 1 and queue.next_deadline() is None


def test_cancelled_timers_let_go_at_once_and_leave_when_they_come_to_the_top():
    queue = TimerQueue()
    held = object()
    timers = [queue.call_at(100.0 + i, print, held) for i in range(3000)]
    for timer in timers[:2500]:
        timer.cancel()
    assert all(timer.subject is None and timer.callback is None for timer in timers[:2500])
    assert len(queue) == 500  # live ones; the cancelled entries wait, holding nothing
    assert queue.next_deadline() == 2600.0 and len(queue) == 500
    assert [subject for _, subject in queue.expire(5000.0)] == [held] * 500 and queue.next_deadline() is None


def test_fixed_delay_lanes_and_the_heap_fire_in_one_deadline_order():
    queue = TimerQueue()
    fired = []
    queue.call_later(0.0, 4.0, fired.append, "lane 4 s")  # due 4.0
    queue.call_later(1.0, 0.5, fired.append, "lane 0.5 s")  # due 1.5
    queue.call_at(2.0, fired.append, "heap")
    queue.call_later(1.5, 0.5, fired.append, "lane 0.5 s, second")  # due 2.0, started after the heap's
    assert queue.next_deadline() == 1.5 and len(queue) == 4
    for callback, subject in queue.expire(10.0):
        callback(subject)
    assert fired == ["lane 0.5 s", "heap", "lane 0.5 s, second", "lane 4 s"] and len(queue) == 0


def test_a_lane_stays_in_order_when_the_clock_goes_back():
    queue = TimerQueue()
    fired = []
    queue.call_later(10.0, 1.0, fired.append, "at 11")
    queue.call_later(5.0, 1.0, fired.append, "at 6")  # goes to the heap, not behind "at 11"
    assert queue.next_deadline() == 6.0
    assert [subject for _, subject in queue.expire(7.0)] == ["at 6"]
    assert [subject for _, subject in queue.expire(11.0)] == ["at 11"]


def test_cancelled_lane_entries_leave_when_they_come_to_the_front():
    queue = TimerQueue()
    timers = [queue.call_later(float(i), 120.0, print, i) for i in range(1000)]
    for timer in timers[:999]:
        timer.cancel()
    assert len(queue) == 1 and queue.next_deadline() == 120.0 + 999
    assert [subject for _, subject in queue.expire(2000.0)] == [999] and queue.next_deadline() is None and len(queue) == 0


def test_timers_started_with_a_tick_expire_together_on_it_and_precise_ones_do_not_wait():
    queue = TimerQueue()
    fired = []
    for at in (0.01, 0.03, 0.07):  # three cleanup timers started within one 100 ms tick
        queue.call_later(at, 32.0, fired.append, f"cleanup@{at}", tick=0.1)
    queue.call_later(0.05, 32.0, fired.append, "precise")  # same delay, no tick: its own deadline
    queue.call_later(0.12, 32.0, fired.append, "next tick", tick=0.1)
    assert queue.next_deadline() == 32.05
    assert [callback(subject) or subject for callback, subject in queue.expire(32.05)] == ["precise"]
    assert queue.next_deadline() == 32.1  # the three share one deadline: one wake-up
    assert [subject for _, subject in queue.expire(32.1)] == ["cleanup@0.01", "cleanup@0.03", "cleanup@0.07"]
    assert queue.next_deadline() == 32.2 and len(queue) == 1
    assert [subject for _, subject in queue.expire(32.2)] == ["next tick"]

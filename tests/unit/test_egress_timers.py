"""The egress check and the transaction timers (ext/timers.pyx)."""

import ipaddress
import sys

import pytest

from fastds._ext.timers import Timed, TimerQueue
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


class Named(Timed):
    def __init__(self, name: str):
        self.name = name


def fired(queue: TimerQueue, now: float) -> list[str]:
    """The names of the timers due at `now`, in the order they fire."""
    return [subject.name for _, subject in queue.expire(now)]


def test_lanes_fire_in_one_deadline_order_and_report_the_next_deadline():
    queue = TimerQueue()
    late, early, second, third = Named("4 s lane"), Named("0.5 s lane"), Named("1 s lane"), Named("0.5 s, later")
    queue.start(late, 0, 7, 0.0, 4.0)           # due 4.0
    queue.start(early, 0, 7, 1.0, 0.5)          # due 1.5
    queue.start(second, 2, 8, 1.0, 1.0)         # due 2.0, another slot and delay
    queue.start(third, 0, 7, 1.5, 0.5)          # due 2.0 too, started after: fires after it
    assert queue.next_deadline() == 1.5 and len(queue) == 4
    assert fired(queue, 1.4) == [] and len(queue) == 4
    assert queue.expire(2.0) == [(7, early), (8, second), (7, third)]
    assert queue.next_deadline() == 4.0 and fired(queue, 10.0) == ["4 s lane"]
    assert queue.next_deadline() is None and len(queue) == 0


def test_a_stopped_timer_lets_go_at_once_and_a_restarted_one_replaces_its_slot():
    queue = TimerQueue()
    subject = Named("subject")
    alone = sys.getrefcount(subject)
    queue.start(subject, 1, 1, 0.0, 5.0)
    queue.start(subject, 2, 2, 0.0, 32.0)
    assert sys.getrefcount(subject) == alone + 2 and subject.armed(1) and subject.armed(2)
    queue.start(subject, 1, 1, 3.0, 120.0)  # FR-INV restarted on a provisional: the 5 s one is gone
    assert len(queue) == 2 and queue.next_deadline() == 32.0
    queue.stop(subject, 2)
    assert sys.getrefcount(subject) == alone + 1 and not subject.armed(2) and len(queue) == 1
    queue.stop_all(subject)
    queue.stop_all(subject)  # stopping what does not run is a no-op
    assert sys.getrefcount(subject) == alone and len(queue) == 0 and queue.next_deadline() is None
    queue.start(subject, 0, 0, 0.0, 1.0)
    del queue  # a queue that goes lets go of what is still linked
    assert sys.getrefcount(subject) == alone


def test_a_timer_stopped_by_one_that_fired_before_it_does_not_fire():
    queue = TimerQueue()
    first, second = Named("first"), Named("second")
    queue.start(first, 1, 1, 0.0, 1.0)
    queue.start(second, 0, 0, 0.0, 1.0)
    assert queue.pop(2.0) is first and queue.kind == 1
    queue.stop(second, 0)  # what first's timer did
    assert queue.pop(2.0) is None and len(queue) == 0


def test_a_lane_stays_in_order_when_the_clock_goes_back():
    queue = TimerQueue()
    for name, now in (("at 11", 10.0), ("at 6", 5.0), ("at 8", 7.0), ("at 12", 11.0)):
        queue.start(Named(name), 0, 0, now, 1.0)
    assert queue.next_deadline() == 6.0
    assert fired(queue, 8.0) == ["at 6", "at 8"] and fired(queue, 20.0) == ["at 11", "at 12"]


def test_many_stopped_timers_leave_nothing_behind():
    queue = TimerQueue()
    subjects = [Named(str(i)) for i in range(1000)]
    for i, subject in enumerate(subjects):
        queue.start(subject, 1, 0, float(i), 120.0)
    for subject in subjects[:999]:
        queue.stop(subject, 1)
    assert len(queue) == 1 and queue.next_deadline() == 120.0 + 999
    assert fired(queue, 2000.0) == ["999"] and queue.next_deadline() is None and len(queue) == 0


def test_timers_started_with_a_tick_expire_together_on_it_and_precise_ones_do_not_wait():
    queue = TimerQueue()
    for at in (0.01, 0.03, 0.07):  # three cleanup timers started within one 100 ms tick
        queue.start(Named(f"cleanup@{at}"), 2, 0, at, 32.0, 0.1)
    queue.start(Named("precise"), 2, 0, 0.05, 32.0)  # same delay, no tick: its own deadline
    queue.start(Named("next tick"), 2, 0, 0.12, 32.0, 0.1)
    assert queue.next_deadline() == 32.05
    assert fired(queue, 32.05) == ["precise"]
    assert queue.next_deadline() == 32.1  # the three share one deadline: one wake-up
    assert fired(queue, 32.1) == ["cleanup@0.01", "cleanup@0.03", "cleanup@0.07"]
    assert queue.next_deadline() == 32.2 and len(queue) == 1
    assert fired(queue, 32.2) == ["next tick"]


def test_slots_and_queues_are_checked():
    with pytest.raises(ValueError, match="slot must be 0 to 2, not 3"):
        TimerQueue().start(Timed(), 3, 0, 0.0, 1.0)
    subject, mine, other = Timed(), TimerQueue(), TimerQueue()
    mine.start(subject, 1, 0, 0.0, 1.0)
    with pytest.raises(ValueError, match="another TimerQueue"):
        other.stop(subject, 1)
    with pytest.raises(ValueError, match="another TimerQueue"):
        other.start(subject, 1, 0, 0.0, 2.0)
    assert len(mine) == 1 and len(other) == 0

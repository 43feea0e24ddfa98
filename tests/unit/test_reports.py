"""A worker's coalescing of its failure reports (fastds/procs/reports.py), on an injected clock."""

from fastds.dispatch.sets import build_sets
from fastds.dispatch.txn import ReportFailure
from fastds.procs.reports import ReportWindows, decode

WINDOW = 1.0


SETS, _ = build_sets([{"id": n, "setid": 1, "destination": f"sip:127.0.0.1:{6000 + n}"} for n in (1, 2)])
DESTINATIONS = {destination.id: destination for destination in SETS[1].destinations}


def report(dest_id=1, answering=True, reason="503 from traffic") -> ReportFailure:
    return ReportFailure(DESTINATIONS[dest_id], reason, answering)


def test_the_first_threshold_reports_of_a_window_go_at_once_the_rest_as_one_counted_report_at_its_end():
    windows = ReportWindows(threshold=3, window_s=WINDOW)
    sent = [windows.offer(report(reason=f"50{i % 10} from traffic"), now=0.01 * i) for i in range(50)]
    assert [decode(d) for d in sent[:3]] == [(1, f"50{i} from traffic", True, 1) for i in range(3)]
    assert sent[3:] == [None] * 47
    assert windows.next_flush() == WINDOW
    assert windows.flush(WINDOW - 0.001) == []
    (held,) = windows.flush(WINDOW)
    assert decode(held) == (1, "509 from traffic", True, 47)  # the latest reason, every failure counted
    assert windows.next_flush() is None and windows.flush(10.0) == []


def test_windows_are_per_destination_and_answering_flag():
    windows = ReportWindows(threshold=1, window_s=WINDOW)
    firsts = [windows.offer(report(dest_id, answering), now=0.0) for dest_id in (1, 2) for answering in (True, False)]
    assert all(data is not None for data in firsts)
    assert windows.offer(report(2, False), now=0.5) is None
    assert [decode(d)[:4:3] for d in windows.flush(WINDOW)] == [(2, 1)]


def test_a_report_after_its_window_ended_opens_a_new_one_and_carries_a_late_flush_with_it():
    windows = ReportWindows(threshold=1, window_s=WINDOW)
    windows.offer(report(), now=0.0)
    windows.offer(report(), now=0.2)
    windows.offer(report(), now=0.4)
    data = windows.offer(report(reason="timeout"), now=1.5)  # flush() did not run in time (a busy loop)
    assert decode(data) == (1, "timeout", True, 3)  # the two held ones and this one: nothing lost
    assert windows.next_flush() is None
    assert windows.offer(report(), now=1.6) is None and windows.next_flush() == 2.5


def test_a_worker_sends_the_held_reports_on_its_loop_when_the_window_ends():
    """The real sender over the real socket: two at once, the other eight as one report a window later."""
    import asyncio
    import os

    from fastds.procs.reports import FailureReporter, bind_reports, report_address

    async def run() -> list:
        address = report_address(os.getpid()) + "-test"
        receiver = bind_reports(address)
        loop = asyncio.get_running_loop()
        reporter = FailureReporter(address, threshold=2, loop=loop)
        for _ in range(10):
            reporter(report())
        got = []
        deadline = loop.time() + 10 * WINDOW  # a generous bound: the flush is due after one window
        while len(got) < 3 and loop.time() < deadline:
            try:
                got.append(decode(receiver.recv(4096)))
            except BlockingIOError:
                await asyncio.sleep(0.01)
        receiver.close()
        return got

    assert asyncio.run(run()) == [(1, "503 from traffic", True, 1)] * 2 + [(1, "503 from traffic", True, 8)]

"""Latency histograms (fastds/dispatch/histogram.py) and the panel's sampled history
(fastds/api/history.py), with snapshots built by hand and the clock given."""

import pytest

from fastds.api.history import History
from fastds.api.processes import ProcessUsage
from fastds.api.snapshot import LiveDestination, Snapshot
from fastds.dispatch.histogram import (
    SETUP_BOUNDS_S,
    SETUP_COUNTERS,
    Histogram,
    cumulative,
    from_counters,
    quantile,
)
from fastds.dispatch.sets import Destination
from fastds.dispatch.state import DestinationState
from fastds.shm.layout import WORKER_COUNTERS


def destination(dest_id: int) -> Destination:
    return Destination(dest_id, 1, f"sip:127.0.0.1:{5060 + dest_id}", 1, 0, DestinationState.ACTIVE, 0, "", "", "",
                       "127.0.0.1", 5060 + dest_id, "udp")


def snapshot(picks: dict[int, tuple[int, int, DestinationState]], worker: dict[str, int],
             replies: dict[int, tuple[int, ...]] | None = None) -> Snapshot:
    """picks: id -> (picks, failovers, state); replies: id -> (2xx, 3xx, 4xx, 5xx, 6xx, timeouts)."""
    counts = replies or {}
    live = [LiveDestination(destination(i), state, p, f, 0, None, counts.get(i, (0,) * 6)[:5], counts.get(i, (0,) * 6)[5])
            for i, (p, f, state) in picks.items()]
    row = {name: 0 for name in WORKER_COUNTERS}
    row.update(worker)
    return Snapshot(1, {1: live}, [row])


def setup_counters(*seconds: float) -> dict[str, int]:
    histogram = Histogram(SETUP_BOUNDS_S)
    for value in seconds:
        histogram.observe(value)
    return histogram.as_counters("setup")


def test_quantile_interpolates_inside_the_bucket_as_histogram_quantile_does():
    bounds = (0.1, 0.2, 0.4)
    assert quantile(0.5, bounds, [0, 0, 0, 0]) is None
    assert quantile(0.5, bounds, [10, 0, 0, 0]) == pytest.approx(0.05)  # half way into (0, 0.1]
    assert quantile(0.75, bounds, [0, 4, 4, 0]) == pytest.approx(0.3)   # half way into (0.2, 0.4]
    assert quantile(0.99, bounds, [1, 0, 0, 9]) == 0.4                  # past the last bound: the last bound
    assert quantile(1.0, bounds, [0, 2, 0, 0]) == pytest.approx(0.2)


def test_histogram_counts_round_trip_through_a_counters_row_and_cumulate_for_prometheus():
    counters = setup_counters(0.003, 0.005, 0.2, 45.0)
    assert set(counters) == set(SETUP_COUNTERS) and set(SETUP_COUNTERS) <= set(WORKER_COUNTERS)
    assert counters["setup_le_5ms"] == 2 and counters["setup_le_250ms"] == 1 and counters["setup_le_inf"] == 1
    assert counters["setup_count"] == 4 and counters["setup_sum_us"] == round(45.208 * 1e6)
    back = from_counters("setup", SETUP_BOUNDS_S, counters)
    assert back.counts == [2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    buckets = cumulative(SETUP_BOUNDS_S, back.counts)
    assert buckets[0] == ("0.005", 2) and buckets[-1] == ("+Inf", 4) and buckets[-2] == ("30.0", 3)


def test_history_turns_two_snapshots_into_rates_percentiles_and_cpu_shares():
    history = History(samples=10)
    active, inactive = DestinationState.ACTIVE, DestinationState.INACTIVE
    first = snapshot({1: (100, 0, active), 2: (50, 5, active)}, {"failovers": 5, "overload_rejected": 1})
    assert history.sample(first, [ProcessUsage("worker", "0", 42, 10.0, 1 << 20)], 1000.0) is None  # the baseline
    later = snapshot({1: (300, 0, active), 2: (50, 45, inactive)},
                     {"failovers": 45, "overload_rejected": 3, "lag_rejected": 1, "parse_errors": 2,
                      **setup_counters(*[0.02] * 98, 1.5, 1.5)})
    entry = history.sample(later, [ProcessUsage("worker", "0", 42, 11.0, 2 << 20)], 1002.0)
    assert entry["calls"] == 100.0 and entry["failovers"] == 20.0 and entry["overload_503"] == 1.5
    assert entry["parse_errors"] == 1.0 and entry["flood_dropped"] == 0.0
    # 98 calls in (10 ms, 25 ms], two in (1 s, 2.5 s]: p50 inside the first, p99 half way into the second
    assert entry["setup_p50_ms"] == pytest.approx(10 + 15 * 50 / 98, abs=0.01)
    assert entry["setup_p99_ms"] == pytest.approx(1750)
    assert entry["destinations"] == {"1": [100.0, 0.0, "active"], "2": [0.0, 20.0, "inactive"]}
    assert entry["processes"] == [{"process": "worker", "worker": "0", "rss_bytes": 2 << 20, "cpu_share": 0.5}]
    states = history.destinations_json()
    assert states["2"] == {"state": "inactive", "since": 1002.0, "transitions": [[1002.0, "active", "inactive"]],
                           "per_minute": {"2xx": 0.0, "3xx": 0.0, "4xx": 0.0, "5xx": 0.0, "6xx": 0.0, "timeouts": 0.0}}
    assert states["1"]["transitions"] == []
    assert history.since(1001.0) == [entry] and history.since(1002.0) == []


def test_a_counter_that_went_back_counts_from_zero_and_the_ring_stays_bounded():
    history = History(samples=3)
    history.sample(snapshot({1: (500, 0, DestinationState.ACTIVE)}, {"parse_errors": 40}), [], 0.0)
    entry = history.sample(snapshot({1: (500, 0, DestinationState.ACTIVE)}, {"parse_errors": 4}), [], 2.0)
    assert entry["parse_errors"] == 2.0  # a respawned worker starts its row at 0: 4 new, not -36
    assert entry["setup_p50_ms"] is None  # no call set up in the interval
    for second in range(4, 20, 2):
        history.sample(snapshot({1: (500, 0, DestinationState.ACTIVE)}, {}), [], float(second))
    assert [entry["t"] for entry in history.ring] == [14.0, 16.0, 18.0]


def test_a_destination_removed_by_a_reload_leaves_the_state_history():
    history = History()
    history.sample(snapshot({1: (0, 0, DestinationState.ACTIVE), 2: (0, 0, DestinationState.ACTIVE)}, {}), [], 0.0)
    history.sample(snapshot({1: (0, 0, DestinationState.ACTIVE)}, {}), [], 2.0)
    assert set(history.destinations_json()) == {"1"}


def test_replies_by_class_and_timeouts_per_minute_over_the_last_minute():
    history = History()
    active = {1: (0, 0, DestinationState.ACTIVE)}
    history.sample(snapshot(active, {}, {1: (100, 0, 0, 7, 0, 1)}), [], 0.0)
    assert history.destinations_json()["1"]["per_minute"] is None  # one sample: no rate yet
    for second in range(2, 62, 2):  # 30 s at 10 calls/s answered 2xx, one 503 and one timeout every 2 s
        history.sample(snapshot(active, {}, {1: (100 + 10 * second, 0, 0, 7 + second // 2, 0, 1 + second // 2)}), [],
                       float(second))
    assert history.destinations_json()["1"]["per_minute"] == {"2xx": 600.0, "3xx": 0.0, "4xx": 0.0, "5xx": 30.0,
                                                              "6xx": 0.0, "timeouts": 30.0}
    for second in range(62, 130, 2):  # then nothing for over a minute: the rates fall to 0
        history.sample(snapshot(active, {}, {1: (700, 0, 0, 37, 0, 31)}), [], float(second))
    assert history.destinations_json()["1"]["per_minute"]["2xx"] == 0.0

"""Latency histograms: fixed buckets, as Prometheus histograms count them.

Owns the bucket bounds of the two latencies fastds measures -- call setup (an initial
INVITE's arrival to the first final response sent upstream, per worker) and a probe's
round trip (per destination, in the prober) -- counting into them, and reading a
quantile back out of bucket counts the way PromQL's histogram_quantile() does (linear
inside the bucket), which the panel's history uses for setup p50/p99.
"""

from __future__ import annotations

from collections.abc import Sequence

SETUP_BOUNDS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PROBE_RTT_BOUNDS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def bucket_names(prefix: str, bounds: Sequence[float]) -> tuple[str, ...]:
    """Counter names of the buckets (each holds its own observations, not cumulative), the
    last one over every bound, then the count and the sum in microseconds."""
    return (*(f"{prefix}_le_{round(bound * 1000):g}ms" for bound in bounds), f"{prefix}_le_inf",
            f"{prefix}_count", f"{prefix}_sum_us")


SETUP_COUNTERS = bucket_names("setup", SETUP_BOUNDS_S)


class Histogram:
    """Observations of one latency: per bucket counts (not cumulative), their count and sum."""

    __slots__ = ("bounds", "counts", "count", "sum_s")

    def __init__(self, bounds: Sequence[float]):
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.count = 0
        self.sum_s = 0.0

    def observe(self, seconds: float) -> None:
        bucket = 0  # the first bound at or over `seconds` (bisect_left), a C loop once compiled
        for bound in self.bounds:
            if seconds <= bound:
                break
            bucket += 1
        self.counts[bucket] += 1
        self.count += 1
        self.sum_s += seconds

    def as_counters(self, prefix: str) -> dict[str, int]:
        """As integer counters (bucket_names(prefix, bounds)), for a worker's shared counters row."""
        names = bucket_names(prefix, self.bounds)
        return {**dict(zip(names, self.counts)), names[-2]: self.count, names[-1]: round(self.sum_s * 1e6)}

    def as_json(self) -> dict:
        return {"counts": self.counts, "count": self.count, "sum_s": self.sum_s}


def from_counters(prefix: str, bounds: Sequence[float], row: dict[str, int]) -> Histogram:
    """The Histogram a counters row holds (Histogram.as_counters' inverse)."""
    names = bucket_names(prefix, bounds)
    histogram = Histogram(bounds)
    histogram.counts = [row.get(name, 0) for name in names[:-2]]
    histogram.count = row.get(names[-2], 0)
    histogram.sum_s = row.get(names[-1], 0) / 1e6
    return histogram


def cumulative(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[str, int]]:
    """Prometheus buckets: (le, observations at or under it), ending with +Inf."""
    running, out = 0, []
    for bound, count in zip((*bounds, float("inf")), counts):
        running += count
        out.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
    return out


def quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float | None:
    """The q-quantile (0..1) of per-bucket `counts`, interpolated inside its bucket as
    histogram_quantile() does; the highest bound when it falls past it; None without
    observations."""
    total = sum(counts)
    if total == 0:
        return None
    rank, running = q * total, 0
    for index, count in enumerate(counts):
        if count and running + count >= rank:
            if index == len(bounds):
                return bounds[-1]
            lower = bounds[index - 1] if index else 0.0
            return lower + (bounds[index] - lower) * (rank - running) / count
        running += count
    return bounds[-1]

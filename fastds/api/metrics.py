"""/metrics: the snapshot in the Prometheus text format.

Owns the metric names, kinds and labels. Per destination (labels set, id, destination):
state, up, picks, failovers, replies by class, timeouts, in-flight, probe RTT and its
histogram (the prober's); per
worker (label worker): every counter row of fastds/shm/layout.py, the call setup
histogram; per process (labels process, worker): CPU seconds and RSS; event deliveries;
the table's generation; the cluster's status. Rendering and label escaping are
prometheus_client's (a collector over one snapshot per scrape).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from fastds.api.processes import ProcessUsage
from fastds.api.snapshot import REPLY_CLASSES, Snapshot
from fastds.dispatch.histogram import PROBE_RTT_BOUNDS_S, SETUP_BOUNDS_S, SETUP_COUNTERS, cumulative, from_counters
from fastds.dispatch.state import DestinationState
from fastds.shm.layout import WORKER_COUNTERS

CONTENT_TYPE = CONTENT_TYPE_LATEST
WORKER_GAUGES = {"transactions_open", "pike_blocked", "pike_tracked", "tcp_connections", "tls_connections", "draining",
                 "drain_waiting", "pid"}
WORKER_HELP = {
    "packets_in": "SIP datagrams received", "packets_out": "SIP datagrams sent",
    "parse_errors": "datagrams dropped or answered 400 because they did not parse",
    "keepalives": "keep-alive datagrams (only CRLFs) received: not answered, not errors",
    "in_dialog_forwarded": "in-dialog requests routed along fastds's Record-Route (ACKs for 2xx included)",
    "draining": "1 once this worker drains (new INVITEs get 503)",
    "drain_waiting": "1 while the node drains and this worker has a transaction waiting for its final response",
    "transactions_open": "server transactions open now", "replies_5xx": "5xx replies sent upstream",
    "failovers": "requests moved to the next destination", "egress_blocked": "sends refused by FASTDS_EGRESS_ALLOW",
    "retransmissions_sent": "requests retransmitted (timers A/E)", "timeouts": "branches with no final reply in time",
    "no_route": "initial requests with no active destination (500)",
    "send_errors": "datagrams the kernel refused to send, or ICMP errors for them",
    "too_large": "messages over FASTDS_SIP_MAX_MESSAGE_BYTES, or requests too big for one datagram once rewritten (513)",
    "handler_errors": "datagrams whose handling failed (logged one line each, dropped)",
    "overload_rejected": "new INVITEs refused with 503: FASTDS_MAX_TRANSACTIONS reached (the memory budget)",
    "lag_rejected": "new INVITEs refused with 503: the event loop lagged over FASTDS_OVERLOAD_LAG_MS",
    "handoffs_out": "datagrams handed to the worker that owns their Call-ID",
    "handoffs_in": "datagrams other workers handed to this one (it owns their Call-ID)",
    "handoffs_dropped": "datagrams that could not be handed off (the owner was restarting or full); SIP retransmits",
    "forwarded_to_destination": "requests forwarded to a destination (each failover counts again)",
    "retransmissions_absorbed": "retransmitted requests answered from their transaction",
    "in_dialog_refused": "in-dialog requests without fastds's signed Route (403)",
    "stray_responses_dropped": "responses with no transaction whose top Via is not fastds's",
    "ack_dropped": "ACKs for a 2xx that could not be routed",
    "drain_rejected": "new INVITEs refused with 503 while stopping",
    "replies_2xx": "2xx finals sent upstream (relayed, or fastds's own to OPTIONS)",
    "replies_3xx": "3xx finals sent upstream",
    "replies_4xx": "4xx finals sent upstream (relayed or fastds's own)", "replies_6xx": "6xx finals sent upstream",
    "reports_lost": "traffic failure reports the prober could not take (it was restarting)",
    "scanner_dropped": "initial requests dropped silently for a scanner's User-Agent (FASTDS_BLOCK_USER_AGENTS)",
    "untrusted_rejected": "initial requests from an untrusted source answered 403",
    "untrusted_dropped": "initial requests from an untrusted source dropped (FASTDS_UNTRUSTED_ACTION=drop)",
    "pike_dropped": "requests dropped because their source IP is blocked by the flood limit",
    "pike_blocks": "times a source IP was blocked by the flood limit (FASTDS_PIKE_REQS)",
    "pike_blocked": "source IPs blocked now by this worker's flood limit",
    "pike_tracked": "source IPs the flood limit tracks now (at most FASTDS_PIKE_TABLE_SIZE)",
    "transport_refused": "initial requests for a sips: Request-URI refused 480: no TLS destination in the set",
    "stray_stream_dropped": "responses with no transaction for a peer on TCP, not relayed (2xx retransmissions"
                            " after the first went on the connection)",
    "tcp_connections": "plain TCP connections this worker holds now",
    "tls_connections": "TLS connections this worker holds now (handshake done)",
    "tcp_accepted": "TCP and TLS connections accepted (TLS: once the handshake is done)",
    "tls_handshake_failures": "TLS handshakes that failed: accepted (or not finished in FASTDS_TCP_MESSAGE_TIMEOUT_S),"
                              " or opened (the peer's certificate not accepted, among others)",
    "tcp_dialled": "TCP and TLS connections fastds opened (to destinations, next hops, or to answer a peer whose"
                   " connection had gone)",
    "tcp_connect_failures": "TCP and TLS connections fastds opened that failed (refused, timed out, handshake) or broke",
    "connection_failovers": "client transactions failed at once because their connection failed or broke",
    "tcp_framing_errors": "TCP connections closed for a framing error: no or bad Content-Length, too large, too slow,"
                          " or closed mid-message",
    "tcp_writes_lost": "messages for a TCP or TLS peer that could not be written: no connection could be opened,"
                       " or too much waited for one",
    "tcp_slow_readers": "TCP/TLS connections closed because over FASTDS_TCP_MAX_UNSENT_BYTES waited for their peer to read",
    "hep_sent": "HEP v3 copies sent to FASTDS_HEP_DESTINATION",
    "hep_lost": "HEP v3 copies not sent: over one datagram, or the kernel's buffer was full",
    "pid": "process id of the worker",
}


EVENT_HELP = {"delivered": "E_DISPATCHER_STATUS events delivered (UDP subscribers and webhooks)",
              "failed": "E_DISPATCHER_STATUS deliveries that failed (a webhook retries with back-off)",
              "dropped": "E_DISPATCHER_STATUS events dropped: a webhook's queue was full"}


class SnapshotCollector:
    def __init__(self, snapshot: Callable[[], Snapshot]):
        self._snapshot = snapshot
        self.prober: dict | None = None  # the prober's "metrics" answer for this scrape (None: not answering)
        self.processes: list[ProcessUsage] = []

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot()
        labels = ["set", "id", "destination"]
        state = GaugeMetricFamily("fastds_destination_state", "0 active, 1 inactive, 2 probing", labels=labels)
        up = GaugeMetricFamily("fastds_destination_up", "1 when the destination can be selected", labels=labels)
        picks = CounterMetricFamily("fastds_destination_picks", "times chosen first for a request", labels=labels)
        failovers = CounterMetricFamily("fastds_destination_failovers",
                                        "requests that failed over away from this destination", labels=labels)
        in_flight = GaugeMetricFamily("fastds_destination_in_flight", "transactions open towards it", labels=labels)
        rtt = GaugeMetricFamily("fastds_destination_probe_rtt_seconds", "round trip of the last answered probe",
                                labels=labels)
        replies = CounterMetricFamily("fastds_destination_replies", "final responses it sent to requests fastds"
                                      " forwarded, by class", labels=[*labels, "class"])
        timeouts = CounterMetricFamily("fastds_destination_timeouts", "requests forwarded to it that got no final"
                                       " response in time", labels=labels)
        for live in snapshot.destinations:
            d = live.destination
            values = [str(d.set_id), str(d.id), d.uri]
            state.add_metric(values, live.state)
            up.add_metric(values, 1 if live.state == DestinationState.ACTIVE else 0)
            picks.add_metric(values, live.picks)
            failovers.add_metric(values, live.failovers)
            in_flight.add_metric(values, live.in_flight)
            if live.rtt_ms is not None:
                rtt.add_metric(values, live.rtt_ms / 1000)
            for reply_class, count in zip(REPLY_CLASSES, live.replies):
                replies.add_metric([*values, reply_class], count)
            timeouts.add_metric(values, live.timeouts)
        yield from (state, up, picks, failovers, in_flight, rtt, replies, timeouts)
        yield from self._prober_metrics(snapshot)
        yield from self._process_metrics()
        setup = HistogramMetricFamily("fastds_call_setup_seconds", "initial INVITE received to its first final"
                                      " response sent upstream", labels=["worker"])
        for index, row in enumerate(snapshot.workers):
            histogram = from_counters("setup", SETUP_BOUNDS_S, row)
            setup.add_metric([str(index)], cumulative(SETUP_BOUNDS_S, histogram.counts), histogram.sum_s)
        yield setup
        for name in WORKER_COUNTERS:
            if name in SETUP_COUNTERS:
                continue
            kind = GaugeMetricFamily if name in WORKER_GAUGES else CounterMetricFamily
            family = kind(f"fastds_worker_{name}", WORKER_HELP[name], labels=["worker"])
            for index, row in enumerate(snapshot.workers):
                family.add_metric([str(index)], row[name])
            yield family
        yield GaugeMetricFamily("fastds_generation", "destination table generation (bumped by each reload)",
                                value=snapshot.generation)
        yield GaugeMetricFamily("fastds_cluster_degraded", "1 while this node cannot reach the cluster's Redis",
                                value=1 if snapshot.cluster == "degraded" else 0)
        yield GaugeMetricFamily("fastds_cluster_nodes", "live nodes of the cluster this node sees (0 standalone)",
                                value=snapshot.cluster_nodes)
        yield GaugeMetricFamily("fastds_skipped_rows", "dispatcher rows the last load could not use (GET /api/v1/sets"
                                " says which and why)", value=len(snapshot.skipped))
        yield GaugeMetricFamily("fastds_draining", "1 while the node drains before it stops",
                                value=1 if snapshot.draining_since else 0)

    def _prober_metrics(self, snapshot: Snapshot) -> Iterator[Metric]:
        if self.prober is None:
            return
        for name, help_text in EVENT_HELP.items():
            yield CounterMetricFamily(f"fastds_events_{name}", help_text, value=self.prober["events"].get(name, 0))
        rtt = HistogramMetricFamily("fastds_destination_probe_round_trip_seconds", "round trips of answered"
                                    " probes (since the prober started)", labels=["set", "id", "destination"])
        for live in snapshot.destinations:
            found = self.prober["probe_rtt"].get(str(live.destination.id))
            if found is not None:
                d = live.destination
                rtt.add_metric([str(d.set_id), str(d.id), d.uri], cumulative(PROBE_RTT_BOUNDS_S, found["counts"]),
                               found["sum_s"])
        yield rtt

    def _process_metrics(self) -> Iterator[Metric]:
        labels = ["process", "worker"]
        cpu = CounterMetricFamily("fastds_process_cpu_seconds", "user and system CPU time of each process",
                                  labels=labels)
        rss = GaugeMetricFamily("fastds_process_resident_memory_bytes", "resident memory of each process",
                                labels=labels)
        for process in self.processes:
            cpu.add_metric([process.name, process.index], process.cpu_s)
            rss.add_metric([process.name, process.index], process.rss_bytes)
        yield from (cpu, rss)


class MetricsPage:
    """`page(prober, processes)` -> the text of one scrape."""

    def __init__(self, snapshot: Callable[[], Snapshot]):
        self._collector = SnapshotCollector(snapshot)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self._collector)

    def page(self, prober: dict | None = None, processes: list[ProcessUsage] | None = None) -> bytes:
        self._collector.prober, self._collector.processes = prober, processes or []
        return generate_latest(self._registry)

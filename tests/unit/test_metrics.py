"""/metrics as Prometheus reads it (promtool and prometheus_client's parser), and the
Grafana dashboard shipped in contrib/ naming only what /metrics exports."""

import json
import re
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from fastds.api.metrics import MetricsPage
from fastds.api.processes import ProcessUsage
from fastds.api.snapshot import LiveDestination, Snapshot
from fastds.dispatch.histogram import PROBE_RTT_BOUNDS_S, SETUP_BOUNDS_S, Histogram
from fastds.dispatch.sets import Destination
from fastds.dispatch.state import DestinationState
from fastds.shm.layout import WORKER_COUNTERS

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "contrib" / "grafana" / "fastds.json"
PROMTOOL = Path("/opt/fastds-test-tools/prometheus/usr/bin/promtool")  # tests/machine.sh unpacks it


def page() -> str:
    destinations = [Destination(i, 1, f'sip:gw{i}.example.net;x="q"', 1, 0, DestinationState.ACTIVE, 0, "", "", "",
                                "127.0.0.1", 5060 + i, "udp") for i in (1, 2)]
    live = [LiveDestination(d, DestinationState(i % 2), 10 * i, i, 1, 1.5, (5 * i, 0, 1, 2, 0), 3)
            for i, d in enumerate(destinations)]
    setup, rtt = Histogram(SETUP_BOUNDS_S), Histogram(PROBE_RTT_BOUNDS_S)
    for seconds in (0.004, 0.03, 0.7):
        setup.observe(seconds)
        rtt.observe(seconds / 10)
    row = {**{name: 3 for name in WORKER_COUNTERS}, **setup.as_counters("setup")}
    snapshot = Snapshot(4, {1: live}, [row, row], skipped=[{"id": 9, "reason": "bad URI"}])
    prober = {"pid": 7, "events": {"delivered": 2, "failed": 1, "dropped": 0}, "probe_rtt": {"1": rtt.as_json()}}
    processes = [ProcessUsage("master", "", 1, 0.5, 1 << 20), ProcessUsage("worker", "0", 2, 3.25, 5 << 20)]
    return MetricsPage(lambda: snapshot).page(prober, processes).decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_promtool_finds_the_page_valid():
    checked = subprocess.run([str(PROMTOOL), "check", "metrics"], input=page(), capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_histograms_processes_and_events_parse_with_their_values():
    found = samples(page())
    worker0 = (("worker", "0"),)
    assert found[("fastds_call_setup_seconds_count", worker0)] == 3
    assert found[("fastds_call_setup_seconds_bucket", (("le", "0.005"), ("worker", "0")))] == 1
    assert found[("fastds_call_setup_seconds_bucket", (("le", "1.0"), ("worker", "0")))] == 3
    assert found[("fastds_call_setup_seconds_sum", worker0)] == 0.734
    dest1 = (("destination", 'sip:gw1.example.net;x="q"'), ("id", "1"), ("set", "1"))
    assert found[("fastds_destination_probe_round_trip_seconds_count", dest1)] == 3
    assert found[("fastds_destination_replies_total", (("class", "5xx"), *dest1))] == 2
    assert found[("fastds_destination_replies_total", (("class", "4xx"), *dest1))] == 1
    assert found[("fastds_destination_timeouts_total", dest1)] == 3
    assert not any(name.startswith("fastds_destination_probe_round_trip") and ("id", "2") in labels
                   for name, labels in found)  # never probed: no histogram rather than an empty one
    assert found[("fastds_process_cpu_seconds_total", (("process", "worker"), ("worker", "0")))] == 3.25
    assert found[("fastds_process_resident_memory_bytes", (("process", "master"), ("worker", "")))] == 1 << 20
    assert found[("fastds_events_delivered_total", ())] == 2 and found[("fastds_skipped_rows", ())] == 1
    assert not any(name.startswith("fastds_worker_setup_") for name, _ in found)  # only as the histogram


def test_without_the_prober_the_page_leaves_its_metrics_out():
    snapshot = Snapshot(1, {}, [])
    text = MetricsPage(lambda: snapshot).page(None, []).decode()
    assert "fastds_events_" not in text and "probe_round_trip" not in text and "fastds_generation 1.0" in text


def test_the_grafana_dashboard_is_valid_and_names_only_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    exported = {name for name, _ in samples(page())}
    ids, used = set(), set()
    for panel in dashboard["panels"]:
        assert panel["type"] in {"timeseries", "stat", "state-timeline"} and panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["id"] not in ids
        ids.add(panel["id"])
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            used |= set(re.findall(r"\bfastds_[a-z0-9_]+", target["expr"]))
    unknown = {name for name in used if name not in exported}
    assert not unknown, f"the dashboard names metrics /metrics does not export: {sorted(unknown)}"
    assert {"fastds_call_setup_seconds_bucket", "fastds_process_cpu_seconds_total",
            "fastds_destination_probe_round_trip_seconds_bucket", "fastds_skipped_rows"} <= used
    label_query = dashboard["templating"]["list"][1]["query"]
    assert re.search(r"label_values\((fastds_[a-z_]+)", label_query).group(1) in exported

"""The management API of a running `fastds run` (SQLite store): every endpoint, every
validation error, auth, /mi over HTTP with the real prober, /metrics after real calls,
and the CLI talking to it."""

import sqlite3
import subprocess
import sys
import threading
import time

import jsonschema
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import free_tcp_port, free_udp_port, openapi_schema, wait_for

TOKEN = "s3cret-token"


def destinations(harness):
    status, reply, _ = harness.api("GET", "/api/v1/destinations")
    assert status == 200
    return reply["destinations"]


def live(harness):
    """{destination URI: its live JSON} from GET /api/v1/sets."""
    status, reply, _ = harness.api("GET", "/api/v1/sets")
    assert status == 200
    return {d["destination"]: d for s in reply["sets"] for d in s["destinations"]}


def metric_samples(harness):
    status, text, headers = harness.api("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text.decode()) for sample in family.samples}


def test_destinations_through_the_api_with_live_state_counters_and_metrics(harness):
    broken_port, healthy_port = free_udp_port(), free_udp_port()
    harness.add_destination(broken_port)
    broken, healthy = f"sip:127.0.0.1:{broken_port}", f"sip:127.0.0.1:{healthy_port}"
    harness.uas("uas_503.xml", broken_port)
    harness.uas("uas.xml", healthy_port)
    harness.start_fastds(default_alg=2, probing_threshold=1000)
    status, added, _ = harness.api("POST", "/api/v1/destinations",
                                   {"setid": 1, "destination": healthy, "weight": 2, "description": "gw b"})
    assert status == 201 and added["applied"] is True and added["weight"] == 2
    assert {row["destination"] for row in destinations(harness)} == {broken, healthy}
    assert live(harness)[healthy]["state"] == "active" and live(harness)[healthy]["description"] == "gw b"

    code, stats = harness.uac("uac.xml", 20)
    assert code == 0 and (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) == ("20", "0")
    now = live(harness)
    assert now[broken]["picks"] + now[healthy]["picks"] == 20
    assert now[broken]["failovers"] == now[broken]["picks"] > 0 and now[healthy]["failovers"] == 0
    # every call the broken one took it answered 503; the healthy one answered all 20 INVITEs 200 (the BYEs
    # follow the Record-Route, not a destination, so they are not counted per destination)
    assert now[broken]["replies"] == {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": now[broken]["picks"], "6xx": 0}
    assert now[healthy]["replies"]["2xx"] == 20 and now[healthy]["timeouts"] == 0
    samples = metric_samples(harness)
    labels = (("destination", broken), ("id", "1"), ("set", "1"))
    assert samples[("fastds_destination_failovers_total", labels)] == now[broken]["failovers"]
    assert samples[("fastds_destination_picks_total", labels)] == now[broken]["picks"]
    assert samples[("fastds_destination_up", labels)] == 1
    # the worker publishes its counters row once a second: wait for one written after the last call
    wait_for(lambda: metric_samples(harness)[("fastds_worker_packets_in_total", (("worker", "0"),))] >= 20 * 6
             and harness.api("GET", "/api/v1/stats")[1]["totals"]["failovers"] == now[broken]["failovers"],
             10, "the worker's counters row")
    status, stats_reply, _ = harness.api("GET", "/api/v1/stats")
    assert stats_reply["statistics"]["dispatcher:picks"] == 20

    status, updated, _ = harness.api("PUT", f"/api/v1/destinations/{added['id']}", {"weight": "5"})
    assert status == 200 and updated["applied"] and updated["description"] == "gw b" and updated["weight"] == 5
    stored, shown = harness.api("GET", f"/api/v1/destinations/{added['id']}")[1], live(harness)[healthy]
    jsonschema.validate(stored, openapi_schema("Destination"))  # as /api/v1/openapi.json says
    jsonschema.validate(shown, openapi_schema("LiveDestination"))
    jsonschema.validate(harness.api("GET", "/api/v1/health")[1], openapi_schema("Health"))
    assert {key: stored[key] for key in ("state", "weight")} == {key: shown[key] for key in ("state", "weight")}
    assert live(harness)[healthy]["weight"] == 5
    assert live(harness)[broken]["picks"] == now[broken]["picks"]  # counters survive the reload

    status, reply, _ = harness.api("PUT", "/api/v1/destinations/1/state", {"state": "inactive"})
    assert status == 200 and reply == {"id": 1, "state": "inactive", "changed": True}
    assert live(harness)[broken]["state"] == "inactive"
    assert metric_samples(harness)[("fastds_destination_state", labels)] == 1
    wait_for(lambda: harness.api("GET", "/api/v1/destinations/1")[1]["state"] == "inactive", 10,
             "the prober to write the state back to the store")
    assert harness.log_lines(f"set 1 {broken} active -> inactive (API)")

    status, reply, _ = harness.api("DELETE", f"/api/v1/destinations/{added['id']}")
    assert status == 200 and reply["removed"] and reply["applied"]
    assert set(live(harness)) == {broken}
    status, health, _ = harness.api("GET", "/api/v1/health")
    assert status == 503 and health["status"] == "down"  # the only destination left is inactive
    harness.api("PUT", "/api/v1/destinations/1/state", {"state": "active"})
    status, health, _ = harness.api("GET", "/api/v1/health")
    assert status == 200 and health == {"status": "ok", "generation": health["generation"],
                                        "checks": {"destinations": "1 of 1 active", "prober": "ok", "store": "ok"}}



def test_metrics_have_setup_and_probe_histograms_process_usage_and_the_history_samples(harness):
    port = free_udp_port()
    harness.add_destination(port, state=2)  # probing: the prober's OPTIONS bring it up and give round trips
    harness.uas("uas.xml", port)
    harness.start_fastds()
    dest = (("destination", f"sip:127.0.0.1:{port}"), ("id", "1"), ("set", "1"))
    wait_for(lambda: live(harness)[f"sip:127.0.0.1:{port}"]["state"] == "active", 20, "the probe to answer")
    code, stats = harness.uac("uac.xml", 10)
    assert code == 0 and stats["SuccessfulCall(C)"] == "10"
    setup = (("worker", "0"),)
    samples = wait_for(lambda: (found := metric_samples(harness)).get(("fastds_call_setup_seconds_count", setup)) == 10
                       and found, 10, "the worker's setup histogram in its counters row")
    assert samples[("fastds_call_setup_seconds_bucket", (("le", "+Inf"), ("worker", "0")))] == 10
    assert 0 < samples[("fastds_call_setup_seconds_sum", setup)] < 10 * 5  # each call set up within SIPp's timeout
    assert samples[("fastds_destination_probe_round_trip_seconds_count", dest)] >= 1
    assert samples[("fastds_events_delivered_total", ())] == 0 and ("fastds_events_failed_total", ()) in samples
    processes = {labels for name, labels in samples if name == "fastds_process_cpu_seconds_total"}
    assert processes == {(("process", "master"), ("worker", "")), (("process", "api"), ("worker", "")),
                         (("process", "prober"), ("worker", "")), (("process", "worker"), ("worker", "0"))}
    assert samples[("fastds_process_resident_memory_bytes", (("process", "worker"), ("worker", "0")))] > 1 << 20

    # the API samples every 2 s whoever looks: the calls show in the history, each sample schema-valid
    def calls_seen(reply) -> float:
        """The calls the samples' rates add up to, each over the time since the sample before it."""
        samples = reply["samples"]
        spans = [reply["interval_s"]] + [b["t"] - a["t"] for a, b in zip(samples, samples[1:])]
        return sum(sample["calls"] * span for sample, span in zip(samples, spans))

    history = wait_for(lambda: (reply := harness.api("GET", "/api/v1/history")[1])["samples"]
                       and calls_seen(reply) >= 9.5 and reply, 20, "samples that saw the ten calls")
    for sample in history["samples"]:
        jsonschema.validate(sample, openapi_schema("HistorySample"))
    assert history["destinations"]["1"]["state"] == "active"
    assert history["destinations"]["1"]["per_minute"]["2xx"] > 0  # the ten INVITEs' 200s (and BYEs')
    assert any(s["setup_p99_ms"] is not None for s in history["samples"])
    last = history["samples"][-1]["t"]
    assert harness.api("GET", f"/api/v1/history?since={last}")[1]["samples"] == []
    status, reply, _ = harness.api("GET", "/api/v1/history?since=yesterday")
    assert status == 400 and reply["field"] == "since"


BAD_BODIES = [
    ({"setid": 1, "destination": "http://example.com"}, "destination"),
    ({"setid": 1, "destination": "sip:"}, "destination"),
    ({"setid": "one", "destination": "sip:127.0.0.1:5999"}, "setid"),
    ({"setid": -4, "destination": "sip:127.0.0.1:5999"}, "setid"),
    ({"setid": 1, "destination": "sip:127.0.0.1:5999", "weight": "heavy"}, "weight"),
    ({"setid": 1, "destination": "sip:127.0.0.1:5999", "state": 7}, "state"),
    ({"setid": 1, "destination": "sip:127.0.0.1:5999", "probe_mode": "sometimes"}, "probe_mode"),
    ({"setid": 1, "destination": "sip:127.0.0.1:5999", "socket": "somewhere"}, "socket"),
    ({"setid": 1, "destination": "sip:127.0.0.1:5999", "flavour": "x"}, "flavour"),
    ({"destination": "sip:127.0.0.1:5999"}, "setid"),
    ("just a string", "body"),
]


def test_every_validation_error_is_400_naming_the_field_and_writes_nothing(harness):
    port = free_udp_port()
    harness.add_destination(port)
    harness.start_fastds()
    before = destinations(harness)
    generation = harness.api("GET", "/api/v1/sets")[1]["generation"]
    for body, field in BAD_BODIES:
        for method, path in (("POST", "/api/v1/destinations"), ("PUT", "/api/v1/destinations/1")):
            if field in ("setid",) and "setid" not in body and method == "PUT":
                continue  # an update may leave setid out
            status, reply, _ = harness.api(method, path, body)
            assert status == 400, (method, body, reply)
            assert reply["field"] == field and "expected" in reply and field in reply["error"], reply
    status, reply, _ = harness.api("POST", "/api/v1/destinations", raw=b"{not json")
    assert status == 400 and reply["field"] == "body" and "valid JSON" in reply["expected"]
    status, reply, _ = harness.api("POST", "/api/v1/destinations",
                                   {"setid": 1, "destination": f"SIP:127.0.0.1:{port}"})
    assert status == 409 and reply["field"] == "destination" and "already has" in reply["error"]
    for method, path, body, expected in [
        ("PUT", "/api/v1/destinations/99", {"weight": 1}, 404),
        ("DELETE", "/api/v1/destinations/99", None, 404),
        ("GET", "/api/v1/destinations/99", None, 404),
        ("PUT", "/api/v1/destinations/abc", {"weight": 1}, 400),
        ("PUT", "/api/v1/destinations/99/state", {"state": "active"}, 404),
        ("PUT", "/api/v1/destinations/1/state", {"state": "sleeping"}, 400),
        ("PUT", "/api/v1/destinations/1/state", {"state": "active", "why": "x"}, 400),
        ("POST", "/api/v1/reload", {"inherit_state": "maybe"}, 400),
        ("POST", "/api/v1/reload", {"inherit": True}, 400),
        ("GET", "/api/v1/nothing", None, 404),
        ("DELETE", "/api/v1/sets", None, 405),
    ]:
        status, reply, _ = harness.api(method, path, body)
        assert status == expected and reply["error"], (method, path, status, reply)
    assert destinations(harness) == before
    assert harness.api("GET", "/api/v1/sets")[1]["generation"] == generation  # nothing reloaded either
    status, reply, _ = harness.api("POST", "/api/v1/destinations?reload=0",
                                   {"setid": 5, "destination": "sip:127.0.0.1:5994"})
    assert status == 201 and reply["applied"] is False and "POST /api/v1/reload" in reply["note"]
    assert "sip:127.0.0.1:5994" not in live(harness)  # written, not applied yet
    status, reply, _ = harness.api("POST", "/api/v1/reload", {"inherit_state": False})
    assert status == 200 and reply == {"generation": generation + 1, "problems": [], "skipped": [], "cluster": False}
    assert live(harness)["sip:127.0.0.1:5994"]["setid"] == 5


def test_a_write_the_store_refuses_is_an_error_and_nothing_is_written(harness):
    harness.add_destination(free_udp_port())
    harness.start_fastds()
    locker = sqlite3.connect(harness.db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # the store is busy past its 5 s busy timeout
    try:
        answers = []
        post = threading.Thread(target=lambda: answers.append(harness.api(
            "POST", "/api/v1/destinations", {"setid": 2, "destination": "sip:127.0.0.1:5998"})))
        post.start()
        time.sleep(1.0)  # the POST is now waiting on the lock (5 s busy timeout)
        # reads still answer meanwhile: the store's calls run on a thread of their own, not
        # on the API's event loop (which a blocked sqlite3 call would hold for the 5 s)
        started = time.monotonic()
        assert harness.api("GET", "/api/v1/sets")[0] == 200 and harness.mi("ds_list")["result"]
        assert time.monotonic() - started < 2.5 and post.is_alive()
        post.join(30)
        status, reply, _ = answers[0]
        assert status == 503 and "nothing was changed" in reply["error"] and "locked" in reply["error"]
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert [row["setid"] for row in destinations(harness)] == [1]


def test_with_a_token_every_request_needs_the_bearer_token(harness):
    harness.add_destination(free_udp_port())
    harness.start_fastds(api_token=TOKEN)
    requests = [("GET", "/api/v1/sets", None), ("GET", "/api/v1/destinations", None),
                ("POST", "/api/v1/destinations", {"setid": 3, "destination": "sip:127.0.0.1:5997"}),
                ("PUT", "/api/v1/destinations/1", {"weight": 2}), ("PUT", "/api/v1/destinations/1/state",
                                                                  {"state": "active"}),
                ("POST", "/api/v1/reload", {}), ("GET", "/api/v1/stats", None), ("GET", "/api/v1/health", None),
                ("GET", "/metrics", None), ("POST", "/mi", {"jsonrpc": "2.0", "method": "ds_list", "id": 1}),
                ("DELETE", "/api/v1/destinations/1", None), ("GET", "/", None)]
    for method, path, body in requests:
        for token in (None, "wrong"):
            status, _, headers = harness.api(method, path, body, token=token)
            assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer"), (method, path, token)
    status, _, _ = harness.api("GET", "/api/v1/sets", headers={"Authorization": f"Basic {TOKEN}"})
    assert status == 401
    assert [row["setid"] for row in destinations_with(harness, TOKEN)] == [1]  # nothing was written
    for method, path, body in requests:
        status, _, _ = harness.api(method, path, body, token=TOKEN)
        assert status < 300, (method, path, status)


def test_the_paths_an_operator_opens_answer_without_the_token_and_only_those(harness):
    harness.add_destination(free_udp_port())
    harness.start_fastds(api_token=TOKEN, api_open_paths="/metrics,/api/v1/health")
    for path in ("/metrics", "/api/v1/health"):
        assert harness.api("GET", path)[0] == 200, path  # a scraper, an L4 health check: no secret
    for method, path in (("GET", "/api/v1/sets"), ("GET", "/api/v1/stats"), ("POST", "/api/v1/drain"), ("GET", "/")):
        assert harness.api(method, path)[0] == 401, path


def test_rows_the_load_skipped_are_listed_with_id_and_reason_counted_and_shown_by_ds_list(harness):
    harness.add_destination(free_udp_port())
    harness.start_fastds()
    assert harness.api("GET", "/api/v1/sets")[1]["skipped"] == []
    with sqlite3.connect(harness.db) as db:  # a row mistyped in opensips-cp: it must not just disappear
        db.execute("INSERT INTO dispatcher (setid, destination) VALUES (1, 'sip:10.0.0.9:99999')")
    status, reloaded, _ = harness.api("POST", "/api/v1/reload", {})
    expected = [{"id": 2, "reason": "destination 'sip:10.0.0.9:99999' has port 99999: expected a port from 1 to 65535"}]
    assert status == 200 and reloaded["skipped"] == expected
    assert harness.api("GET", "/api/v1/sets")[1]["skipped"] == expected
    jsonschema.validate(harness.api("GET", "/api/v1/sets")[1]["skipped"], openapi_schema("Skipped"))
    assert metric_samples(harness)[("fastds_skipped_rows", ())] == 1
    listed = subprocess.run([sys.executable, "-m", "fastds", "ds", "list"], capture_output=True, text=True,
                            env=harness.env(), timeout=60)
    assert "# 1 row(s) of the store skipped by the last load:" in listed.stdout
    assert "#   id 2: destination 'sip:10.0.0.9:99999' has port 99999" in listed.stdout


def destinations_with(harness, token):
    status, reply, _ = harness.api("GET", "/api/v1/destinations", token=token)
    assert status == 200
    return reply["destinations"]


def test_a_public_api_address_without_a_token_is_refused_at_start(harness):
    process = harness.start_fastds(expect_ready=False, api_listen=f"0.0.0.0:{free_tcp_port()}")
    assert process.wait(30) == 2
    assert "a non-loopback API address requires FASTDS_API_TOKEN" in harness.log.read_text()


def test_mi_over_http_with_the_real_prober(harness):
    ports = [free_udp_port(), free_udp_port()]
    for port in ports:
        harness.add_destination(port)
    first = f"sip:127.0.0.1:{ports[0]}"
    harness.start_fastds(probing_threshold=2)
    status, reply, headers = harness.api("GET", "/mi")
    assert status == 405 and headers["Allow"] == "POST"
    assert harness.api("POST", "/mi", raw=b"")[0] == 400
    status, reply, _ = harness.api("POST", "/mi", {"jsonrpc": "2.0", "method": "ds_reload"})
    assert (status, reply) == (202, b"")
    reply = harness.mi("ds_list", {"full": 1}, request_id=7)
    assert reply["id"] == 7 and reply["result"]["PARTITIONS"][0]["SETS"][0]["Destinations"][0] == {
        "URI": first, "state": "Active", "first_hit_counter": 0, "weight": 1, "priority": 0,
        "resolved_addresses": [f"127.0.0.1:{ports[0]}"]}

    def state():
        found = harness.mi("ds_list")["result"]["PARTITIONS"][0]["SETS"][0]["Destinations"]
        return {d["URI"]: d["state"] for d in found}[first]

    # "p" counts towards the probing threshold (2), as in OpenSIPS
    assert harness.mi("ds_set_state", ["p", "1", first])["result"] == "OK" and state() == "Active"
    assert harness.mi("ds_set_state", ["p", "1", first])["result"] == "OK" and state() == "Probing"
    assert harness.mi("ds_set_state", {"state": "i", "group": "default:1", "address": first})["result"] == "OK"
    assert state() == "Inactive"
    assert harness.mi("ds_set_state", ["a", "1", "sip:127.0.0.1:1"])["error"] == {
        "code": 404, "message": "destination not found"}
    wait_for(lambda: harness.api("GET", "/api/v1/destinations/1")[1]["state"] == "inactive", 10, "the write-back")
    # an operator's edit in the store wins over the inherited runtime state (OpenSIPS #3059)
    with sqlite3.connect(harness.db) as db:
        db.execute("UPDATE dispatcher SET state = 0 WHERE id = 1")
    assert harness.mi("ds_reload", {"inherit_state": "y"})["result"] == "OK" and state() == "Active"
    assert harness.mi("ds_set_state", ["i", "1", first])["result"] == "OK"
    wait_for(lambda: harness.api("GET", "/api/v1/destinations/1")[1]["state"] == "inactive", 10, "the write-back")
    assert harness.mi("ds_reload", {"inherit_state": "0"})["result"] == "OK" and state() == "Inactive"
    stats = harness.mi("get_statistics", {"statistics": ["dispatcher:"]})["result"]
    assert stats["dispatcher:destinations"] == 2 and stats["dispatcher:inactive_destinations"] == 1


def run_cli(harness, *args):
    return subprocess.run([sys.executable, "-m", "fastds", *args], capture_output=True, text=True,
                          env=harness.env(), timeout=60)


def test_the_cli_talks_to_the_running_fastds(harness):
    harness.add_destination(free_udp_port())
    harness.start_fastds()
    listed = run_cli(harness, "ds", "list")
    assert listed.returncode == 0 and "live from fastds" in listed.stdout and "picks" in listed.stdout
    bad = run_cli(harness, "ds", "add", "--set", "1", "--uri", "mailto:x@example.com")
    assert bad.returncode == 2 and "destination not added: destination:" in bad.stderr
    good = run_cli(harness, "ds", "add", "--set", "2", "--uri", "sip:127.0.0.1:5996", "--weight", "3")
    assert good.returncode == 0 and "added destination id 2; live (generation 2)" in good.stdout
    assert "sip:127.0.0.1:5996" in live(harness)
    state = run_cli(harness, "ds", "set-state", "2", "inactive")
    assert state.returncode == 0 and "now inactive (live" in state.stdout
    assert live(harness)["sip:127.0.0.1:5996"]["state"] == "inactive"
    reloaded = run_cli(harness, "ds", "reload")
    assert reloaded.returncode == 0 and "reloaded, generation 3" in reloaded.stdout
    removed = run_cli(harness, "ds", "rm", "2")
    assert removed.returncode == 0 and "sip:127.0.0.1:5996" not in live(harness)
    assert run_cli(harness, "ds", "rm", "2").returncode == 2


def test_opensips_cli_drives_fastds_unchanged(harness):
    """The real opensips-cli (PyPI opensipscli) over its HTTP MI transport."""
    ports = [free_udp_port(), free_udp_port()]
    for port in ports:
        harness.add_destination(port)
    second = f"sip:127.0.0.1:{ports[1]}"
    harness.start_fastds()

    def cli(*command):
        result = subprocess.run(
            ["opensips-cli", "-o", "communication_type=http", "-o", f"url={harness.api_url}/mi",
             "-o", "output_type=pretty-print", "-x", "mi", *command],
            capture_output=True, text=True, timeout=60, env=harness.env())
        return result.returncode, result.stdout, result.stderr

    code, out, err = cli("ds_list")
    assert code == 0, err
    listed = orjson.loads(out)["PARTITIONS"][0]["SETS"][0]["Destinations"]
    assert [d["URI"] for d in listed] == [f"sip:127.0.0.1:{ports[0]}", second]
    assert cli("ds_set_state", "i", "1", second)[:2] == (0, '"OK"\n')
    code, out, _ = cli("ds_list", "full=1")
    assert [(d["state"], d["weight"]) for d in orjson.loads(out)["PARTITIONS"][0]["SETS"][0]["Destinations"]] == [
        ("Active", 1), ("Inactive", 1)]
    assert cli("ds_reload", "inherit_state=n")[0] == 0
    code, _, err = cli("ds_set_state", "x", "1", second)
    assert code != 0 and "500: Bad state value" in err
    code, out, _ = cli("get_statistics", "dispatcher:")
    assert code == 0 and orjson.loads(out)["dispatcher:destinations"] == 2


def test_an_api_port_already_taken_halts_fastds_with_a_message(harness):
    import socket

    harness.add_destination(free_udp_port())
    with socket.create_server(("127.0.0.1", harness.api_port)):
        process = harness.start_fastds(expect_ready=False)
        assert process.wait(60) != 0
    assert harness.log_lines(f"cannot bind the API on 127.0.0.1:{harness.api_port}: Address already in use")
    assert harness.log_lines("halting: api failed at boot")


def test_the_control_panels_dashboard_and_status_report_calls_on_a_running_fastds(harness):
    """opensips-cp asks get_statistics for shmem:/pkmem: and lists status/report identifiers."""
    port = free_udp_port()
    harness.add_destination(port)
    master = harness.start_fastds(workers=2)
    wait_for(lambda: all(row["pid"] for row in harness.api("GET", "/api/v1/stats")[1]["workers"]), 10,
             "both workers' counters rows")
    workers = harness.api("GET", "/api/v1/stats")[1]["workers"]
    assert all({"send_errors", "too_large", "handler_errors"} <= set(row) for row in workers)
    stats = harness.mi("get_statistics", {"statistics": ["shmem:", "pkmem:"]})["result"]
    assert 0 < stats["shmem:used_size"] < stats["shmem:total_size"] == stats["shmem:used_size"] + stats["shmem:free_size"]
    assert {key.split("-")[0] for key in stats if key.startswith("pkmem:")} == {f"pkmem:{n}" for n in range(5)}
    assert all(stats[f"pkmem:{n}-used_size"] > 1_000_000 for n in range(5))  # a Python process's RSS
    master_peak = int(next(line for line in open(f"/proc/{master.pid}/status") if line.startswith("VmHWM")).split()[1])
    assert master_peak * 1024 // 2 < stats["pkmem:0-max_used_size"] <= master_peak * 1024  # a peak only grows
    identifiers = harness.mi("sr_list_identifiers")["result"]
    assert {"Group": "dispatcher", "Identifiers": ["default", "default;events"]} in identifiers
    assert harness.mi("sr_get_status", {"group": "dispatcher"})["result"]["Readiness"] is True
    assert harness.mi("sr_get_status", {"group": "core"})["result"] == {"Readiness": True, "Status": 1,
                                                                           "Details": "running"}
    assert harness.mi("ds_set_state", ["i", "1", f"sip:127.0.0.1:{port}"])["result"] == "OK"
    events = harness.mi("sr_list_reports", ["dispatcher", "default;events"])["result"]
    assert events[-1]["Log"] == f"DESTINATION <sip:127.0.0.1:{port}>, set 1 switched to [inactive] due to MI command"

"""TCP towards destinations on a running fastds (issue 12): SIPp callees on TCP, callers on UDP or
on one TCP connection, 2 workers. Each worker opens its own connection to a TCP destination;
BYE goes both ways along the (double) Record-Route; a destination that refuses connections
fails over at once and comes back through probes over TCP."""

from tests.harness import free_tcp_port, free_udp_port, wait_for
from tests.system.test_cluster import states


def workers(harness):
    return harness.api("GET", "/api/v1/stats")[1]["workers"]


def counted(harness, counter: str, at_least: int) -> list:
    """The workers' rows once `counter` reached at_least over them (they publish every second)."""
    return wait_for(lambda: (rows := workers(harness)) and sum(r[counter] for r in rows) >= at_least and rows, 10,
                    f"{counter} >= {at_least}")


def tcp_callee(harness, scenario: str = "uas.xml") -> int:
    port = free_tcp_port()
    harness.add_destination(port, uri=f"sip:127.0.0.1:{port};transport=tcp")
    harness.uas(scenario, port, "-t", "t1")
    return port


def listen(harness, tcp: bool, **settings) -> int | None:
    """fastds with 2 workers on its UDP port, and on a TCP one when `tcp`; that TCP port."""
    tcp_port = free_tcp_port() if tcp else None
    sip_listen = f"udp:127.0.0.1:{harness.port}" + (f",tcp:127.0.0.1:{tcp_port}" if tcp else "")
    harness.start_fastds(workers=2, sip_listen=sip_listen, **settings)
    return tcp_port


def assert_calls(code: int, stats: dict, calls: int) -> None:
    assert code == 0 and (int(stats["SuccessfulCall(C)"]), int(stats["FailedCall(C)"])) == (calls, 0), stats


def test_udp_callers_reach_a_tcp_callee_over_one_connection_per_worker(harness):
    tcp_callee(harness)
    listen(harness, tcp=True)
    calls = 100
    assert_calls(*harness.uac("uac.xml", calls, 50, 60), calls)  # the caller hangs up
    rows = counted(harness, "forwarded_to_destination", calls)
    assert all(row["forwarded_to_destination"] > 0.25 * calls for row in rows), rows  # both Call-ID owners
    assert [row["tcp_dialled"] for row in rows] == [1, 1]  # one connection per worker to the destination, reused
    assert sum(row["tcp_connect_failures"] + row["tcp_writes_lost"] + row["retransmissions_sent"] for row in rows) == 0


def test_a_tcp_callers_calls_reach_a_tcp_callee_and_the_callee_hangs_up_on_the_callers_connection(harness):
    tcp_callee(harness, "uas_hangs_up.xml")
    tcp_port = listen(harness, tcp=True)
    calls = 60
    # the callee's BYE goes back on the caller's one connection, named in the caller's side of the Record-Route
    assert_calls(*harness.uac("uac_callee_hangs_up.xml", calls, 30, 60, "-t", "t1", to_port=tcp_port), calls)
    rows = counted(harness, "forwarded_to_destination", calls)  # the INVITEs
    assert sum(row["tcp_accepted"] for row in rows) == 1 and sum(row["tcp_dialled"] for row in rows) <= 2
    assert sum(row["tcp_writes_lost"] for row in rows) == 0


def test_calls_each_on_its_own_tcp_connection_reach_a_tcp_callee(harness):
    tcp_callee(harness)
    tcp_port = listen(harness, tcp=True)
    calls = 60
    assert_calls(*harness.uac("uac.xml", calls, 30, 60, "-t", "tn", "-max_socket", "1000", to_port=tcp_port), calls)
    rows = counted(harness, "tcp_accepted", calls)  # a connection per call in, one per worker out
    assert sum(row["tcp_dialled"] for row in rows) <= 2 and sum(row["tcp_writes_lost"] for row in rows) == 0


def test_a_udp_caller_and_a_tcp_callee_that_hangs_up(harness):
    tcp_callee(harness, "uas_hangs_up.xml")
    listen(harness, tcp=True)
    calls = 40
    assert_calls(*harness.uac("uac_callee_hangs_up.xml", calls, 20, 60), calls)  # BYE over TCP in, UDP out


def test_a_refused_tcp_destination_fails_over_at_once_is_marked_probing_and_comes_back_through_probes(harness):
    refusing = free_tcp_port()  # nothing listens on it yet
    harness.add_destination(refusing, priority=10, uri=f"sip:127.0.0.1:{refusing};transport=tcp")
    udp_callee = free_udp_port()
    harness.add_destination(udp_callee)
    harness.uas("uas.xml", udp_callee)
    # an FR timer far longer than SIPp waits for its calls: only a failover at the refused connect completes them
    listen(harness, tcp=True, fr_timeout_ms=60000, probing_threshold=1, ping_interval_s=1, default_alg=8)
    calls = 10
    assert_calls(*harness.uac("uac.xml", calls, 10, 30), calls)
    assert sum(row["tcp_connect_failures"] for row in counted(harness, "connection_failovers", 1)) >= 1
    uri = f"sip:127.0.0.1:{refusing};transport=tcp"
    wait_for(lambda: states(harness)[uri] == "probing", 10, "the refused destination marked probing")
    harness.uas("uas.xml", refusing, "-t", "t1")  # now it answers, probes (OPTIONS over TCP) included
    wait_for(lambda: states(harness)[uri] == "active", 30, "the TCP destination active again through its probes")
    assert_calls(*harness.uac("uac.xml", calls, 10, 30), calls)
    counted(harness, "tcp_dialled", 1)

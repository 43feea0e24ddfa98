"""Several fastds nodes sharing destination states through the machine's Redis (issue: cluster).

Each test has a cluster name of its own (its keys are deleted afterwards; the shared Redis
is never flushed nor stopped: an outage is a relay the test cuts). Nodes run on loopback
with their own SIP and API ports, one SQLite store and one FASTDS_SECRET, heartbeats every
300 ms. Destinations are played here (LoopbackDestination): they answer OPTIONS 200 unless
told to stay silent, and record every datagram, so the probes each receives can be counted.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time

import pytest
import redis

from fastds.sip import scan
from tests.harness import Harness, OptionsCallee, Relay, wait_for

HEARTBEAT_MS = 300


class Callee(OptionsCallee):
    def probes(self, since: float = 0.0) -> list[int]:
        """The Via port (which node's prober) of every probe received since `since`."""
        found = []
        for at, data in self.received:
            message = scan(data)
            if at >= since and message.call_id.startswith(b"probe-"):
                found.append(message.via_port)
        return found


@pytest.fixture
def cluster(tmp_path):
    name = f"test-{secrets.token_hex(4)}"
    nodes: list[Harness] = []
    callees: list[Callee] = []
    relay = Relay(6379)

    def start(count: int = 1, callee_count: int = 0, through_relay: bool = False, node_id: str | None = None,
              expect_ready: bool = True, **settings) -> list[Harness]:
        """`count` more nodes (n1, n2 ... unless node_id is given); the first one's store
        gets a destination for each of `callee_count` new callees."""
        for _ in range(callee_count):
            callees.append(Callee())
        started = []
        for _ in range(count):
            node = Harness(tmp_path / f"node{len(nodes)}")
            if not nodes:
                for callee in callees:
                    node.add_destination(callee.port)
            nodes.append(node)
            port = relay.port if through_relay else 6379
            node.start_fastds(expect_ready, db_url=f"sqlite:///{nodes[0].db}", secret="cluster-test-secret",
                              node_id=node_id or f"n{len(nodes)}", cluster_url=f"redis://127.0.0.1:{port}/0",
                              cluster_name=name, cluster_heartbeat_ms=HEARTBEAT_MS, fr_timeout_ms=1000,
                              probing_threshold=1, default_alg=2, **settings)
            started.append(node)
        return started

    yield start, nodes, callees, relay
    for node in nodes:
        node.close()
    for callee in callees:
        callee.stop()
    relay.close()
    client = redis.Redis(host="127.0.0.1", port=6379)
    for key in client.scan_iter(match=f"fastds:{name}:*"):
        client.delete(key)


def states(node: Harness) -> dict[str, str]:
    return {d["destination"]: d["state"] for s in node.api("GET", "/api/v1/sets")[1]["sets"] for d in s["destinations"]}


def route(node: Harness, sock: socket.socket, to_user: str, callees) -> int:
    """Send an OPTIONS for `to_user` through `node`; the index of the callee it reached."""
    before = [len(c.received) for c in callees]
    call_id = f"{to_user}-{time.monotonic_ns()}"
    sock.sendto((f"OPTIONS sip:{to_user}@127.0.0.1:{node.port} SIP/2.0\r\n"
                 f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-{call_id[-12:]};rport\r\nMax-Forwards: 70\r\n"
                 f"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:{to_user}@127.0.0.1>\r\nCall-ID: {call_id}\r\n"
                 f"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(), ("127.0.0.1", node.port))

    def reached():
        grown = [i for i, c in enumerate(callees) if len(c.received) > before[i]
                 and any(scan(d).call_id == call_id.encode() for _, d in c.received[before[i]:])]
        return grown[0] if grown else None

    return wait_for(lambda: (lambda i: i + 1 if i is not None else None)(reached()), 10, f"{to_user} routed") - 1


def test_a_destination_one_node_finds_dead_is_dead_on_all_and_keys_hash_alike(cluster):
    start, nodes, callees, _ = cluster
    a, b, c = start(3, callee_count=2, confirm_failures=0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    users = [f"user{i}" for i in range(12)]
    before = {user: {route(node, sock, user, callees) for node in (a, b, c)} for user in users}
    assert all(len(reached) == 1 for reached in before.values()), before  # one destination per To, every node
    victim_user = next(user for user, reached in before.items() if reached == {0})
    callees[0].silent = True
    route(a, sock, victim_user, callees)  # reaches callee 0, which stays silent: A's FR timer marks it
    uri = f"sip:127.0.0.1:{callees[0].port}"
    wait_for(lambda: states(a)[uri] == "probing" or None, 10, "node A marking the dead callee")
    marked = time.monotonic()
    for node in (b, c):
        wait_for(lambda node=node: states(node)[uri] == "probing" or None, 5, "the others following")
    assert time.monotonic() - marked < 1.0 + 0.5  # within 1 s (plus the API polls' own time)
    assert b.log_lines(f"{uri} active -> probing") and b.log_lines("from node n1")
    after = {user: {route(node, sock, user, callees) for node in (a, b, c)} for user in users}
    assert all(reached == {1} for reached in after.values()), after  # calls still complete, alike


def test_probes_are_shared_and_a_dead_nodes_share_is_taken_over(cluster):
    start, nodes, callees, _ = cluster
    a, b, c = start(3, callee_count=6, probing_mode=1, ping_interval_s=1)
    wait_for(lambda: all(len(node.api("GET", "/api/v1/cluster")[1]["nodes"]) == 3 for node in nodes) or None,
             10, "every node seeing three")
    reply = a.api("GET", "/api/v1/cluster")[1]
    listed = reply["nodes"]
    assert [n["id"] for n in listed] == ["n1", "n2", "n3"] and all(n["beat_at"] >= n["started_at"] for n in listed)
    assert "id" not in reply and reply["node"] == "n1"  # the control request's id is not part of the answer
    assert [n["pid"] for n in listed] == [node.processes[-1].pid for node in nodes]  # the masters, which take signals
    shown = subprocess.run([sys.executable, "-m", "fastds", "cluster", "status"], capture_output=True, text=True,
                           env=a.env(), timeout=60)
    assert shown.returncode == 0, shown.stderr
    header, *rows = shown.stdout.splitlines()[1:]
    assert header.split() == ["id", "sip", "api", "pid", "version", "started", "last_beat", "probes", "state"]
    assert all(re.search(r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ +\d+\.\d s ago ", row) for row in rows), rows
    since = time.monotonic() + 1.0
    time.sleep(1.0 + 3.0)  # three ping intervals, once membership settled
    counts = [len(callee.probes(since)) for callee in callees]
    assert all(2 <= count <= 4 for count in counts), counts  # one node's worth: ~3 each, not ~9
    ports_before = [set(callee.probes(since)) for callee in callees]
    assert all(len(ports) == 1 for ports in ports_before)  # each destination has one prober
    shares = b.api("GET", "/api/v1/cluster")[1]["probes"]  # destination ids 1-6 are the callees in order
    c_share = [callees[dest_id - 1] for dest_id in shares.get("n3", [])]
    assert c_share and sorted(sum(shares.values(), [])) == [1, 2, 3, 4, 5, 6], shares
    os.kill(c.processes[-1].pid, signal.SIGKILL)  # node C's master
    killed = time.monotonic()
    for callee in c_share:
        wait_for(lambda callee=callee: set(callee.probes(killed + 0.05)) - ports_before[callees.index(callee)] or None,
                 10, "another node probing C's destinations")
    assert time.monotonic() - killed < 2 * HEARTBEAT_MS / 1000 + 1.0 + 1.0  # + one interval + room


def test_ds_set_state_on_one_node_shows_on_the_others_and_on_a_late_node(cluster):
    start, nodes, callees, _ = cluster
    a, b, c = start(3, callee_count=2)
    uri = f"sip:127.0.0.1:{callees[0].port}"
    assert a.mi("ds_set_state", {"state": "i", "group": "1", "address": uri})["result"] == "OK"
    for node in (b, c):
        wait_for(lambda node=node: states(node)[uri] == "inactive" or None, 5, "ds_set_state reaching the others")
    (d,) = start(1)
    assert states(d)[uri] == "inactive"  # already in its first table, before any call
    status, reply, _ = a.api("POST", "/api/v1/reload?cluster=1")
    assert status == 200 and reply["cluster"] is True
    wait_for(lambda: d.log_lines("published generation 2") or None, 10, "the reload broadcast")


def test_a_redis_outage_degrades_every_node_and_they_converge_when_it_heals(cluster):
    start, nodes, callees, relay = cluster
    a, b = start(2, callee_count=2, through_relay=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    uri = f"sip:127.0.0.1:{callees[0].port}"
    relay.cut()
    for node in (a, b):
        wait_for(lambda node=node: node.api("GET", "/api/v1/health")[1]["checks"].get("cluster", "").startswith(
            "cluster degraded") or None, 10, "degraded in health")
    assert "fastds_cluster_degraded 1.0" in a.api("GET", "/metrics")[1].decode()
    assert a.log_lines("degraded: Redis unreachable")
    route(a, sock, "during-the-cut", callees)  # still routing
    assert a.mi("ds_set_state", {"state": "i", "group": "1", "address": uri})["result"] == "OK"
    assert states(b)[uri] == "active"  # B cannot know yet
    relay.restore()
    healed = time.monotonic()
    wait_for(lambda: states(b)[uri] == "inactive" or None, 10, "B converging after the heal")
    assert time.monotonic() - healed < 2.0 + 0.5
    wait_for(lambda: a.api("GET", "/api/v1/health")[1]["checks"].get("cluster") == "ok" or None, 10, "healthy again")
    assert a.api("GET", "/api/v1/cluster")[1]["error"] is None  # no stale Redis error once it answers again


def test_a_duplicate_node_id_is_refused(cluster):
    start, nodes, callees, _ = cluster
    start(1, callee_count=1)
    (twin,) = start(1, node_id="n1", expect_ready=False)
    assert twin.processes[-1].wait(30) == 1
    assert twin.log_lines("FASTDS_NODE_ID='n1' is held by another live node")

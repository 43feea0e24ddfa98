"""Destinations given by DNS name (issue 24 #4), against a real DNS server on loopback (dnslib's)
whose answers the tests change: SRV targets of two priorities, a TTL expiry that moves an
address, a name that stops resolving -- calls follow, nothing in flight is lost."""

import jsonschema
from dnslib import SRV, A

from tests.dns_zone import start
from tests.harness import free_udp_port, openapi_schema, wait_for


def destinations(harness) -> list[dict]:
    return [d for s in harness.api("GET", "/api/v1/sets")[1]["sets"] for d in s["destinations"]]


def test_srv_targets_of_two_priorities_take_the_calls_in_order(harness, zone):
    first, second = free_udp_port(), free_udp_port()
    zone.set("_sip._udp.gw.test", "SRV", [SRV(10, 5, first, "a.gw.test"), SRV(20, 5, second, "b.gw.test")])
    zone.set("a.gw.test", "A", [A("127.0.0.1")])
    zone.set("b.gw.test", "A", [A("127.0.0.1")])
    first_callee = harness.uas("uas.xml", first)
    harness.uas("uas.xml", second)
    start(harness, zone, "sip:gw.test")
    made = {d["address"]: d for d in destinations(harness)}
    assert set(made) == {f"127.0.0.1:{first}", f"127.0.0.1:{second}"}
    best, backup = made[f"127.0.0.1:{first}"], made[f"127.0.0.1:{second}"]
    assert (best["id"], best["weight"], best["dns"]["priority"]) == (1, 5, 10)
    assert backup["id"] < 0 and (backup["weight"], backup["dns"]["priority"]) == (0, 20)
    assert best["dns"]["name"] == "gw.test" and best["dns"]["srv"] is True and best["destination"] == "sip:gw.test"
    jsonschema.validate(backup, openapi_schema("LiveDestination"))

    code, stats = harness.uac("uac.xml", 20)
    assert code == 0 and stats["SuccessfulCall(C)"] == "20"
    picks = {d["address"]: d["picks"] for d in destinations(harness)}
    assert picks == {f"127.0.0.1:{first}": 20, f"127.0.0.1:{second}": 0}  # the better priority takes them all

    first_callee.stop()  # the better target dies: the probes take it out, the calls go to the backup
    wait_for(lambda: {d["address"]: d["state"] for d in destinations(harness)}[f"127.0.0.1:{first}"] != "active",
             20, "the dead target out")
    code, stats = harness.uac("uac.xml", 20)
    assert code == 0 and stats["SuccessfulCall(C)"] == "20"
    assert {d["address"]: d["picks"] for d in destinations(harness)}[f"127.0.0.1:{second}"] == 20


def test_a_ttl_expiry_moves_the_address_and_a_name_that_stops_resolving_keeps_it(harness, zone):
    port = free_udp_port()
    zone.set("moving.test", "A", [A("127.0.0.1")])
    old_callee = harness.uas("uas.xml", port)
    new_callee = harness.uas("uas.xml", port, "-i", "127.0.0.2")
    start(harness, zone, f"sip:moving.test:{port}")
    (only,) = destinations(harness)
    assert only["address"] == f"127.0.0.1:{port}" and only["dns"]["srv"] is False

    # calls held 4 s are in flight when the address moves: each still ends where it began
    held = harness.start_uac("uac.xml", 20, 10, 60, 4000)
    wait_for(lambda: destinations(harness)[0]["picks"] >= 10, 20, "calls in flight to the old address")
    zone.set("moving.test", "A", [A("127.0.0.2")])
    wait_for(lambda: destinations(harness)[0]["address"] == f"127.0.0.2:{port}", 20, "the new address, after the TTL")
    assert held.wait(60) == 0 and held.stats()["SuccessfulCall(C)"] == "20"
    code, stats = harness.uac("uac.xml", 10)
    assert code == 0 and stats["SuccessfulCall(C)"] == "10"
    assert harness.log_lines("DNS: moving.test:%d resolves to 127.0.0.2:%d" % (port, port))

    zone.set("moving.test", "A", [])  # gone from DNS: NXDOMAIN
    wait_for(lambda: destinations(harness)[0]["dns"]["stale"], 20, "the name shown as not resolving")
    (kept,) = destinations(harness)
    assert kept["address"] == f"127.0.0.2:{port}" and "NXDOMAIN" in kept["dns"]["error"]
    jsonschema.validate(kept, openapi_schema("LiveDestination"))
    code, stats = harness.uac("uac.xml", 10)
    assert code == 0 and stats["SuccessfulCall(C)"] == "10"  # the last address still takes the calls
    assert harness.log_lines("DNS: moving.test:%d does not resolve" % port)
    old_calls, new_calls = int(old_callee.stop()["SuccessfulCall(C)"] or 0), int(new_callee.stop()["SuccessfulCall(C)"] or 0)
    assert new_calls >= 20 and old_calls + new_calls == 40

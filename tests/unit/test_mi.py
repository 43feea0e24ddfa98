"""/mi request/response shapes, field by field against OpenSIPS 3.4 mi/mi.c.

No sockets: a snapshot built from dispatcher rows and a recording stand-in for the
prober's control socket.
"""

import asyncio
import time

import orjson
import pytest

from fastds.api.mi import MiHandler
from fastds.api.snapshot import LiveDestination, Snapshot
from fastds.dispatch.sets import build_sets
from fastds.shm.layout import WORKER_COUNTERS

ROWS = [
    {"id": 1, "setid": 1, "destination": "sip:10.0.0.1:5060", "state": 0, "weight": "1", "priority": 0,
     "socket": "udp:10.0.0.10:5060", "attrs": "carrier=a", "description": "first"},
    {"id": 2, "setid": 1, "destination": "sip:10.0.0.2", "state": 2, "weight": "3", "priority": 5},
    {"id": 3, "setid": 4, "destination": "sip:10.0.0.3:5080", "state": 1},
]


def snapshot(rows=ROWS, picks=7) -> Snapshot:
    sets, _ = build_sets(rows)
    live = {set_id: [LiveDestination(d, d.state, picks, 1, 0, None) for d in s.destinations] for set_id, s in sets.items()}
    workers = [dict.fromkeys(WORKER_COUNTERS, 2), dict.fromkeys(WORKER_COUNTERS, 3)]
    return Snapshot(9, live, workers)


class Prober:
    def __init__(self, reply=None):
        self.requests = []
        self.reply = reply or {"ok": True, "state": 0, "changed": True, "generation": 10, "problems": []}

    async def __call__(self, op, **fields):
        self.requests.append((op, fields))
        return self.reply


def call(body, rows=ROWS, prober=None):
    prober = prober or Prober()
    handler = MiHandler(lambda: snapshot(rows), prober)
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    status, reply = asyncio.run(handler.handle(raw))
    return status, (orjson.loads(reply) if reply is not None else None), prober


def rpc(method, params=None, request_id=1, **kwargs):
    body = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        body["params"] = params
    status, reply, prober = call(body, **kwargs)
    assert status == 200
    return reply, prober


def test_ds_list_has_the_opensips_keys_and_only_the_non_empty_optional_ones():
    reply, _ = rpc("ds_list")
    assert list(reply) == ["jsonrpc", "result", "id"] and reply["jsonrpc"] == "2.0" and reply["id"] == 1
    (partition,) = reply["result"]["PARTITIONS"]
    assert partition["name"] == "default"
    assert [s["id"] for s in partition["SETS"]] == [1, 4]
    first, second = partition["SETS"][0]["Destinations"]
    # priority 5 sorts first in the set, as OpenSIPS orders by priority
    assert first == {"URI": "sip:10.0.0.2", "state": "Probing", "first_hit_counter": 7,
                     "resolved_addresses": ["10.0.0.2:5060"]}
    assert second == {"URI": "sip:10.0.0.1:5060", "state": "Active", "first_hit_counter": 7,
                      "socket": "udp:10.0.0.10:5060", "attr": "carrier=a", "resolved_addresses": ["10.0.0.1:5060"]}
    assert partition["SETS"][1]["Destinations"][0]["state"] == "Inactive"


def test_ds_list_full_adds_weight_priority_and_description():
    for full in (1, "1", {"full": 1, "partition": "default"}):
        reply, _ = rpc("ds_list", full if isinstance(full, dict) else {"full": full})
        destinations = reply["result"]["PARTITIONS"][0]["SETS"][0]["Destinations"]
        assert list(destinations[1]) == ["URI", "state", "first_hit_counter", "socket", "attr", "weight", "priority",
                                         "description", "resolved_addresses"]
        assert (destinations[1]["weight"], destinations[1]["priority"], destinations[1]["description"]) == (1, 0,
                                                                                                             "first")
        assert "description" not in destinations[0]  # empty: left out
    reply, _ = rpc("ds_list", {"full": 0})
    assert "weight" not in reply["result"]["PARTITIONS"][0]["SETS"][0]["Destinations"][0]


def test_ds_list_of_nothing_and_unknown_partition():
    reply, _ = rpc("ds_list", rows=[])
    assert reply["result"] == {"PARTITIONS": [{"name": "default"}]}  # no SETS key
    reply, _ = rpc("ds_list", {"partition": "other"})
    assert reply["error"] == {"code": 500, "message": "ERROR Unknown partition"}
    reply, _ = rpc("ds_list", {"full": "yes"})
    assert reply["error"] == {"code": -32602, "message": "Invalid params", "data": "Bad type for parameter 'full'"}


@pytest.mark.parametrize("state, sent", [("a", 0), ("A", 0), ("1", 0), ("i", 1), ("I", 1), ("0", 1),
                                         ("p", 2), ("P", 2), ("2", 2), ("active", 0), ("inactive", 1)])
def test_ds_set_state_maps_the_first_letter_like_opensips(state, sent):
    reply, prober = rpc("ds_set_state", {"state": state, "group": "1", "address": "SIP:10.0.0.1:5060"})
    assert reply == {"jsonrpc": "2.0", "result": "OK", "id": 1}
    assert prober.requests == [("set_state", {"destination": 1, "state": sent, "mi": True})]


def test_ds_set_state_positional_as_opensips_cli_sends_it():
    reply, prober = rpc("ds_set_state", ["i", "default:4", "sip:10.0.0.3:5080"])
    assert reply["result"] == "OK" and prober.requests[0][1]["destination"] == 3


@pytest.mark.parametrize("params, error", [
    ({"state": "x", "group": "1", "address": "sip:10.0.0.1:5060"}, {"code": 500, "message": "Bad state value"}),
    ({"state": "", "group": "1", "address": "sip:10.0.0.1:5060"}, {"code": 500, "message": "Bad state value"}),
    ({"state": "a", "group": ":1", "address": "sip:10.0.0.1:5060"}, {"code": 500, "message": "bad group format"}),
    ({"state": "a", "group": "x:1", "address": "sip:10.0.0.1:5060"},
     {"code": 404, "message": "ERROR Unknown partition"}),
    ({"state": "a", "group": "one", "address": "sip:10.0.0.1:5060"}, {"code": 500, "message": "bad group value"}),
    ({"state": "a", "group": "2", "address": "sip:10.0.0.1:5060"}, {"code": 404, "message": "destination not found"}),
    ({"state": "a", "group": "1", "address": "sip:10.9.9.9"}, {"code": 404, "message": "destination not found"}),
    ({"state": "a", "group": "1"}, {"code": -32602, "message": "Invalid params",
                                    "data": "Too few or too many parameters"}),
    ({"state": "a", "group": "1", "uri": "sip:10.0.0.1"}, {"code": -32602, "message": "Invalid params",
                                                           "data": "Named parameters do not match"}),
])
def test_ds_set_state_errors(params, error):
    reply, prober = rpc("ds_set_state", params)
    assert reply == {"jsonrpc": "2.0", "error": error, "id": 1}
    assert prober.requests == []


def test_ds_reload_inherit_state_is_bool_like():
    for value, inherit in [("0", False), ("n", False), ("N", False), (0, False), ("1", True), ("y", True),
                           ("no", True), ("whatever", True)]:
        reply, prober = rpc("ds_reload", {"inherit_state": value})
        assert reply["result"] == "OK" and prober.requests == [("reload", {"inherit": inherit, "cluster": False})], value
    reply, prober = rpc("ds_reload")
    assert prober.requests == [("reload", {"inherit": True, "cluster": False})]
    reply, _ = rpc("ds_reload", {"partition": "nope"})
    assert reply["error"] == {"code": 500, "message": "ERROR Unknown partition"}
    reply, _ = rpc("ds_reload", prober=Prober({"ok": False, "error": "store down"}))
    assert reply["error"] == {"code": 500, "message": "ERROR Reloading data"}


def test_get_statistics_all_group_name_and_not_found():
    reply, _ = rpc("get_statistics", {"statistics": ["all"]})
    stats = reply["result"]
    assert stats["fastds:packets_in"] == 5 and stats["dispatcher:destinations"] == 3
    assert stats["dispatcher:picks"] == 21 and stats["dispatcher:active_destinations"] == 1
    reply, _ = rpc("get_statistics", {"statistics": ["dispatcher:"]})
    assert set(reply["result"]) == {k for k in stats if k.startswith("dispatcher:")}
    reply, _ = rpc("get_statistics", [["no_route", "fastds:timeouts"]])
    assert reply["result"] == {"fastds:no_route": 5, "fastds:timeouts": 5}
    reply, _ = rpc("get_statistics", {"statistics": ["nothing"]})
    assert reply["error"] == {"code": 404, "message": "Statistics Not Found"}
    reply, _ = rpc("get_statistics", {"statistics": "all"})
    assert reply["error"]["data"] == "Bad type for parameter 'statistics'"


def test_json_rpc_errors():
    status, reply, _ = call(b"{not json")
    assert (status, reply) == (200, {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None})
    status, reply, _ = call({"jsonrpc": "1.0", "method": "ds_list", "id": 4})
    assert reply == {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": 4}
    status, reply, _ = call({"jsonrpc": "2.0", "method": "ds_list", "params": "full", "id": 4})
    assert reply["error"]["code"] == -32600
    status, reply, _ = call({"jsonrpc": "2.0", "method": "dr_gw_status", "id": "a"})  # a module fastds has not
    assert reply == {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "a"}
    reply, _ = rpc("ds_list", [1])  # {partition} or {full}: OpenSIPS cannot tell either
    assert reply["error"] == {"code": -32602, "message": "Invalid params",
                              "data": "Ambiguous call, use named parameters instead"}
    reply, _ = rpc("ds_list", [1, "default", 3])
    assert reply["error"]["data"] == "Too few or too many parameters"


def test_notifications_get_no_body_and_empty_bodies_are_400():
    status, reply, prober = call({"jsonrpc": "2.0", "method": "ds_reload"})
    assert (status, reply) == (202, None) and prober.requests == [("reload", {"inherit": True, "cluster": False})]
    assert call({"jsonrpc": "2.0", "method": "nope"})[:2] == (202, None)
    status, reply, _ = call({"method": "ds_list"})  # invalid request: answered even without an id
    assert status == 200 and reply["error"]["code"] == -32600 and reply["id"] is None
    assert call(b"  ")[:2] == (400, None)


def test_which_lists_commands_and_their_parameter_sets_as_opensips_cli_expects():
    reply, _ = rpc("which")
    assert reply["result"] == ["address_dump", "address_reload", "ds_list", "ds_reload", "ds_set_state",
                               "event_subscribe", "events_list", "get_statistics", "list_statistics", "pike_list",
                               "pike_rm", "ps", "reset_statistics", "sr_get_status", "sr_list_identifiers",
                               "sr_list_reports", "sr_list_status", "subnet_dump", "subscribers_list", "uptime",
                               "version", "which"]
    reply, _ = rpc("which", {"command": "ds_list"})
    assert reply["result"] == [[], ["partition"], ["full"], ["full", "partition"]]
    reply, _ = rpc("which", {"command": "dr_gw_status"})
    assert reply["error"] == {"code": 404, "message": "unknown MI command"}


def test_the_requests_of_the_opensips_control_panel():
    """opensips-cp's dispatcher tool (web/tools/system/dispatcher): ds_list with its partition, then reads
    PARTITIONS[0].SETS[*].Destinations[*].URI / .state; clicks send "I" / "A" with
    "partition:setid"; "Apply changes" sends ds_reload with the partition or nothing."""
    reply, _ = rpc("ds_list", {"partition": "default"})
    listed = [(d["URI"], d["state"]) for s in reply["result"]["PARTITIONS"][0]["SETS"] for d in s["Destinations"]]
    assert listed == [("sip:10.0.0.2", "Probing"), ("sip:10.0.0.1:5060", "Active"), ("sip:10.0.0.3:5080", "Inactive")]
    reply, prober = rpc("ds_set_state", {"state": "I", "group": "default:1", "address": "sip:10.0.0.1:5060"})
    assert reply["result"] == "OK" and prober.requests == [("set_state", {"destination": 1, "state": 1, "mi": True})]
    reply, prober = rpc("ds_set_state", {"state": "A", "group": "default:4", "address": "sip:10.0.0.3:5080"})
    assert reply["result"] == "OK" and prober.requests[0][1]["state"] == 0
    for params in ({"partition": "default"}, None):
        reply, prober = rpc("ds_reload", params)
        assert reply["result"] == "OK" and prober.requests == [("reload", {"inherit": True, "cluster": False})]


def test_get_statistics_answers_shmem_and_pkmem_in_the_opensips_names():
    import os

    from fastds.api.snapshot import Snapshot

    workers = [{**dict.fromkeys(WORKER_COUNTERS, 0), "pid": os.getpid()}]
    handler = MiHandler(lambda: Snapshot(3, {}, workers, shm_size=1000, shm_used=400),
                        Prober({"ok": True, "pid": os.getpid()}))
    body = orjson.dumps({"jsonrpc": "2.0", "method": "get_statistics", "params": [["shmem:", "pkmem:"]], "id": 1})
    stats = orjson.loads(asyncio.run(handler.handle(body))[1])["result"]
    assert {key: stats[key] for key in stats if key.startswith("shmem:")} == {
        "shmem:total_size": 1000, "shmem:used_size": 400, "shmem:real_used_size": 400, "shmem:max_used_size": 400,
        "shmem:free_size": 600, "shmem:fragments": 0}
    assert {key.split("-")[0] for key in stats if key.startswith("pkmem:")} == {"pkmem:0", "pkmem:1", "pkmem:2",
                                                                                 "pkmem:3"}
    assert 0 < stats["pkmem:3-used_size"] <= stats["pkmem:3-max_used_size"] < stats["pkmem:3-total_size"]
    assert stats["pkmem:3-free_size"] == stats["pkmem:3-total_size"] - stats["pkmem:3-used_size"]


class StatusProber:
    """The prober's side of sr_*: a real StatusReport after one load and one state change."""

    def __init__(self):
        from fastds.dispatch.health import StateChange
        from fastds.dispatch.state import DestinationState
        from fastds.dispatch.status_report import StatusReport

        self.report = StatusReport()
        self.report.loading(1652373212)
        self.report.loaded(3, 1, 1652373212)
        destination = build_sets(ROWS)[0][1].destinations[0]
        self.report.state_changed(StateChange(destination, 0, DestinationState.ACTIVE, DestinationState.PROBING,
                                              "probe timeout"), 1652373308)

    async def __call__(self, op, **fields):
        return {"ok": True, "groups": self.report.as_json()}


def sr(method, params=None):
    handler = MiHandler(lambda: snapshot(), StatusProber())
    body = {"jsonrpc": "2.0", "method": method, "id": 1, **({"params": params} if params is not None else {})}
    return orjson.loads(asyncio.run(handler.handle(orjson.dumps(body)))[1])


def test_status_report_commands_in_the_opensips_shapes():
    assert sr("sr_list_identifiers")["result"] == [
        {"Group": "dispatcher", "Identifiers": ["default", "default;events"]}, {"Group": "core", "Identifiers": ["main"]}]
    assert sr("sr_list_identifiers", {"group": "dispatcher"})["result"] == {
        "Group": "dispatcher", "Identifiers": ["default", "default;events"]}
    assert sr("sr_get_status", {"group": "dispatcher"})["result"] == {
        "Readiness": True, "Status": 1, "Details": "data available"}
    assert sr("sr_get_status", ["core", "main"])["result"] == {"Readiness": True, "Status": 1, "Details": "running"}
    assert sr("sr_get_status", {"group": "dispatcher", "identifier": "all"})["result"]["Details"] == "aggregated"
    assert sr("sr_list_status", {"group": "dispatcher"})["result"][0] == {
        "Name": "default", "Readiness": True, "Status": 1, "Details": "data available"}
    assert [group["Name"] for group in sr("sr_list_status")["result"]] == ["dispatcher", "core"]
    (event,) = sr("sr_list_reports", {"group": "dispatcher", "identifier": "default;events"})["result"]
    assert event["Timestamp"] == 1652373308 and event["Date"] == time.ctime(1652373308)
    assert event["Log"] == "DESTINATION <sip:10.0.0.2>, set 1 switched to [probing] due to probe timeout"
    data = sr("sr_list_reports", {"group": "dispatcher"})["result"][0]
    assert [report["Log"] for report in data["Reports"]] == [
        "starting DB data loading", "DB data loading successfully completed", "3 destinations loaded (1 discarded)"]
    assert sr("sr_get_status", {"group": "nope"})["error"] == {"code": 404, "message": "Group not found"}
    assert sr("sr_get_status", {"group": "dispatcher", "identifier": "x"})["error"]["message"] == "Identity not found"
    assert sr("sr_list_reports", ["core", "x"])["error"] == {"code": 404, "message": "Identifier not found"}


# -- permissions and pike (fastds/api/mi_edge.py) ---------------------------------------------


def edge_rpc(method, params=None, addresses=(), blocked=(), prober=None):
    from fastds.api.snapshot import BlockedIp

    base = snapshot()
    shot = Snapshot(base.generation, base.sets, base.workers, addresses=list(addresses),
                    blocked=[BlockedIp(ip, 1.0, 2.0, 3, (0,)) for ip in blocked])
    prober = prober or Prober()
    body = {"jsonrpc": "2.0", "method": method, "id": 1, **({"params": params} if params is not None else {})}
    status, reply = asyncio.run(MiHandler(lambda: shot, prober).handle(orjson.dumps(body)))
    assert status == 200
    return orjson.loads(reply), prober


ADDRESSES = [
    {"id": 1, "grp": 1, "ip": "198.51.100.7", "mask": 32, "port": 5060, "proto": "udp", "pattern": None,
     "context_info": "carrier-a"},
    {"id": 2, "grp": 2, "ip": "203.0.113.0", "mask": 24, "port": 0, "proto": "any", "pattern": "sip:+1*",
     "context_info": None},
]


def test_address_dump_and_subnet_dump_in_opensips_shapes():
    reply, _ = edge_rpc("address_dump", addresses=ADDRESSES)
    assert reply["result"] == {"Partitions": [{"name": "default", "Destinations": [
        {"grp": 1, "ip": "198.51.100.7", "mask": "32", "port": 5060, "proto": "udp", "pattern": None,
         "context_info": "carrier-a"}]}]}
    reply, _ = edge_rpc("subnet_dump", {"partition": "default"}, addresses=ADDRESSES)
    assert reply["result"] == {"part": "default", "Destinations": [
        {"grp": 2, "ip": "203.0.113.0", "mask": "255.255.255.0", "port": 0, "proto": "any", "pattern": "sip:+1*",
         "context_info": None}]}
    reply, _ = edge_rpc("address_dump", {"partition": "other"})
    assert reply["error"] == {"code": 404, "message": "No such partition"}


def test_address_reload_reloads_through_the_prober():
    reply, prober = edge_rpc("address_reload")
    assert reply["result"] == "OK" and prober.requests == [("reload", {"inherit": True})]
    reply, _ = edge_rpc("address_reload", prober=Prober({"ok": False, "error": "store down"}))
    assert reply["error"]["code"] == 400


def test_pike_list_and_pike_rm():
    reply, _ = edge_rpc("pike_list", blocked=["203.0.113.9", "2001:db8::9"])
    assert reply["result"] == {"IPs": ["203.0.113.9", "2001:db8::9"]}
    reply, prober = edge_rpc("pike_rm", {"ip": "203.0.113.9"}, blocked=["203.0.113.9"])
    assert reply["result"] == "OK" and prober.requests == [("unblock", {"ip": "203.0.113.9"})]
    assert edge_rpc("pike_rm", {"ip": "nope"})[0]["error"] == {"code": 500, "message": "Bad IP"}
    assert edge_rpc("pike_rm", {"ip": "198.51.100.1"})[0]["error"] == {"code": 404, "message": "Match not found"}


def test_the_core_commands_opensips_cp_asks_for():
    """The dashboard's PKG widget (ps), the MI Commands tool (version, uptime): OpenSIPS 3.4
    mi/mi_core.c shapes; ps IDs are the N of the pkmem:N- statistics."""
    import os

    workers = [{**dict.fromkeys(WORKER_COUNTERS, 0), "pid": os.getpid()}, {**dict.fromkeys(WORKER_COUNTERS, 0), "pid": 0}]
    handler = MiHandler(lambda: Snapshot(3, {}, workers), Prober({"ok": True, "pid": 4242}))

    def ask(method):
        body = orjson.dumps({"jsonrpc": "2.0", "method": method, "id": 1})
        return orjson.loads(asyncio.run(handler.handle(body))[1])["result"]

    assert ask("version")["Server"].startswith("fastds (0.")
    uptime = ask("uptime")
    assert set(uptime) == {"Now", "Up since", "Up time"} and uptime["Up time"].endswith(" [sec]")
    assert int(uptime["Up time"].split()[0]) >= 0 and len(uptime["Now"]) == 24  # ctime(), as OpenSIPS
    assert ask("ps") == {"Processes": [
        {"ID": 0, "PID": os.getppid(), "Type": "attendant"},
        {"ID": 1, "PID": 4242, "Type": "prober (store, probes, states)"},
        {"ID": 2, "PID": os.getpid(), "Type": "HTTP management (API, MI, metrics)"},
        {"ID": 3, "PID": os.getpid(), "Type": "SIP worker 0"}]}  # worker 1 is down (pid 0): not listed


def test_list_statistics_types_and_reset_statistics_resets_counters_only():
    counters = {"value": 5}

    def live():
        workers = [{**dict.fromkeys(WORKER_COUNTERS, counters["value"]), "pid": 0}]
        return Snapshot(3, {}, workers)

    handler = MiHandler(live, Prober())

    def ask(method, params=None):
        body = {"jsonrpc": "2.0", "method": method, "id": 1, **({"params": params} if params is not None else {})}
        reply = orjson.loads(asyncio.run(handler.handle(orjson.dumps(body)))[1])
        return reply.get("result", reply.get("error"))

    listed = ask("list_statistics")
    assert listed["fastds:timeouts"] == "incremental" and listed["fastds:transactions_open"] == "non-incremental"
    assert listed["dispatcher:generation"] == "non-incremental" and listed["shmem:used_size"] == "non-incremental"
    assert ask("list_statistics", {"statistics": ["dispatcher:"]}) == {
        "dispatcher:destinations": "non-incremental", "dispatcher:active_destinations": "non-incremental",
        "dispatcher:inactive_destinations": "non-incremental", "dispatcher:probing_destinations": "non-incremental",
        "dispatcher:picks": "incremental", "dispatcher:failovers": "incremental",
        "dispatcher:generation": "non-incremental"}
    assert ask("list_statistics", {"statistics": ["nothing"]}) == {"code": 404, "message": "Statistics Not Found"}
    assert ask("reset_statistics", {"statistics": ["timeouts", "transactions_open"]}) == "OK"
    counters["value"] = 8
    stats = ask("get_statistics", {"statistics": ["timeouts", "transactions_open", "no_route"]})
    assert stats == {"fastds:timeouts": 3, "fastds:transactions_open": 8, "fastds:no_route": 8}  # gauges never reset
    assert ask("reset_statistics", {"statistics": ["nothing"]}) == {"code": 404, "message": "Statistics Not Found"}


def test_event_commands_go_to_the_prober_with_opensips_parameters_and_errors():
    reply, prober = rpc("event_subscribe", ["E_DISPATCHER_STATUS", "udp:127.0.0.1:9000"])
    assert reply["result"] == "OK" and prober.requests == [
        ("event_subscribe", {"event": "E_DISPATCHER_STATUS", "socket": "udp:127.0.0.1:9000", "expire": 3600})]
    reply, _ = rpc("event_subscribe", {"event": "E_DISPATCHER_STATUS", "socket": "udp:127.0.0.1:9000", "expire": -5})
    assert reply["error"] == {"code": -32602, "message": "Invalid params", "data": "Negative expire value"}
    refused = Prober({"ok": False, "code": 400, "error": "Bad parameter value"})
    reply, _ = rpc("event_subscribe", ["E_DISPATCHER_STATUS", "tcp:127.0.0.1:9000", 10], prober=refused)
    assert reply["error"] == {"code": 400, "message": "Bad parameter value"}
    listed = {"Events": [{"name": "E_DISPATCHER_STATUS", "id": 0}]}
    reply, prober = rpc("events_list", prober=Prober({"ok": True, "result": listed}))
    assert reply["result"] == listed and prober.requests == [("events_list", {})]
    reply, prober = rpc("subscribers_list", ["E_DISPATCHER_STATUS"], prober=Prober({"ok": True, "result": {}}))
    assert prober.requests == [("subscribers_list", {"event": "E_DISPATCHER_STATUS"})]

"""E_DISPATCHER_STATUS and its subscriptions, sans-IO with an injected clock (OpenSIPS 3.4
modules/dispatcher for the parameters, evi/event_interface.c for the MI shapes)."""

import orjson
import pytest

from fastds.dispatch.events import (
    BadSubscription,
    Subscriptions,
    UnknownEvent,
    notification,
    status_params,
)
from fastds.dispatch.health import StateChange
from fastds.dispatch.sets import build_sets
from fastds.dispatch.state import DestinationState

ACTIVE, INACTIVE, PROBING = DestinationState.ACTIVE, DestinationState.INACTIVE, DestinationState.PROBING
SETS, _ = build_sets([{"id": 1, "setid": 4, "destination": "sip:10.0.0.1:5060", "state": 0}])
DESTINATION = SETS[4].destinations[0]


def change(old, new, reason="probe timeout"):
    return StateChange(DESTINATION, 0, old, new, reason)


def test_the_event_crosses_active_and_not_active_only_probing_counting_as_inactive():
    assert status_params(change(ACTIVE, PROBING)) == {"group": 4, "address": "sip:10.0.0.1:5060", "status": "inactive",
                                                      "reason": "probe timeout"}
    assert status_params(change(PROBING, ACTIVE, "200 to probe"))["status"] == "active"
    assert status_params(change(INACTIVE, ACTIVE, "API"))["status"] == "active"
    assert status_params(change(PROBING, INACTIVE)) is None and status_params(change(INACTIVE, PROBING)) is None


def test_the_datagram_is_event_datagrams_json_rpc_notification():
    body = orjson.loads(notification(status_params(change(ACTIVE, PROBING))))
    assert body == {"jsonrpc": "2.0", "method": "E_DISPATCHER_STATUS", "params": {
        "group": 4, "address": "sip:10.0.0.1:5060", "status": "inactive", "reason": "probe timeout"}}
    assert "id" not in body  # a notification: nothing is answered


def test_subscriptions_expire_renew_and_unsubscribe():
    subscriptions = Subscriptions()
    subscriptions.subscribe("E_DISPATCHER_STATUS", "udp:127.0.0.1:9000", 10, now=0.0)
    subscriptions.subscribe("E_DISPATCHER_STATUS", "udp:[::1]:9001", 3600, now=0.0)
    assert subscriptions.targets(9.9) == [("127.0.0.1", 9000), ("::1", 9001)]
    assert subscriptions.targets(10.0) == [("::1", 9001)]  # expired
    subscriptions.subscribe("E_DISPATCHER_STATUS", "udp:127.0.0.1:9000", 10, now=20.0)
    subscriptions.subscribe("E_DISPATCHER_STATUS", "udp:127.0.0.1:9000", 100, now=25.0)  # renewed, not doubled
    assert sorted(subscriptions.targets(100.0)) == [("127.0.0.1", 9000), ("::1", 9001)]
    subscriptions.subscribe("E_DISPATCHER_STATUS", "udp:[::1]:9001", 0, now=101.0)  # 0 unsubscribes
    assert subscriptions.targets(101.0) == [("127.0.0.1", 9000)]


@pytest.mark.parametrize("event, socket, expire", [
    ("E_DISPATCHER_STATUS", "tcp:127.0.0.1:9000", 10), ("E_DISPATCHER_STATUS", "udp:gw.example.com:9000", 10),
    ("E_DISPATCHER_STATUS", "udp:127.0.0.1:70000", 10), ("E_DISPATCHER_STATUS", "udp:127.0.0.1:9000", -1),
    ("E_NO_SUCH_EVENT", "udp:127.0.0.1:9000", 10)])
def test_what_fastds_cannot_serve_is_refused(event, socket, expire):
    with pytest.raises(BadSubscription):
        Subscriptions().subscribe(event, socket, expire, now=0.0)


def test_the_mi_listings_have_opensips_shapes():
    subscriptions = Subscriptions()
    assert subscriptions.events_list() == {"Events": [{"name": "E_DISPATCHER_STATUS", "id": 0}]}
    assert subscriptions.subscribers_list(0.0) == {"Events": []}
    subscriptions.subscribe("E_DISPATCHER_STATUS", "udp:127.0.0.1:9000", 60, now=0.0)
    listed = {"name": "E_DISPATCHER_STATUS", "id": 0, "Subscribers": [{"socket": "udp:127.0.0.1:9000", "expire": 60}]}
    assert subscriptions.subscribers_list(1.0) == {"Events": [listed]}
    assert subscriptions.subscribers_list(1.0, "E_DISPATCHER_STATUS") == {"Event": listed}
    assert subscriptions.subscribers_list(1.0, "E_DISPATCHER_STATUS", "udp:127.0.0.1:9000") == {"Event": {
        "name": "E_DISPATCHER_STATUS", "id": 0, "Subscriber": {"socket": "udp:127.0.0.1:9000", "expire": 60}}}
    with pytest.raises(UnknownEvent):
        subscriptions.subscribers_list(1.0, "E_NO_SUCH_EVENT")
    with pytest.raises(LookupError):
        subscriptions.subscribers_list(1.0, "E_DISPATCHER_STATUS", "udp:127.0.0.1:9999")


def test_a_webhooks_queue_is_bounded_the_oldest_dropped_and_counted():
    import collections

    from fastds.procs.events import WEBHOOK_QUEUE, Webhook

    counters = collections.Counter()
    webhook = Webhook("http://127.0.0.1:9/hook", counters)
    for n in range(WEBHOOK_QUEUE + 3):
        webhook.put(b"%d" % n)
    assert len(webhook.waiting) == WEBHOOK_QUEUE and counters["dropped"] == 3
    assert webhook.waiting[0] == b"3" and webhook.waiting[-1] == b"%d" % (WEBHOOK_QUEUE + 2)

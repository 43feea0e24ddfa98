"""Trusted sources: the address table's rows as fastds reads them, and who they let in."""

import ipaddress

import pytest

from fastds.dispatch.trust import AddressRule, BadAddressRow, TrustedSources, address_rules

URI = b"sip:+15550100@192.0.2.10"


def rules(*rows):
    found, problems = address_rules([{"id": i + 1, **row} for i, row in enumerate(rows)])
    assert problems == []
    return found


def test_a_row_takes_opensips_defaults_and_is_masked_to_its_network():
    (rule,) = rules({"ip": "10.1.2.3", "mask": 24})
    assert rule.as_row() == {"id": 1, "grp": 0, "ip": "10.1.2.0", "mask": 24, "port": 0, "proto": "any",
                             "pattern": None, "context_info": None}
    (host,) = rules({"ip": "2001:db8::1"})
    assert host.is_host and host.network.prefixlen == 128


@pytest.mark.parametrize(("row", "column"), [
    ({"ip": "pbx.example.com"}, "ip"), ({"ip": "10.0.0.1", "mask": 33}, "mask"),
    ({"ip": "10.0.0.1", "port": 70000}, "port"), ({"ip": "10.0.0.1", "proto": "sip"}, "proto"),
    ({"ip": "10.0.0.1", "grp": -1}, "grp"), ({"ip": "10.0.0.1", "pattern": "x" * 65}, "pattern"),
])
def test_a_bad_row_names_its_column_and_is_skipped_alone(row, column):
    with pytest.raises(BadAddressRow) as caught:
        AddressRule.from_row(row)
    assert caught.value.column == column
    kept, problems = address_rules([{"id": 7, **row}, {"id": 8, "ip": "10.0.0.9"}])
    assert [r.id for r in kept] == [8] and problems[0].startswith(f"address row id=7: {column} ")


def test_nothing_configured_trusts_everyone():
    trust = TrustedSources([], destination_hosts=["127.0.0.1"])
    assert not trust.enforced and trust.accepts("203.0.113.9", 5060, URI)
    assert not trust.source_trusted("203.0.113.9", 1) and trust.source_trusted("127.0.0.1", 1)  # named ones only


def test_hosts_subnets_ports_and_transports():
    trust = TrustedSources(rules({"ip": "198.51.100.7", "port": 5060}, {"ip": "203.0.113.0", "mask": 28},
                                 {"ip": "192.0.2.99", "proto": "tcp"}, {"ip": "192.0.2.98", "proto": "udp"}))
    assert trust.enforced
    assert trust.accepts("198.51.100.7", 5060, URI) and not trust.accepts("198.51.100.7", 5070, URI)
    assert trust.accepts("203.0.113.15", 40000, URI) and not trust.accepts("203.0.113.16", 40000, URI)
    assert not trust.accepts("192.0.2.99", 5060, URI)  # a TCP row says nothing about UDP traffic
    assert trust.accepts("192.0.2.99", 5060, URI, "tcp") and trust.accepts("198.51.100.7", 5060, URI, "tcp")  # any
    assert trust.accepts("192.0.2.98", 5060, URI) and not trust.accepts("192.0.2.98", 5060, URI, "tcp")
    assert trust.source_trusted("192.0.2.99", 1, "tcp") and not trust.source_trusted("192.0.2.99", 1)
    assert trust.accepts("::ffff:203.0.113.1", 5060, URI)  # as a dual-stack socket reports an IPv4 peer


def test_group_cidrs_and_destinations():
    table = rules({"ip": "198.51.100.7", "grp": 1}, {"ip": "198.51.100.8", "grp": 2})
    trust = TrustedSources(table, group=2, networks=[ipaddress.ip_network("10.0.0.0/8")],
                           destination_hosts=["192.0.2.50"])
    assert not trust.accepts("198.51.100.7", 5060, URI) and trust.accepts("198.51.100.8", 5060, URI)
    assert trust.accepts("10.200.0.1", 5060, URI) and trust.accepts("192.0.2.50", 5090, URI)
    assert TrustedSources(table).accepts("198.51.100.7", 5060, URI)  # group 0: every row


def test_a_pattern_must_match_the_request_uri_but_not_for_the_flood_exemption():
    trust = TrustedSources(rules({"ip": "198.51.100.7", "pattern": "sip:+1555*"}))
    assert trust.accepts("198.51.100.7", 5060, b"sip:+15550100@x")
    assert not trust.accepts("198.51.100.7", 5060, b"sip:+44200@x")
    assert trust.source_trusted("198.51.100.7", 5060) and not trust.source_trusted("198.51.100.8", 5060)

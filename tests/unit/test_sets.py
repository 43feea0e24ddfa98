"""Destination sets from dispatcher rows: validation per row, priority order."""

from fastds.dispatch.sets import ALL_TRANSPORTS, build_sets, tls_name


def row(**fields):
    base = {"id": 1, "setid": 1, "destination": "sip:10.0.0.1:5060", "socket": None, "state": 0,
            "probe_mode": 0, "weight": "1", "priority": 0, "attrs": "", "description": ""}
    base.update(fields)
    return base


def test_rows_as_opensips_writes_them():
    sets, problems = build_sets([row(weight="5", priority=None, probe_mode=None, attrs=None),
                                 row(id=2, destination="sip:gw.example.com;transport=UDP"),
                                 row(id=3, destination="sip:[2001:db8::1]:5080")])
    assert problems == []
    first, second, third = sets[1].destinations
    assert (first.weight, first.priority, first.probe_mode, first.attrs) == (5, 0, 0, "")
    assert (first.host, first.port, first.transport) == ("10.0.0.1", 5060, "udp")
    assert (second.host, second.port, second.transport) == ("gw.example.com", 5060, "udp")
    assert (third.host, third.port, third.transport) == ("2001:db8::1", 5080, "udp")


def test_tcp_and_tls_rows_need_a_listener_of_their_transport_never_downgraded_to_udp():
    rows = [row(id=1), row(id=2, destination="sips:gw.example.com"), row(id=3, destination="sip:10.0.0.5;transport=tcp"),
            row(id=4, destination="sip:10.0.0.6;transport=TLS", attrs="weight=1;tls_name=gw6.example.com")]
    sets, skipped = build_sets(rows)  # UDP only
    problems = [str(skip) for skip in skipped]
    assert [d.id for d in sets[1].destinations] == [1]
    assert [problem.split(" ")[2] for problem in problems] == ["id=2", "id=3", "id=4"]
    assert "needs TLS (sips:) and FASTDS_SIP_LISTEN has no tls: listener" in problems[0]
    assert "needs TCP and FASTDS_SIP_LISTEN has no tcp: listener" in problems[1] and "needs TLS and" in problems[2]
    assert all("refused rather than sent over UDP; row skipped" in problem for problem in problems)
    sets, problems = build_sets(rows, frozenset({"udp", "tcp"}))
    assert [d.id for d in sets[1].destinations] == [1, 3] and len(problems) == 2
    sets, problems = build_sets(rows, ALL_TRANSPORTS)
    assert not problems
    assert [(d.transport, d.port) for d in sets[1].destinations] == [("udp", 5060), ("tls", 5061), ("tcp", 5060),
                                                                      ("tls", 5061)]
    assert [tls_name(d) for d in sets[1].destinations[1::2]] == ["gw.example.com", "gw6.example.com"]


def test_sets_are_ordered_by_descending_priority_stable_for_ties():
    sets, _ = build_sets([row(id=1, priority=1), row(id=2, priority=5), row(id=3, priority=1), row(id=4, priority=5),
                          row(id=5, setid=2)])
    assert [d.id for d in sets[1].destinations] == [2, 4, 1, 3]
    assert [d.id for d in sets[2].destinations] == [5]


def test_a_bad_row_is_reported_by_name_and_skipped_not_the_set():
    sets, skipped = build_sets([
        row(id=1),
        row(id=2, destination="http://10.0.0.2"),
        row(id=3, weight="-4"),
        row(id=4, weight="fs://fs1"),
        row(id=5, state=7),
        row(id=6, probe_mode=3),
        row(id=7, setid=None),
        row(id=8, destination="sip:10.0.0.8;transport=sctp"),
        row(id=9, destination=""),
    ])
    assert [d.id for d in sets[1].destinations] == [1]
    problems = [str(skip) for skip in skipped]
    assert len(problems) == 8 and [skip.id for skip in skipped][:2] == [2, 3]
    assert skipped[3].as_json() == {"id": skipped[3].id, "reason": "state 7 must be one of 0, 1, 2"}
    assert problems[0].startswith("dispatcher row id=2 ")
    assert "'http://10.0.0.2' is a http: URI: expected a sip: or sips: URI with a host; row skipped" in problems[0]
    assert "weight '-4' must be 0 or more" in problems[1]
    assert "weight 'fs://fs1' is not an integer" in problems[2]
    assert "state 7 must be one of 0, 1, 2" in problems[3]
    assert "probe_mode 3 must be one of 0, 1" in problems[4]
    assert "setid is NULL" in problems[5]
    assert "transport 'sctp'" in problems[6]
    assert all(problem.endswith("row skipped") for problem in problems)

"""Destinations by DNS name (fastds/dispatch/dns.py), with answers and the clock given."""

from fastds.dispatch.dns import DnsTable, Question, Target, question_of, target_numbers, targets_of
from fastds.dispatch.sets import build_sets

ROWS = [{"id": 7, "setid": 1, "destination": "sip:gw.example.test", "weight": "2"},
        {"id": 8, "setid": 1, "destination": "sip:127.0.0.1:5999"},
        {"id": 9, "setid": 1, "destination": "sip:edge.example.test:5070;transport=tcp"}]


def load(table: DnsTable):
    sets, skipped = build_sets(ROWS, frozenset({"udp", "tcp"}))
    assert skipped == []
    questions = {d.id: question_of(d, explicit_port=d.id == 9) for d in sets[1].destinations if d.id != 8}
    return questions, table.expand(sets, questions)


def test_the_questions_are_rfc_3263s():
    questions, _ = load(DnsTable(10, 300))
    assert questions[7] == Question("gw.example.test", None, "udp") and questions[7].srv_name == "_sip._udp.gw.example.test"
    assert questions[9] == Question("edge.example.test", 5070, "tcp") and questions[9].srv_name is None
    assert Question("x.test", None, "tls").srv_name == "_sips._tcp.x.test"


def test_srv_targets_become_destinations_the_best_priority_sharing_calls_by_weight():
    table = DnsTable(10, 300)
    questions, _ = load(table)
    table.answered(questions[7], [Target(10, 60, "127.0.0.2", 5062), Target(10, 20, "127.0.0.3", 5063),
                                  Target(20, 0, "127.0.0.4", 5064)], 60, 0.0)
    table.answered(questions[9], [Target(0, 1, "127.0.0.5", 5070)], 60, 0.0)
    _, (sets, skipped, shown) = load(table)
    made = [(d.host, d.port, d.weight, d.transport) for d in sets[1].destinations]
    assert made == [("127.0.0.2", 5062, 120, "udp"), ("127.0.0.3", 5063, 40, "udp"),
                    ("127.0.0.4", 5064, 0, "udp"),  # worse priority: only when no better is up
                    ("127.0.0.1", 5999, 1, "udp"), ("127.0.0.5", 5070, 1, "tcp")]
    ids = [d.id for d in sets[1].destinations]
    assert ids[0] == 7 and ids[3:] == [8, 9] and sorted(targets_of(7, ids)) == sorted(ids[1:3])
    assert all(-(7 * 256 + 255) <= dest_id <= -(7 * 256 + 1) for dest_id in ids[1:3]) and ids[1] != ids[2]
    assert skipped == [] and shown[ids[2]] == {"name": "gw.example.test", "srv": True, "priority": 20,
                                               "weight": 0, "stale": False, "error": None}
    assert all(d.uri == "sip:gw.example.test" for d in sets[1].destinations[:3])


def test_a_name_never_resolved_skips_its_row_and_one_that_stops_keeps_its_last_targets():
    table = DnsTable(10, 300, retry_s=5)
    questions, (sets, skipped, _) = load(table)
    assert [row.id for row in skipped] == [7, 9] and "not looked up yet" in skipped[0].reason
    assert table.failed(questions[7], "NXDOMAIN", 0.0) is True
    _, (_, skipped, _) = load(table)
    assert skipped[0].reason == "could not resolve gw.example.test: NXDOMAIN"
    assert table.answered(questions[7], [Target(0, 1, "127.0.0.2", 5060)], 60, 1.0) is True
    assert table.failed(questions[7], "timed out", 61.0) is True  # news once
    assert table.failed(questions[7], "timed out", 66.0) is False
    _, (sets, skipped, shown) = load(table)
    assert [d.host for d in sets[1].destinations if d.id == 7] == ["127.0.0.2"] and 7 not in [r.id for r in skipped]
    assert shown[7]["stale"] is True and shown[7]["error"] == "timed out"
    assert table.answers[questions[7]].expires == 71.0  # tried again after retry_s
    assert table.answered(questions[7], [Target(0, 1, "127.0.0.2", 5060)], 60, 72.0) is True  # healed: news


def test_ttls_are_held_between_the_floor_and_the_ceiling_and_due_follows_them():
    table = DnsTable(10, 300)
    questions, _ = load(table)
    assert table.due(questions.values(), 0.0) == list(questions.values())
    assert table.answered(questions[7], [Target(0, 1, "127.0.0.2", 5060)], 1, 0.0) is True
    assert table.answered(questions[9], [Target(0, 1, "127.0.0.5", 5070)], 86400, 0.0) is True
    assert (table.answers[questions[7]].expires, table.answers[questions[9]].expires) == (10.0, 300.0)
    assert table.due(questions.values(), 9.9) == [] and table.due(questions.values(), 10.0) == [questions[7]]
    assert table.answered(questions[7], [Target(0, 1, "127.0.0.2", 5060)], 1, 10.0) is False  # the same answer


def test_an_address_keeps_its_id_while_it_stays_in_the_answer_and_every_node_numbers_alike():
    table = DnsTable(10, 300)
    questions, _ = load(table)
    table.answered(questions[7], [Target(0, 1, "127.0.0.2", 5060), Target(0, 1, "127.0.0.3", 5060)], 60, 0.0)
    _, (sets, _, _) = load(table)
    first = {d.host: d.id for d in sets[1].destinations if d.uri == "sip:gw.example.test"}
    assert first["127.0.0.2"] == 7 and first["127.0.0.3"] < 0
    assert table.answered(questions[7], [Target(0, 1, "127.0.0.1", 5060), Target(0, 1, "127.0.0.3", 5060),
                                         Target(0, 1, "127.0.0.4", 5060)], 60, 60.0)
    _, (sets, _, _) = load(table)
    now = {d.host: d.id for d in sets[1].destinations if d.uri == "sip:gw.example.test"}
    assert now["127.0.0.1"] == 7 and now["127.0.0.3"] == first["127.0.0.3"]  # .3 kept its id; the row's went first
    # another node that only ever saw the second answer numbers it the same way
    other = DnsTable(10, 300)
    other.answered(questions[7], [Target(0, 1, "127.0.0.4", 5060), Target(0, 1, "127.0.0.3", 5060),
                                  Target(0, 1, "127.0.0.1", 5060)], 60, 0.0)
    _, (sets, _, _) = load(other)
    assert {d.host: d.id for d in sets[1].destinations if d.uri == "sip:gw.example.test"} == now
    table.answered(questions[9], [Target(0, 1, "127.0.0.5", 5070)], 60, 60.0)
    table.forget_except([questions[9]])  # row 7 was removed from the store
    assert set(table.answers) == {questions[9]}


def test_target_numbers_are_distinct_even_when_the_hashes_collide():
    targets = tuple(Target(0, 1, f"10.0.{n // 250}.{n % 250}", 5060) for n in range(256))
    numbers = target_numbers(targets)
    assert numbers[0] == 0 and sorted(numbers) == list(range(256))  # 255 targets fill every number

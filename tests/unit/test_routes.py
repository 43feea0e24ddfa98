"""Dialplan routes (OpenSIPS dialplan v5 semantics) and route attrs."""

import pytest

from fastds.dispatch.routes import Router, parse_route_attrs
from fastds.dispatch.rules import SelectionRule

DEFAULT = SelectionRule.parse(1, 0, "f")


def rule(id, match_exp, attrs, match_op=1, pr=0, **extra):
    row = {"id": id, "dpid": 0, "pr": pr, "match_op": match_op, "match_exp": match_exp, "match_flags": 0,
           "subst_exp": None, "repl_exp": None, "timerec": None, "disabled": 0, "attrs": attrs}
    row.update(extra)
    return row


def test_attrs_name_the_selection():
    assert parse_route_attrs("set=2;alg=4;flags=FD;max=3") == SelectionRule(2, 4, 1 | 4, 3)
    assert parse_route_attrs(" set = 7 ") == SelectionRule(7, 0, 0, 1000)
    for bad, message in (("alg=1", "no set="), ("set=x", "integers"), ("set=1;alg=12", "unknown algorithm 12"),
                         ("set=1;flags=q", "unknown flag 'q'"), ("set=1;colour=red", "unknown attrs key"),
                         ("set=1;lonely", "not key=value")):
        with pytest.raises(ValueError, match=message):
            parse_route_attrs(bad)


def test_lowest_pr_then_lowest_id_wins_across_string_and_regex_rules():
    router = Router([rule(5, r"^\+44", "set=5", pr=2), rule(3, "+4420", "set=3", match_op=0, pr=2),
                     rule(9, r"^\+", "set=9", pr=1), rule(1, r"^\+4420", "set=1", pr=2)], DEFAULT)
    assert router.route(b"+4420").rule.set_id == 9
    router = Router([rule(5, r"^\+44", "set=5", pr=2), rule(3, "+4420", "set=3", match_op=0, pr=2)], DEFAULT)
    assert router.route(b"+4420").rule.set_id == 3 and router.route(b"+4421").rule.set_id == 5


def test_no_match_and_no_number_take_the_default_route():
    router = Router([rule(1, r"^00", "set=2")], DEFAULT)
    assert router.route(b"123") == router.route(None) and router.route(None).rule is DEFAULT


def test_case_insensitive_disabled_and_translations():
    router = Router([rule(1, "ABC", "set=2", match_op=0, match_flags=1), rule(2, r"^x", "set=3", disabled=1),
                     rule(3, r"^0(\d+)$", "set=4", subst_exp=r"^0(\d+)$", repl_exp=r"+33\1"),
                     rule(4, r"^9", "set=5", repl_exp="112")], DEFAULT)
    assert router.route(b"abc").rule.set_id == 2 and router.route(b"abc").number is None
    assert router.route(b"xyz").rule is DEFAULT
    assert router.route(b"0612").number == b"+33612"
    assert router.route(b"999").number == b"112"


def test_bad_rules_are_reported_and_skipped():
    router = Router([rule(1, "(", "set=1"), rule(2, "a", "set=x"), rule(3, "a", "set=1", timerec="20260101T000000"),
                     rule(4, "a", "set=1", match_op=7), rule(5, "^(a)", "set=1", subst_exp="^(a)", repl_exp=r"\2"),
                     rule(6, "a", "set=6")], DEFAULT)
    assert [line.split(":")[0] for line in router.problems] == [f"dialplan rule id={i}" for i in range(1, 6)]
    assert router.route(b"a").rule.set_id == 6

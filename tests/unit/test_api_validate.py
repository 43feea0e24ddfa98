"""What the API accepts as a destination: every refusal names the field, value and expectation."""

import pytest

from fastds.api.validate import destination_fields
from fastds.errors import FieldError

GOOD = {"setid": 1, "destination": "sip:10.0.0.5:5060"}


def test_defaults_fill_a_new_destination_as_the_opensips_schema_does():
    assert destination_fields(GOOD) == {"setid": 1, "destination": "sip:10.0.0.5:5060", "socket": None, "state": 0,
                                        "probe_mode": 0, "weight": "1", "priority": 0, "attrs": "",
                                        "description": ""}


def test_accepted_spellings():
    row = destination_fields({**GOOD, "setid": "3", "weight": "7", "state": "Probing", "probe_mode": 1,
                              "priority": -2, "socket": "udp:[::1]:5060", "destination": " sip:gw.example.com "})
    assert (row["setid"], row["weight"], row["state"], row["priority"], row["destination"]) == (
        3, "7", 2, -2, "sip:gw.example.com")


@pytest.mark.parametrize("uri", ["sips:gw.example.com", "sip:10.0.0.5;transport=tcp", "sip:10.0.0.5;transport=tls"])
def test_tcp_and_tls_destinations_are_accepted(uri):
    # whether this node can use one (a listener of its transport) is the load's to say, per node
    assert destination_fields({**GOOD, "destination": uri})["destination"] == uri


def test_another_transport_is_refused_saying_why():
    with pytest.raises(FieldError) as caught:
        destination_fields({**GOOD, "destination": "sip:10.0.0.5;transport=sctp"})
    assert caught.value.field == "destination"
    assert caught.value.expected == "transport udp, tcp or tls"


@pytest.mark.parametrize("uri", ["sip:127.0.0.1:99999", "sip:127.0.0.1:0;transport=tcp", "sips:gw.example.com:70000"])
def test_a_port_out_of_range_is_named_as_the_problem(uri):
    with pytest.raises(FieldError) as caught:
        destination_fields({**GOOD, "destination": uri})
    assert (caught.value.field, caught.value.value, caught.value.expected) == ("destination", uri,
                                                                               "a port from 1 to 65535")


def test_an_update_merges_over_the_current_row():
    current = {"id": 4, **destination_fields(GOOD), "weight": "5"}
    row = destination_fields({"description": "new"}, current)
    assert (row["weight"], row["description"], row["setid"]) == ("5", "new", 1)


@pytest.mark.parametrize("body, field", [
    ([1, 2], "body"),
    ({**GOOD, "colour": "red"}, "colour"),
    ({**GOOD, "id": 9}, "id"),
    ({"destination": "sip:10.0.0.5"}, "setid"),
    ({"setid": 1}, "destination"),
    ({**GOOD, "setid": -1}, "setid"),
    ({**GOOD, "setid": True}, "setid"),
    ({**GOOD, "setid": 2**31}, "setid"),
    ({**GOOD, "setid": 1.5}, "setid"),
    ({**GOOD, "destination": "http://example.com"}, "destination"),
    ({**GOOD, "destination": "tel:+15551234"}, "destination"),
    ({**GOOD, "destination": "sip:10.0.0.5;transport=sctp"}, "destination"),
    ({**GOOD, "destination": "sip:" + "a" * 190}, "destination"),
    ({**GOOD, "destination": 5}, "destination"),
    ({**GOOD, "weight": "abc"}, "weight"),
    ({**GOOD, "weight": -1}, "weight"),
    ({**GOOD, "weight": "fs://pbx"}, "weight"),
    ({**GOOD, "state": 3}, "state"),
    ({**GOOD, "state": "dead"}, "state"),
    ({**GOOD, "probe_mode": 2}, "probe_mode"),
    ({**GOOD, "priority": "high"}, "priority"),
    ({**GOOD, "socket": "10.0.0.1:5060"}, "socket"),
    ({**GOOD, "socket": 7}, "socket"),
    ({**GOOD, "attrs": "x" * 129}, "attrs"),
    ({**GOOD, "description": "x" * 65}, "description"),
])
def test_refusals_name_the_field_the_value_and_what_was_expected(body, field):
    with pytest.raises(FieldError) as caught:
        destination_fields(body)
    error = caught.value
    assert error.field == field
    assert error.as_json()["field"] == field and error.as_json()["expected"]
    assert str(error).startswith(f"{field}: ") and "expected" in str(error)


def test_address_rows_are_validated_and_completed_before_a_write():
    from fastds.api.validate import address_fields

    assert address_fields({"ip": "198.51.100.7"}) == {"grp": 0, "ip": "198.51.100.7", "mask": 32, "port": 0,
                                                      "proto": "any", "pattern": None, "context_info": None}
    current = {"id": 4, "grp": 3, "ip": "10.0.0.0", "mask": 8, "port": 0, "proto": "udp", "pattern": None,
               "context_info": "x"}
    assert address_fields({"port": 5060}, current)["port"] == 5060
    for body, field in (({}, "ip"), ({"ip": "pbx.example.com"}, "ip"), ({"ip": "10.0.0.1", "mask": 40}, "mask"),
                        ({"ip": "10.0.0.1", "id": 3}, "id"), ({"ip": "10.0.0.1", "proto": "smtp"}, "proto"), ([], "body")):
        with pytest.raises(FieldError) as caught:
            address_fields(body)
        assert caught.value.field == field

"""Numbers copied across the Python/Cython boundary agree with their one definition."""

import pytest

from fastds._ext import dshash
from fastds.dispatch import proxy
from fastds.dispatch.state import DestinationState
from fastds.sip import scan


def test_the_cython_state_codes_are_the_destination_states():
    assert (dshash.STATE_ACTIVE, dshash.STATE_INACTIVE, dshash.STATE_PROBING) == tuple(DestinationState)


@pytest.mark.parametrize("method, constant", [(b"INVITE", proxy.M_INVITE), (b"ACK", proxy.M_ACK),
                                              (b"CANCEL", proxy.M_CANCEL), (b"OPTIONS", proxy.M_OPTIONS)])
def test_the_proxys_method_ids_are_the_scanners(method, constant):
    request = (b"%s sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
               b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 %s\r\n"
               b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n" % (method, method))
    assert scan(request).method_id == constant


def test_states_read_as_operators_type_them():
    assert [DestinationState.parse(text) for text in ("Active", " inactive", "PROBING", "1")] == [
        DestinationState.ACTIVE, DestinationState.INACTIVE, DestinationState.PROBING, DestinationState.INACTIVE]
    assert [state.mi_name for state in DestinationState] == ["Active", "Inactive", "Probing"]
    with pytest.raises(ValueError, match="'dead' is not a state"):
        DestinationState.parse("dead")
    with pytest.raises(ValueError):
        DestinationState.parse("3")

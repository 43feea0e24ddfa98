"""The transaction state machines held against RFC 3261 figures 5-8 (and RFC 6026's Accepted):
for each state a transaction of the proxy core can be in, each input of its figure -- a timer,
a response from the next hop, the final the proxy decides, a retransmitted request or ACK from
the caller -- gives the figure's transition and sends what the figure sends. One test per
(state, input) pair, driven through receive() and timer() with an injected clock.

Where fastds acts as a proxy rather than a bare transaction layer it says so: a timeout is
"inform TU" (fail over to the next destination), a ringing INVITE branch that times out is
CANCELled and kept Completed to ACK a late final (§16.8, tm's behaviour).
"""

import pytest

from fastds.dispatch.txn import State
from fastds.sip import scan
from tests.unit.test_proxy import CALLER, D1, D2, FR, FR_INV, T1, T4, answer, make_proxy, only, request, sends

T2 = 4.0  # ProxyConfig's default
MESSAGE = dict(method=b"MESSAGE", branch=b"z9hG4bK-m1")


def client(proxy, method=b"INVITE"):
    """The client transaction of `method` towards D1, None once it ended."""
    found = [c for c in proxy.clients.values() if c.method == method and c.addr == D1]
    assert len(found) <= 1
    return found[0] if found else None


def server(proxy):
    """The one server transaction, None once it ended."""
    assert len(proxy.servers) <= 1
    return next(iter(proxy.servers.values()), None)


def methods(actions, to):
    """Request methods and response codes sent to `to`, in order."""
    return [(m.method if m.is_request else m.status_code) for m in (scan(s.data) for s in sends(actions, to))]


class Call:
    """A proxy, its clock and the request forwarded to D1."""

    def __init__(self, **options):
        self.proxy, self.now = make_proxy(), 0.0
        self.options = options
        actions = self.proxy.receive(request(**options), CALLER, self.now)
        self.forwarded = only(actions, D1)

    def answer(self, code, to=D1, at=None):
        self.now = self.now if at is None else at
        return self.proxy.receive(answer(self.forwarded, code), to, self.now)

    def at(self, when):
        self.now = when
        return self.proxy.timer(when)

    def caller(self, **options):
        return self.proxy.receive(request(**{**self.options, **options}), CALLER, self.now)


# -- figure 5: the INVITE client transaction ---------------------------------------------------


def test_fig5_calling_timer_a_resends_the_invite():
    call = Call()
    assert methods(call.at(T1), D1) == [b"INVITE"] and client(call.proxy).state == State.CALLING
    assert methods(call.at(3 * T1), D1) == [b"INVITE"]  # doubling: 2*T1 later


def test_fig5_calling_timer_b_ends_it_and_informs_the_tu():
    call = Call()
    actions = call.at(FR)  # Timer A ran on the way
    assert client(call.proxy) is None and methods(actions, D2) == [b"INVITE"]  # failover


def test_fig5_calling_1xx_goes_to_proceeding_and_up():
    call = Call()
    assert methods(call.answer(180), CALLER) == [180] and client(call.proxy).state == State.PROCEEDING


@pytest.mark.parametrize("rang", [False, True], ids=["calling", "proceeding"])
def test_fig5_2xx_terminates_and_goes_up(rang):
    call = Call()
    if rang:
        call.answer(180)
    assert methods(call.answer(200), CALLER) == [200] and client(call.proxy) is None


@pytest.mark.parametrize("rang", [False, True], ids=["calling", "proceeding"])
def test_fig5_300_699_completes_with_an_ack_and_goes_up(rang):
    call = Call()
    if rang:
        call.answer(180)
    actions = call.answer(603)
    assert methods(actions, D1) == [b"ACK"] and methods(actions, CALLER) == [603]
    assert client(call.proxy).state == State.COMPLETED


def test_fig5_proceeding_stops_timer_a():
    call = Call()
    call.answer(180)
    assert methods(call.at(T1), D1) == [] and methods(call.at(4 * T1), D1) == []


def test_fig5_proceeding_1xx_goes_up():
    call = Call()
    call.answer(180)
    assert methods(call.answer(183), CALLER) == [183] and client(call.proxy).state == State.PROCEEDING


def test_fig5_proceeding_timer_b_fr_inv_cancels_the_branch_and_informs_the_tu():
    call = Call()
    call.answer(180)
    actions = call.at(FR_INV)
    assert methods(actions, D1) == [b"CANCEL"] and methods(actions, D2) == [b"INVITE"]
    assert client(call.proxy).state == State.COMPLETED  # a late final is ACKed, never relayed


def test_fig5_completed_300_699_retransmitted_is_acked_again_not_relayed():
    call = Call()
    call.answer(486)
    actions = call.answer(486, at=1.0)
    assert methods(actions, D1) == [b"ACK"] and methods(actions, CALLER) == []
    assert client(call.proxy).state == State.COMPLETED


def test_fig5_completed_timer_d_terminates():
    call = Call()
    call.answer(486)
    call.at(31.0)
    assert client(call.proxy) is not None
    call.at(32.1)  # Timer D: 32 s over UDP, on the 100 ms cleanup tick
    assert client(call.proxy) is None


# -- figure 6: the non-INVITE client transaction -----------------------------------------------


def test_fig6_trying_timer_e_resends_doubling():
    call = Call(**MESSAGE)
    assert methods(call.at(T1), D1) == [b"MESSAGE"] and client(call.proxy, b"MESSAGE").state == State.TRYING
    assert methods(call.at(3 * T1), D1) == [b"MESSAGE"]


def test_fig6_trying_timer_f_ends_it_and_informs_the_tu():
    call = Call(**MESSAGE)
    actions = call.at(FR)
    assert client(call.proxy, b"MESSAGE") is None and methods(actions, D2) == [b"MESSAGE"]


def test_fig6_trying_1xx_goes_to_proceeding():
    call = Call(**MESSAGE)
    call.answer(180)
    assert client(call.proxy, b"MESSAGE").state == State.PROCEEDING


@pytest.mark.parametrize("code", [200, 486])
def test_fig6_trying_200_699_completes_and_goes_up(code):
    call = Call(**MESSAGE)
    assert methods(call.answer(code), CALLER) == [code]
    assert client(call.proxy, b"MESSAGE").state == State.COMPLETED


def test_fig6_proceeding_timer_e_resends_every_t2():
    call = Call(**MESSAGE)
    call.answer(180, at=0.1)
    assert methods(call.at(T1), D1) == [b"MESSAGE"]  # the timer started before the 1xx
    assert methods(call.at(T1 + T2 - 0.01), D1) == [] and methods(call.at(T1 + T2), D1) == [b"MESSAGE"]


def test_fig6_proceeding_200_699_completes():
    call = Call(**MESSAGE)
    call.answer(180)
    assert methods(call.answer(200), CALLER) == [200]
    assert client(call.proxy, b"MESSAGE").state == State.COMPLETED


def test_fig6_proceeding_timer_f_ends_it():
    call = Call(**MESSAGE)
    call.answer(180)
    call.at(FR)
    assert client(call.proxy, b"MESSAGE") is None


def test_fig6_completed_absorbs_retransmitted_finals_until_timer_k():
    call = Call(**MESSAGE)
    call.answer(200)
    assert call.answer(200, at=1.0) == []  # absorbed: not relayed a second time
    call.at(T4 - 0.1)
    assert client(call.proxy, b"MESSAGE") is not None
    call.at(T4 + 0.1)  # Timer K: T4 over UDP, on the cleanup tick
    assert client(call.proxy, b"MESSAGE") is None


# -- figure 7 and RFC 6026: the INVITE server transaction --------------------------------------


def test_fig7_proceeding_request_retransmitted_resends_the_last_provisional():
    call = Call()
    assert methods(call.caller(), CALLER) == [100]
    call.answer(180)
    assert methods(call.caller(), CALLER) == [180] and server(call.proxy).state == State.PROCEEDING


def test_fig7_proceeding_2xx_from_the_tu_goes_to_accepted():
    call = Call()
    assert methods(call.answer(200), CALLER) == [200] and server(call.proxy).state == State.ACCEPTED


def test_fig7_proceeding_300_699_from_the_tu_completes():
    call = Call()
    assert methods(call.answer(486), CALLER) == [486] and server(call.proxy).state == State.COMPLETED


def test_fig7_completed_timer_g_resends_the_final_doubling_to_t2():
    call = Call()
    call.answer(486)
    resent = [when for when in (T1, 3 * T1, 7 * T1, 7 * T1 + T2) if methods(call.at(when), CALLER) == [486]]
    assert resent == [T1, 3 * T1, 7 * T1, 7 * T1 + T2]


def test_fig7_completed_request_retransmitted_resends_the_final():
    call = Call()
    call.answer(486)
    assert methods(call.caller(), CALLER) == [486]


def test_fig7_completed_ack_confirms_and_stops_timer_g():
    call = Call()
    call.answer(486)
    assert call.caller(method=b"ACK", to_tag=b"callee1", cseq_method=b"ACK") == []
    assert server(call.proxy).state == State.CONFIRMED and methods(call.at(T1), CALLER) == []


def test_fig7_completed_timer_h_ends_it_without_an_ack():
    call = Call()
    call.answer(486)
    call.at(64 * T1 - 0.1)
    assert server(call.proxy) is not None
    call.at(64 * T1 + 0.1)
    assert server(call.proxy) is None


def test_fig7_confirmed_absorbs_acks_until_timer_i():
    call = Call()
    call.answer(486)
    ack = dict(method=b"ACK", to_tag=b"callee1", cseq_method=b"ACK")
    call.caller(**ack)
    call.now = 1.0
    assert call.caller(**ack) == [] and server(call.proxy).state == State.CONFIRMED
    call.at(T4 - 0.1)
    assert server(call.proxy) is not None
    call.at(T4 + 0.1)
    assert server(call.proxy) is None


def test_rfc6026_accepted_absorbs_retransmitted_invites_until_timer_l():
    call = Call()
    call.answer(200)
    assert call.caller() == [] and server(call.proxy).state == State.ACCEPTED  # not resent: end to end
    call.at(64 * T1 - 0.1)
    assert server(call.proxy) is not None
    call.at(64 * T1 + 0.1)
    assert server(call.proxy) is None


# -- figure 8: the non-INVITE server transaction -----------------------------------------------


def test_fig8_trying_request_retransmitted_sends_nothing():
    call = Call(**MESSAGE)
    assert call.caller() == [] and server(call.proxy).state == State.PROCEEDING


def test_fig8_proceeding_request_retransmitted_resends_the_provisional():
    call = Call(**MESSAGE)
    call.answer(180)
    assert methods(call.caller(), CALLER) == [180]


def test_fig8_final_from_the_tu_completes_and_retransmissions_get_it_again():
    call = Call(**MESSAGE)
    assert methods(call.answer(200), CALLER) == [200] and server(call.proxy).state == State.COMPLETED
    assert methods(call.caller(), CALLER) == [200]


def test_fig8_completed_timer_j_ends_it():
    call = Call(**MESSAGE)
    call.answer(200)
    call.at(64 * T1 - 0.1)
    assert server(call.proxy) is not None
    call.at(64 * T1 + 0.1)
    assert server(call.proxy) is None

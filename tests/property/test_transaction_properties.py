"""Hypothesis: whatever order retransmissions, CANCEL, ACK, provisional and final responses
and timeouts come in, over UDP or from a caller on a TCP connection, the proxy core (injected
clock) decides the INVITE's final response once -- every non-2xx final it sends upstream is
the same bytes (Timer G and absorbed retransmissions resend it), and nothing but 2xx follows
a 2xx final -- and once 64*T1 + FR-INV and Timer D have passed, no transaction and no timer
is left."""

from hypothesis import given, settings
from hypothesis import strategies as st

from fastds.dispatch.txn import Send
from fastds.sip import scan
from tests.unit.test_proxy import CALLER, D1, D2, FR_INV, T1, TCP_CALLER, answer, request, stream_proxy

CODES = (100, 180, 183, 200, 408, 486, 487, 500, 503, 603)
EVENTS = st.one_of(
    st.tuples(st.just("retransmit")),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("ack")),
    st.tuples(st.just("answer"), st.sampled_from(CODES)),
    st.tuples(st.just("answer again")),  # the branch's last response, retransmitted
    st.tuples(st.just("wait"), st.sampled_from((0.1, T1, 2 * T1, 4.0, 5.0, 32.0, FR_INV))),
)


def upstream_finals(actions, caller) -> list[tuple[int, bytes]]:
    finals = []
    for action in actions:
        if isinstance(action, Send) and action.addr == caller:
            message = scan(action.data)
            if not message.is_request and message.cseq_method == b"INVITE" and message.status_code >= 200:
                finals.append((message.status_code, action.data))
    return finals


@settings(max_examples=300, deadline=None)
@given(events=st.lists(EVENTS, max_size=25), stream=st.booleans())
def test_one_final_decision_and_nothing_left_behind(events, stream):
    proxy = stream_proxy()  # takes callers over UDP and TCP alike
    caller = TCP_CALLER if stream else CALLER
    now = 0.0
    invite = request()
    sent_upstream = []
    branch = None  # (destination, the INVITE forwarded to it)
    last_answer = None
    acked = False

    def run(actions):
        nonlocal branch
        sent_upstream.extend(upstream_finals(actions, caller))
        for action in actions:
            if isinstance(action, Send) and action.addr in (D1, D2):
                forwarded = scan(action.data)
                if forwarded.is_request and forwarded.method == b"INVITE":
                    branch = (action.addr, action.data)

    run(proxy.receive(invite, caller, now))
    for event in events:
        kind = event[0]
        if kind == "retransmit" and not stream and now < 64 * T1 and not acked:
            # over TCP the caller never retransmits, over UDP not past its Timer B, nor once it
            # had a final (§17.1.1.2)
            run(proxy.receive(invite, caller, now))
        elif kind == "cancel":
            run(proxy.receive(request(b"CANCEL"), caller, now))
        elif kind == "ack":
            acked = True
            run(proxy.receive(request(b"ACK", to_tag=b"callee1"), caller, now))
        elif kind == "answer" and branch is not None:
            last_answer = (branch[0], answer(branch[1], event[1]))
            run(proxy.receive(last_answer[1], last_answer[0], now))
        elif kind == "answer again" and last_answer is not None:
            run(proxy.receive(last_answer[1], last_answer[0], now))
        elif kind == "wait":
            now += event[1]
            run(proxy.timer(now))
    for _ in range(4):  # FR-INV, then the CANCELled branch's Timer D, then Timers H/L: all end
        now += 64 * T1 + FR_INV
        run(proxy.timer(now))

    assert sent_upstream, "the INVITE never got a final response"
    non_2xx = {data for code, data in sent_upstream if code >= 300}
    assert len(non_2xx) <= 1, sorted(non_2xx)
    if sent_upstream[0][0] < 300:  # the transaction's final was a 2xx: nothing else follows it
        assert all(code < 300 for code, _ in sent_upstream), sent_upstream
    # (a 2xx after a 487 is the CANCEL race: a branch that answered before it heard the CANCEL;
    # the 2xx must reach the caller, RFC 3261 §16.7 step 10, and the 487 keeps its Timer G)
    assert not proxy.servers and not proxy.clients and not proxy.stream_clients
    assert len(proxy.timers) == 0 and proxy.next_deadline() is None

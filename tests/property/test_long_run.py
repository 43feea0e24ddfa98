"""A long run through the sans-IO proxy core with an injected clock: 200,000 whole calls at
1,000 calls/s of simulated time leave the transaction tables and the memory at the size
they reached in steady state (timers end what they keep; nothing accumulates), and make no
reference cycles at all (a worker never runs a full collection, fastds/procs/worker.py)."""

import gc
import sys

from bench.micro.call import make_proxy, one_call_without_timers

CALLS, RATE = 200_000, 1000.0


def test_200000_calls_leave_the_tables_and_memory_at_their_steady_size():
    proxy = make_proxy()
    samples = {}
    gc.collect()
    gc.disable()  # so that any cycle the core makes is left for the collections below to find
    try:
        for n in range(CALLS):
            now = n / RATE
            one_call_without_timers(proxy, n, now)
            proxy.timer(now)
            if n + 1 in (150_000, CALLS):  # past 120 s: the cancelled FR-INV entries are steady too
                assert gc.collect() == 0  # nothing unreachable: no reference cycles
                samples[n + 1] = (len(proxy.servers), len(proxy.clients), len(proxy.timers), sys.getallocatedblocks())
    finally:
        gc.enable()
    (servers, clients, timers, blocks), (servers_end, clients_end, timers_end, blocks_end) = samples.values()
    # steady state: INVITE (Timer L) and BYE (Timer J) server transactions of the last 32 s,
    # BYE client transactions of the last T4 (Timer K: their 200 came, figure 6)
    assert 2 * 32 * RATE * 0.95 <= servers_end <= 2 * 32 * RATE * 1.05 and abs(servers_end - servers) <= 4
    assert 5 * RATE * 0.95 <= clients_end <= 5 * RATE * 1.05 and abs(clients_end - clients) <= 2
    assert abs(timers_end - timers) <= 8
    assert abs(blocks_end - blocks) / blocks < 0.02, (blocks, blocks_end)

"""Writes tests/corpus/hash_vectors.json: golden selection results of this release.

Run it ONLY when a change of routing is intended and announced (existing users' calls
would move to other destinations): `python -m tests.corpus.make_hash_vectors`.
tests/unit/test_hash_vectors.py checks every release against the file.
"""

import itertools
import json
from pathlib import Path

from fastds._ext import dshash
from fastds.sip import scan

OUT = Path(__file__).with_name("hash_vectors.json")
MESSAGES = ["rfc4475/wsinv.dat", "rfc4475/esc01.dat", "rfc4475/intmeth.dat", "rfc5118/ipv6-good.dat",
            "fastds/compact_forms.sip", "fastds/proxy_auth.sip", "fastds/ipv6_hosts.sip"]
TEMPLATE = "$fU@$ci|$td|$si"


def table(weights, states):
    t = dshash.SetTable(weights, [b"sip:dst%d.example.com:5060" % i for i in range(len(weights))])
    for i, state in enumerate(states):
        t.set_state(i, state)
    for i in range(len(weights)):
        t.set_load(i, (i * 7) % 5)
        t.set_rtt(i, float((i * 13) % 11))
    return t


def selection_cases():
    layouts = [([1, 1, 1], [0, 0, 0]), ([1, 2, 7], [0, 0, 0]), ([1, 2, 7], [0, 0, 2]), ([0, 0, 0, 0], [0, 1, 0, 0]),
               ([5, 0, 3, 1, 1], [2, 0, 0, 1, 0]), ([10] * 12, [0, 2] * 6)]
    keys = [b"", b"1-3571@127.0.0.1", b"+14155550123@127.0.0.1", b"alice", b"\x00\xff binary"]
    flag_sets = [0, dshash.FLAG_FAILOVER, dshash.FLAG_FAILOVER | dshash.FLAG_DEFAULT,
                 dshash.FLAG_CONSISTENT, dshash.FLAG_FAILOVER | dshash.FLAG_CONSISTENT | dshash.FLAG_DEFAULT]
    for (weights, states), key, flags in itertools.product(layouts, keys, flag_sets):
        for alg, max_results in ((0, 1000), (3, 2)):
            yield {"alg": alg, "flags": flags, "key": key.hex(), "weights": weights, "states": states,
                   "max_results": max_results,
                   "expected": dshash.select_key(table(weights, states), key, alg, flags, max_results)}
    for (weights, states), alg in itertools.product(layouts, (4, 8, 9, 10)):
        yield {"alg": alg, "flags": dshash.FLAG_FAILOVER, "key": None, "weights": weights, "states": states,
               "max_results": 1000,
               "expected": dshash.select_key(table(weights, states), None, alg, dshash.FLAG_FAILOVER, 1000)}


def key_cases():
    from fastds.dispatch.keys import compile_key_template

    template = dshash.KeyTemplate(compile_key_template(TEMPLATE))
    corpus = Path(__file__).parent
    for name in MESSAGES:
        message = scan((corpus / name).read_bytes())
        for alg, flags in ((0, 0), (1, 0), (1, dshash.FLAG_USER_ONLY), (2, 0), (3, 0), (3, dshash.FLAG_USER_ONLY),
                           (5, 0), (7, 0)):
            key = dshash.key_of(message, alg, flags, template, b"192.0.2.1")
            yield {"message": name, "alg": alg, "flags": flags, "key": None if key is None else key.hex()}


if __name__ == "__main__":
    OUT.write_text(json.dumps({"template": TEMPLATE, "source_ip": "192.0.2.1", "selections": list(selection_cases()),
                               "keys": list(key_cases())}, indent=0) + "\n")
    print(f"wrote {OUT}")

"""Golden selection vectors: a release never silently re-routes existing users.

tests/corpus/hash_vectors.json was written by tests/corpus/make_hash_vectors.py; a
difference here means calls would land on other destinations after an upgrade.
"""

import json
from pathlib import Path

import pytest

from fastds._ext import dshash
from fastds.dispatch.keys import compile_key_template
from fastds.sip import scan
from tests.corpus.make_hash_vectors import table

CORPUS = Path(__file__).parents[1] / "corpus"
VECTORS = json.loads((CORPUS / "hash_vectors.json").read_text())


def test_there_are_vectors_for_every_algorithm_that_is_not_random():
    assert {case["alg"] for case in VECTORS["selections"]} == {0, 3, 4, 8, 9, 10}
    assert {case["alg"] for case in VECTORS["keys"]} == {0, 1, 2, 3, 5, 7}
    assert len(VECTORS["selections"]) > 300


@pytest.mark.parametrize("case", VECTORS["selections"], ids=lambda c: f"alg{c['alg']}-f{c['flags']}")
def test_selection_vector(case):
    key = None if case["key"] is None else bytes.fromhex(case["key"])
    got = dshash.select_key(table(case["weights"], case["states"]), key, case["alg"], case["flags"], case["max_results"])
    assert got == case["expected"]


def test_key_vectors():
    template = dshash.KeyTemplate(compile_key_template(VECTORS["template"]))
    source_ip = VECTORS["source_ip"].encode()
    for case in VECTORS["keys"]:
        message = scan((CORPUS / case["message"]).read_bytes())
        key = dshash.key_of(message, case["alg"], case["flags"], template, source_ip)
        assert (None if key is None else key.hex()) == case["key"], case

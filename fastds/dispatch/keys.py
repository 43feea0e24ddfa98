"""Hash key templates of algorithm 7 (FASTDS_HASH_KEY, e.g. "$fU@$ci").

Owns the template grammar: OpenSIPS-style pseudo-variables, everything else literal.
Pure Python (config.py validates the variable with it before any extension loads); the
part numbers are the ones ext/dshash.pyx evaluates (a unit test keeps them equal).
"""

from __future__ import annotations

import re

LITERAL, FROM_USER, FROM_HOST, TO_USER, TO_HOST, RURI_USER, RURI_HOST, CALL_ID, FROM_TAG, SOURCE_IP, AUTH_USER = range(11)

VARIABLES = {
    "$fU": FROM_USER, "$fd": FROM_HOST, "$tU": TO_USER, "$td": TO_HOST, "$rU": RURI_USER, "$rd": RURI_HOST,
    "$ci": CALL_ID, "$ft": FROM_TAG, "$si": SOURCE_IP, "$au": AUTH_USER,
}
_TOKEN = re.compile(r"\$\w{2}")


def compile_key_template(template: str) -> tuple[tuple[int, bytes], ...]:
    """"$fU@$ci" -> ((FROM_USER, b""), (LITERAL, b"@"), (CALL_ID, b"")); ValueError naming
    an unknown variable."""
    if not template:
        raise ValueError("an empty key template hashes nothing")
    parts: list[tuple[int, bytes]] = []
    position = 0
    for match in _TOKEN.finditer(template):
        if match.start() > position:
            parts.append((LITERAL, template[position:match.start()].encode()))
        name = match.group()
        if name not in VARIABLES:
            raise ValueError(f"unknown variable {name} (known: {', '.join(VARIABLES)})")
        parts.append((VARIABLES[name], b""))
        position = match.end()
    if position < len(template):
        parts.append((LITERAL, template[position:].encode()))
    if all(kind == LITERAL for kind, _ in parts):
        raise ValueError("the template names no variable, so every call would hash alike")
    return tuple(parts)

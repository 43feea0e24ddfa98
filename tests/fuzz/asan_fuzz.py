"""Memory-safety fuzzing of the scanner under AddressSanitizer (not collected by pytest).

The property tests check the scanner's contract; this checks that it never reads outside
the message. Build an ASan copy and run it with every bytes object its own allocation:

    cp -r . /tmp/fds-asan && cd /tmp/fds-asan && rm -f fastds/_ext/*.so
    CFLAGS="-fsanitize=address -fno-omit-frame-pointer -O1 -g" LDFLAGS=-fsanitize=address \\
        python setup.py build_ext --inplace
    PYTHONMALLOC=malloc LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \\
        python tests/fuzz/asan_fuzz.py SEED SECONDS

Bounded by SECONDS; prints how many mutated messages were tried and how many scanned.
"""

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, ".")

from fastds.errors import SipParseError  # noqa: E402
from fastds.sip import forward_request, forward_response, scan  # noqa: E402

SPECIAL = [b"\r\n", b"\r\n ", b",", b";", b"<", b">", b'"', b"\\", b"\x00", b"[", b"]", b":", b"%", b"@", b"="]


def mutate(rnd: random.Random, data: bytearray) -> bytes:
    for _ in range(rnd.randint(1, 10)):
        op = rnd.random()
        at = rnd.randrange(len(data) + 1)
        if op < 0.3 and data:
            data[min(at, len(data) - 1)] = rnd.randrange(256)
        elif op < 0.5:
            data[at:at] = rnd.choice(SPECIAL)
        elif op < 0.7:
            del data[at:at + rnd.randint(1, 40)]
        elif op < 0.8:
            del data[at:]
        else:
            data[at:at] = rnd.randbytes(rnd.randint(1, 8))
    return bytes(data)


def exercise(data: bytes) -> bool:
    try:
        message = scan(data)
    except SipParseError:
        return False
    message.headers(), message.vias, message.routes, message.contacts, message.ruri
    message.uri_of("from"), message.uri_of("to")
    if message.is_request and message.max_forwards != 0:
        scan(forward_request(message, transport=b"UDP", sent_by=b"127.0.0.1:1", branch=b"z9hG4bKx",
                             record_route=b"sip:x;lr"))
    elif not message.is_request and len(message.vias) > 1:
        scan(forward_response(message))
    return True


def main(seed: int, seconds: float) -> None:
    corpus = Path("tests/corpus")
    seeds = [path.read_bytes() for pattern in ("*.dat", "*.sip") for path in sorted(corpus.rglob(pattern))]
    rnd = random.Random(seed)
    deadline = time.monotonic() + seconds
    tried = scanned = 0
    while time.monotonic() < deadline:
        tried += 1
        scanned += exercise(mutate(rnd, bytearray(rnd.choice(seeds))))
    print(f"messages {tried} scanned {scanned}")


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))

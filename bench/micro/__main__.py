"""`python -m bench.micro`: every micro-benchmark (SIP scan/rewrite, selection, a whole call, memory per transaction,
datagram IO and the hand-off)."""

from bench.micro import call, io, memory, selection, sip

sip.main()
print()
selection.main()
print()
call.main()
print()
memory.main()
print()
io.main()

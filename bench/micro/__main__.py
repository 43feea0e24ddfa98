"""`python -m bench.micro`: every micro-benchmark (SIP scan/rewrite, selection, a whole call, memory per transaction)."""

from bench.micro import call, memory, selection, sip

sip.main()
print()
selection.main()
print()
call.main()
print()
memory.main()

"""`python -m bench.micro`: every micro-benchmark (SIP scan/rewrite, selection, a whole call)."""

from bench.micro import call, selection, sip

sip.main()
print()
selection.main()
print()
call.main()

"""`python -m bench.micro`: every micro-benchmark table (SIP scan/rewrite, selection)."""

from bench.micro import selection, sip

sip.main()
print()
selection.main()

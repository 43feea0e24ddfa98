"""`python -m bench.micro`: the micro-benchmark tables (see bench/micro/sip.py)."""

from bench.micro.sip import main

main()

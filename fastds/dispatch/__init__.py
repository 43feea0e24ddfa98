"""Sans-IO routing: destination sets, selection rules, key templates and the selector.

No sockets, no clock, no environment: rows and messages in, ordered destinations out.
"""

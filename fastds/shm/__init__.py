"""Shared memory between the prober (the only writer of states) and the workers."""

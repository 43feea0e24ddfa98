"""Shared memory between the prober (the only writer of topology and states), the workers
(which add to per-destination counters and write their own counters row) and the API (reads)."""

"""The management interface served by the API process: JSON API, /mi, /metrics, web panel.

Nothing here writes shared memory or talks to SIP: reads come from the shared table,
writes go to the store, state changes and reloads are asked of the prober.
"""

"""Processes: compose settings, store, selection, proxy and sockets. Nothing imports procs/."""

"""Processes: compose settings, store, selection, proxy and sockets. Nothing imports procs/.

A child that cannot start (port taken, store unreadable, shared memory of another
layout) exits with EXIT_BOOT_FAILURE, and the master halts instead of respawning it.
"""

EXIT_BOOT_FAILURE = 3

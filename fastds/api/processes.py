"""CPU seconds and resident memory of fastds's processes, read from Linux's /proc.

Owns naming the processes (master, prober, api, worker N) and reading what the kernel
counts for each: user + system CPU seconds (/proc/PID/stat) and the resident set
(/proc/PID/statm). A process that is gone between the listing and the read is left out.
"""

from __future__ import annotations

import dataclasses
import os

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclasses.dataclass(frozen=True)
class ProcessUsage:
    name: str   # master, prober, api, worker
    index: str  # the worker's number; "" for the others
    pid: int
    cpu_s: float
    rss_bytes: int

    def as_json(self) -> dict:
        return {"process": self.name, "worker": self.index, "pid": self.pid, "cpu_s": round(self.cpu_s, 2),
                "rss_bytes": self.rss_bytes}


def usage(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, resident bytes) of `pid`, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat, open(f"/proc/{pid}/statm", "rb") as statm:
            fields = stat.read().rpartition(b")")[2].split()  # after the command, which may hold spaces
            resident_pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    # fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S, resident_pages * _PAGE_BYTES


def processes(worker_pids: list[int], prober_pid: int | None) -> list[ProcessUsage]:
    """The node's processes as this API process sees them (its parent is the master)."""
    named = [("master", "", os.getppid()), ("api", "", os.getpid())]
    if prober_pid:
        named.append(("prober", "", prober_pid))
    named += [("worker", str(index), pid) for index, pid in enumerate(worker_pids) if pid]
    found = []
    for name, index, pid in named:
        read = usage(pid)
        if read is not None:
            found.append(ProcessUsage(name, index, pid, *read))
    return found

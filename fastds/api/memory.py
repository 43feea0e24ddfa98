"""OpenSIPS's shmem: and pkmem: statistics in fastds's own figures (opensips-cp's
dashboard memory widgets ask get_statistics for them).

Owns the mapping, which has no exact twin (fastds has no allocator pools):
- shmem: the shared destination table, one fixed mapping. total_size its size,
  used_size and real_used_size the bytes the header, worker rows and both published
  generations fill, max_used_size the most seen since the API process started,
  free_size the rest, fragments 0 (nothing is allocated, so nothing fragments).
- pkmem:N-: each process's own memory from /proc/PID/status. total_size the machine's
  memory (MemTotal: what a process could grow to), used_size and real_used_size its
  resident set (VmRSS), max_used_size its peak (VmHWM), free_size total - used,
  fragments 0. N numbers the processes: 0 master, 1 prober, 2 API, 3 + i worker i.
"""

from __future__ import annotations

from fastds.api.snapshot import Snapshot

STATISTICS = ("total_size", "used_size", "real_used_size", "max_used_size", "free_size", "fragments")


def _status_kib(pid: int | str, *fields: str) -> tuple[int, ...] | None:
    """Fields of /proc/PID/status given in kB, as bytes; None when the process is gone
    (or is not a user process: a kernel thread has no VmRSS)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            values = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        return None
    if not all(field in values for field in fields):
        return None
    return tuple(int(values[field].split()[0]) * 1024 for field in fields)


def _mem_total() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise OSError("no MemTotal in /proc/meminfo")


def _figures(total: int, used: int, max_used: int) -> dict[str, int]:
    return dict(zip(STATISTICS, (total, used, used, max_used, total - used, 0)))


class MemoryStatistics:
    def __init__(self):
        self._shm_max_used = 0

    def collect(self, snapshot: Snapshot, pids: list[int | None]) -> dict[str, int]:
        """pids: the processes in pkmem order (None for one that is not up: left out)."""
        self._shm_max_used = max(self._shm_max_used, snapshot.shm_used)
        found = {f"shmem:{name}": value
                 for name, value in _figures(snapshot.shm_size, snapshot.shm_used, self._shm_max_used).items()}
        machine = _mem_total()
        for number, pid in enumerate(pids):
            sizes = _status_kib(pid, "VmRSS", "VmHWM") if pid else None
            if sizes is not None:
                found.update({f"pkmem:{number}-{name}": value for name, value in _figures(machine, *sizes).items()})
        return found

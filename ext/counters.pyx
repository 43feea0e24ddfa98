# cython: language_level=3, boundscheck=False, wraparound=False
"""Named event counters as C fields: what the proxy core counts on every message.

Owns a fixed set of named 64-bit counters, added to by index from C (no dict, no int object
per increment) and read by name like a mapping -- `counters["parse_errors"]`,
`dict(counters)` -- by the snapshot path that writes them to shared memory
(fastds/procs/worker.py) and by tests. The names and their order are the owner's
(fastds/dispatch/proxy.py).
"""

from libc.string cimport memset


cdef class Counters:
    def __cinit__(self, tuple names not None):
        if len(names) > MAX_COUNTERS:
            raise ValueError(f"at most {MAX_COUNTERS} counters, not {len(names)}")
        self.names = names
        self.index = {name: i for i, name in enumerate(names)}
        memset(self.values, 0, sizeof(self.values))

    cpdef add(self, int which, long long n=1):
        self.values[which] += n

    def __getitem__(self, str name) -> int:
        return self.values[self.index[name]]

    def keys(self):
        return self.names

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self):
        return f"Counters({ {name: self.values[i] for i, name in enumerate(self.names) if self.values[i]} })"

# C declarations for fastds/dispatch/selector.py, which Cython compiles as it is (setup.py): the
# selector is an extension type, so the live view's calls into it (fastds/shm/live.pxd) and its
# own reads of its tables are C calls and C fields, not method and attribute lookups.
cimport cython

from fastds._ext.dshash cimport SetTable
from fastds._ext.sipscan cimport SipMessage


cdef class Selector:
    cdef readonly dict sets
    cdef dict _tables
    cdef dict _where
    cdef object _template

    cpdef object table(self, int set_id)
    @cython.locals(where=tuple, table=SetTable)
    cpdef count_pick(self, object destination)
    @cython.locals(where=tuple, table=SetTable)
    cpdef count_failover(self, object destination)
    @cython.locals(where=tuple, table=SetTable)
    cpdef count_reply(self, object destination, int code)
    @cython.locals(where=tuple, table=SetTable)
    cpdef count_timeout(self, object destination)
    @cython.locals(where=tuple, table=SetTable, index=int)
    cpdef object hold_load(self, object destination)
    cpdef list select(self, SipMessage message, object rule, bytes source_ip=*, object previous=*)

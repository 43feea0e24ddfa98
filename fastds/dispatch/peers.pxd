# C declarations for fastds/dispatch/peers.py, which Cython compiles as it is (setup.py): the
# proxy core asks every message's and every send's address what it is, in C calls.

cpdef bint on_stream(tuple address)
cpdef tuple dial(str host, int port, str transport)
cpdef bint is_tls(long long connection_id)
cpdef str transport_of(tuple address)

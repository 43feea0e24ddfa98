"""A worker's sockets, bound by the master: kept across a respawn, out of the group while it keeps dying."""

import os
import socket

from fastds.config import load_settings
from fastds.loopback import free_udp_port
from fastds.procs.worker import WorkerSockets


def test_a_worker_that_keeps_dying_leaves_the_reuseport_group_until_it_is_respawned():
    port = free_udp_port()
    settings = load_settings({"FASTDS_SIP_LISTEN": f"127.0.0.1:{port}"})
    master = 50_000_000 + os.getpid()  # a hand-off name no running fastds uses
    first, second = (WorkerSockets.bind(settings, master, index, 2) for index in range(2))
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        private_port = first.private.getsockname()[1]
        first.leave_group()  # the only public socket left in the group is the other worker's
        for n in range(20):
            peer.sendto(b"datagram %d" % n, ("127.0.0.1", port))
        second.public.settimeout(5)
        assert [second.public.recv(100) for _ in range(20)] == [b"datagram %d" % n for n in range(20)]
        first.rejoin_group(settings)
        assert first.public.getsockname() == ("127.0.0.1", port) and first.private.getsockname()[1] == private_port
        first.rejoin_group(settings)  # a socket that never left is kept as it is
        assert first.public.fileno() != -1
    finally:
        peer.close()
        for sockets in (first, second):
            sockets.close()

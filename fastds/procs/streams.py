"""The stream endpoint (TCP, TLS) of a worker or of the prober, as FASTDS_TCP_* and
FASTDS_TLS_* configure it: settings meet the transport here, so fastds/net/ reads no
configuration."""

from __future__ import annotations

import asyncio
import secrets

from fastds.config import Settings
from fastds.net.connections import ConnectionTable
from fastds.net.handoff import Handoff
from fastds.net.tcp import StreamEndpoint, TlsName
from fastds.net.tls import client_context


def stream_endpoint(settings: Settings, loop: asyncio.AbstractEventLoop, index: int, handoff: Handoff | None,
                    tls_name: TlsName) -> StreamEndpoint:
    """A worker's (or the prober's: index 0, no hand-off); its connection ids start at a
    random serial, so a restarted process never hands out an id an old Record-Route names."""
    table = ConnectionTable(index, settings.tcp_max_connections, settings.tcp_idle_timeout_s, secrets.randbits(36))
    return StreamEndpoint(loop, index, table, settings.sip_max_message_bytes, settings.tcp_message_timeout_s, handoff,
                          settings.tcp_max_unsent_bytes, settings.tcp_connect_timeout_ms / 1000,
                          client_context(settings.tls_ca_file, settings.tls_verify, settings.tls_cert_file,
                                         settings.tls_key_file), tls_name)

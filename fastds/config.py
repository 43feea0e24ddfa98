"""Settings from the environment: ONE declarative table of FASTDS_* variables.

Owns: every variable's name, type, default, check and one line of doc, written once as
a typed field of the frozen Settings (VARIABLES is read from those fields); the README
table and systemd/fastds.env.example generated from them (`python -m fastds.config
markdown|env-example`). The only module that reads the environment. Every invalid
variable is reported at once (ConfigError); an unknown FASTDS_* variable is a warning
naming the closest known one.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

from fastds.dispatch.keys import compile_key_template
from fastds.errors import ConfigError, SipParseError
from fastds.net.tls import client_context, server_context

# ---------------------------------------------------------------------------------
# kinds of value: a parser (text -> value, or ValueError(what is expected)), a short
# name for the docs, and how `fastds check` shows the value


@dataclasses.dataclass(frozen=True)
class Kind:
    expected: str
    parse: Callable[[str], Any]
    show: Callable[[Any], Any] = lambda value: value


def integer(low: int, high: int) -> Kind:
    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise ValueError(f"an integer from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"an integer from {low} to {high}")
        return value

    return Kind(f"integer {low}..{high}", parse)


def choice(*options: str) -> Kind:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise ValueError("one of " + ", ".join(options))
        return value

    return Kind("|".join(options), parse)


TEXT = Kind("text", lambda text: text)


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off"):
        return False
    raise ValueError("one of 1, 0, yes, no, true, false, on, off")


BOOLEAN = Kind("boolean", _boolean)


def _host_port(text: str) -> tuple[str, int]:
    """host:port with an IPv4 address, or [IPv6]:port."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([0-9.]+):(\d{1,5})", text.strip())
    expected = "an address as IPv4:port or [IPv6]:port, e.g. 0.0.0.0:5060"
    if not match:
        raise ValueError(expected)
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(expected) from None
    if not 1 <= port <= 65535:
        raise ValueError(expected)
    return host, port


def _show_host_port(host_port: tuple[str, int]) -> str:
    host, port = host_port
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


HOST_PORT = Kind("IP:port", _host_port, _show_host_port)


def _host_port_list(text: str) -> tuple[tuple[str, int], ...]:
    try:
        return tuple(_host_port(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError("empty, or a comma-separated list of IPv4:port or [IPv6]:port, e.g. 10.0.0.2:53") from None


HOST_PORT_LIST = Kind("IP:port list or empty", _host_port_list, lambda found: [_show_host_port(one) for one in found])


def _hep_destination(text: str) -> tuple[str, int] | None:
    """udp:IP:port (HEP over UDP, as Homer's heplify-server and OpenSIPS's hep_id take it), or empty."""
    text = text.strip()
    if not text:
        return None
    if not text.lower().startswith("udp:"):
        raise ValueError("udp:IP:port (HEP v3 over UDP), e.g. udp:10.0.0.9:9060, or empty")
    return _host_port(text[4:])


HEP_DESTINATION = Kind("udp:IP:port or empty", _hep_destination,
                       lambda found: "" if found is None else "udp:" + _show_host_port(found))


def _ratio(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise ValueError("a number over 0 and at most 1, e.g. 0.1 for one call in ten")
    return value


RATIO = Kind("0 < ratio <= 1", _ratio)


@dataclasses.dataclass(frozen=True)
class Listener:
    """One public SIP address: transport, IP, port."""
    transport: str  # udp, tcp, tls
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport}:{_show_host_port((self.host, self.port))}"


LISTEN_TRANSPORTS = ("udp", "tcp", "tls")


def _listeners(text: str) -> tuple[Listener, ...]:
    """udp:IP:port,tcp:IP:port,... (a bare IP:port is UDP); one UDP listener, at most one per transport."""
    expected = ("a list of udp:/tcp:/tls: IPv4:port or [IPv6]:port, with one udp listener and at most one of"
                " each other, e.g. udp:0.0.0.0:5060,tcp:0.0.0.0:5060,tls:0.0.0.0:5061")
    listeners = []
    for entry in (part.strip() for part in text.split(",")):
        prefix, colon, rest = entry.partition(":")
        transport, address = (prefix.lower(), rest) if colon and prefix.lower() in LISTEN_TRANSPORTS else ("udp", entry)
        try:
            host, port = _host_port(address)
        except ValueError:
            raise ValueError(expected) from None
        listeners.append(Listener(transport, host, port))
    transports = [listener.transport for listener in listeners]
    if transports.count("udp") != 1 or len(set(transports)) != len(transports):
        raise ValueError(expected)
    return tuple(listeners)


LISTENERS = Kind("udp:/tcp:/tls:IP:port list", _listeners, lambda listeners: ",".join(map(str, listeners)))


def _advertise(text: str) -> str:
    if text:
        try:
            ipaddress.ip_address(text.strip().strip("[]"))
        except ValueError:
            raise ValueError("an IP address (IPv4, or IPv6 without brackets), or empty") from None
    return text.strip().strip("[]")


ADVERTISE = Kind("IP or empty", _advertise)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _cidr_list(text: str, allow_empty: bool = False) -> tuple[Network, ...]:
    networks = []
    for item in text.split(",") if text.strip() or not allow_empty else ():
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"comma-separated CIDRs such as 127.0.0.0/8,::1/128 ({item.strip()!r} is not one)") from None
    if not networks and not allow_empty:
        raise ValueError("at least one CIDR")
    return tuple(networks)


CIDR_LIST = Kind("CIDR list", _cidr_list, lambda networks: [str(network) for network in networks])
OPTIONAL_CIDR_LIST = Kind("CIDR list or empty", lambda text: _cidr_list(text, allow_empty=True), CIDR_LIST.show)


def _word_list(text: str) -> tuple[str, ...]:
    words = tuple(word.strip().lower() for word in text.split(",") if word.strip())
    if any(len(word) > 64 for word in words):
        raise ValueError("comma-separated names of at most 64 characters each")
    return words


WORD_LIST = Kind("comma-separated names", _word_list, list)


def _status_codes(text: str) -> frozenset[int]:
    """Comma-separated SIP status codes: 503, a class 5xx, or a range 500-599."""
    codes: set[int] = set()
    expected = "comma-separated status codes like 5xx,408 or 500-599"
    for item in filter(None, (part.strip().lower() for part in text.split(","))):
        if re.fullmatch(r"[1-6]xx", item):
            low = int(item[0]) * 100
            codes.update(range(low, low + 100))
        elif re.fullmatch(r"[1-6]\d\d-[1-6]\d\d", item):
            low, high = (int(x) for x in item.split("-"))
            if low > high:
                raise ValueError(expected)
            codes.update(range(low, high + 1))
        elif re.fullmatch(r"[1-6]\d\d", item):
            codes.add(int(item))
        else:
            raise ValueError(expected)
    return frozenset(codes)


STATUS_CODES = Kind("status codes", _status_codes, sorted)


def _db_url(text: str) -> str:
    if not re.fullmatch(r"sqlite:///.+|mysql://[^/]+/\w+", text.strip()):
        raise ValueError("sqlite:///path/to/file.db or mysql://user:password@host:port/database")
    return text.strip()


def masked_db_url(url: str) -> str:
    """The URL with its password (if any) replaced by ***, fit to print."""
    return re.sub(r"^(mysql://[^:@/]*):.*@([^@]*)$", r"\1:***@\2", url)


DB_URL = Kind("database URL", _db_url, masked_db_url)


def _redis_url(text: str) -> str:
    if text and not re.fullmatch(r"rediss?://[^/\s]+(/\d+)?", text.strip()):
        raise ValueError("redis://host:port/db (rediss:// for TLS), or empty for a standalone node")
    return text.strip()


def _url_list(text: str) -> tuple[str, ...]:
    urls = tuple(url.strip() for url in text.split(",") if url.strip())
    for url in urls:
        if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", url):
            raise ValueError(f"comma-separated http:// or https:// URLs ({url!r} is not one), or empty")
    return urls


def masked_url(url: str) -> str:
    """A URL with its user:password part (if any) replaced by ***, fit to print."""
    return re.sub(r"//[^@/]*@", "//***@", url)


URL_LIST = Kind("http(s) URL list or empty", _url_list, lambda urls: [masked_url(url) for url in urls])

OPENABLE_PATHS = ("/metrics", "/api/v1/health")  # read-only, and what scrapers and L4 checks poll


def _open_paths(text: str) -> tuple[str, ...]:
    paths = tuple(path.strip() for path in text.split(",") if path.strip())
    for path in paths:
        if path not in OPENABLE_PATHS:
            raise ValueError(f"empty, or a comma-separated list of {', '.join(OPENABLE_PATHS)} ({path!r} may not be opened)")
    return paths


OPEN_PATHS = Kind("paths or empty", _open_paths, list)

REDIS_URL = Kind("redis URL or empty", _redis_url, masked_url)


def _cluster_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text):
        raise ValueError("1 to 64 letters, digits, '_', '.' or '-' (it prefixes the Redis keys)")
    return text


CLUSTER_NAME = Kind("key prefix", _cluster_name)


def _node_id(text: str) -> str:
    if text and not (text.isascii() and text.isalnum()):
        raise ValueError("letters and digits only (it goes into Via branches)")
    return text


NODE_ID = Kind("letters and digits", _node_id)


def _key_template(text: str) -> str:
    try:
        compile_key_template(text)
    except ValueError as exc:
        raise ValueError(f"a template of $fU $fd $tU $td $rU $rd $ci $ft $si $au and text ({exc})") from None
    return text


KEY_TEMPLATE = Kind("key template", _key_template)


def _dispatch_flags(text: str) -> str:
    """OpenSIPS ds_select_dst flags (f u d a) plus fastds's c; case and spaces ignored."""
    flags = text.replace(" ", "").lower()
    if any(flag not in "fudac" for flag in flags):
        raise ValueError("letters among f, u, d, a, c")
    return "".join(sorted(set(flags), key="fudac".index))


DISPATCH_FLAGS = Kind("flags f/u/d/a/c", _dispatch_flags)


def _probe_method(text: str) -> str:
    """A SIP method token (RFC 3261 §25.1) that makes a non-INVITE transaction: a probe
    must be answered, and ACK and CANCEL are not; an INVITE would set up a call."""
    method = text.strip()
    if not re.fullmatch(r"[A-Za-z0-9.!%*_+`'~-]+", method) or method.upper() in ("INVITE", "ACK", "CANCEL"):
        raise ValueError("a SIP method token other than INVITE, ACK and CANCEL, e.g. OPTIONS")
    return method


PROBE_METHOD = Kind("SIP method", _probe_method)


def _sip_uri(text: str) -> str:
    from fastds._ext.sipscan import parse_uri

    expected = "a sip: or sips: URI, e.g. sip:dispatcher@localhost"
    try:
        uri = parse_uri(text.strip().encode())
    except (SipParseError, UnicodeError):
        raise ValueError(expected) from None
    if uri.scheme.lower() not in (b"sip", b"sips") or not uri.host:
        raise ValueError(expected)
    return text.strip()


SIP_URI = Kind("sip: or sips: URI", _sip_uri)

# ---------------------------------------------------------------------------------
# the table


def setting(kind: Kind, default: str, doc: str, secret: bool = False) -> Any:
    """A Settings field: its variable's kind, default (as text), one line of doc, secrecy."""
    return dataclasses.field(metadata={"var": (kind, default, doc, secret)})


@dataclasses.dataclass(frozen=True)
class Var:
    name: str
    kind: Kind
    default: str
    doc: str
    secret: bool = False

    @property
    def field(self) -> str:
        return self.name.removeprefix("FASTDS_").lower()


@dataclasses.dataclass(frozen=True)
class Settings:
    """Effective configuration, and the table of FASTDS_* variables: one field per
    variable (lower case, prefix dropped) with its kind, default, doc and secrecy."""

    sip_listen: tuple[Listener, ...] = setting(LISTENERS, "udp:0.0.0.0:5060", "public SIP addresses every worker binds (SO_REUSEPORT): one udp, optionally one tcp and one tls; a bare IP:port is udp")
    sip_advertise: str = setting(ADVERTISE, "", "address put in our Via and Record-Route; empty = the listen IP (wildcard: the host name's)")
    sip_max_message_bytes: int = setting(integer(1024, 1048576), "65535", "largest SIP message accepted; a larger request whose head can be read is answered 513, anything larger is dropped; both counted (too_large)")
    sip_max_headers: int = setting(integer(16, 10000), "256", "most header lines in one message; more is a 400")
    sip_rcvbuf_bytes: int = setting(integer(65536, 1073741824), "8388608", "UDP receive buffer per socket (SO_RCVBUF); small buffers overflow in bursts")
    tcp_idle_timeout_s: int = setting(integer(1, 86400), "120", "a TCP connection nothing was read from or written to this long is closed")
    tcp_max_connections: int = setting(integer(1, 1000000), "2048", "TCP connections per worker; at the cap the one used least recently is closed")
    tcp_message_timeout_s: int = setting(integer(1, 600), "4", "a message begun on a TCP or TLS connection (and a TLS handshake) must be whole within this, else the connection is closed (slow senders)")
    tcp_max_unsent_bytes: int = setting(integer(65536, 1073741824), "1048576", "bytes waiting to be written to one TCP or TLS connection (its peer does not read) before it is closed")
    tcp_connect_timeout_ms: int = setting(integer(10, 60000), "2000", "a connection fastds opens (to a TCP or TLS destination, TLS handshake included) must be up within this, else its requests fail over at once")
    tls_cert_file: str = setting(TEXT, "", "PEM certificate chain of the tls: listener (required with one), offered too when fastds connects to TLS peers; reloaded on SIGHUP")
    tls_key_file: str = setting(TEXT, "", "PEM private key of that certificate (not encrypted)")
    tls_ca_file: str = setting(TEXT, "", "PEM CA certificates TLS clients' and destinations' certificates are checked against; empty = clients are not asked for one, destinations are checked against the system's CAs")
    tls_verify: bool = setting(BOOLEAN, "1", "check the certificate of every TLS destination and next hop fastds connects to (its CA and its name: attrs tls_name=, else the URI's host); 0 = encrypt without knowing who answers")
    tls_verify_clients: bool = setting(BOOLEAN, "0", "with FASTDS_TLS_CA_FILE: refuse a TLS client without a certificate that CA signed (0: check one if offered)")
    workers: int = setting(integer(0, 256), "0", "SIP worker processes; 0 = one per CPU")
    shm_destinations: int = setting(integer(16, 1000000), "4096", "destinations the shared-memory table holds (all sets)")
    shm_routes_bytes: int = setting(integer(4096, 268435456), "1048576", "room for the dialplan rules in shared memory")
    node_id: str = setting(NODE_ID, "", "this node's id in branch ids and in a cluster, where it must be unique (letters and digits); empty = derived from the host name")
    state_dir: str = setting(TEXT, "/var/lib/fastds", "directory for state fastds keeps itself (the generated FASTDS_SECRET)")
    db_url: str = setting(DB_URL, "sqlite:////var/lib/fastds/fastds.db", "destination store: sqlite:////absolute/file (three slashes: relative) or mysql://user:pass@host:port/db")
    egress_allow: tuple[Network, ...] = setting(CIDR_LIST, "0.0.0.0/0,::/0", "CIDRs fastds may send SIP to; anything else is dropped and counted")
    secret: str = setting(TEXT, "", "key of the tag in our Via branches and Record-Route; empty = generated and stored on first run", secret=True)
    record_route: bool = setting(BOOLEAN, "1", "add a Record-Route so in-dialog requests come back through fastds")
    server_header: str = setting(TEXT, "fastds", "Server header of locally generated responses; empty = none")
    default_set: int = setting(integer(0, 2147483647), "1", "destination set of the default route (no dialplan rule matched)")
    default_alg: int = setting(integer(0, 10), "0", "selection algorithm of the default route (OpenSIPS numbers 0-10)")
    default_flags: str = setting(DISPATCH_FLAGS, "f", "flags of the default route: f failover, u user only, d default, a append, c consistent")
    hash_key: str = setting(KEY_TEMPLATE, "$fU@$ci", "what algorithm 7 hashes, e.g. $fU@$ci (From user, Call-ID)")
    dialplan_id: int = setting(integer(0, 2147483647), "0", "dialplan dpid whose rules route initial requests")
    no_route_reason: str = setting(TEXT, "No route to Media", "reason phrase of the 500 sent when no destination is active")
    failover_codes: frozenset[int] = setting(STATUS_CODES, "5xx", "final response codes that fail over to the next destination")
    fr_timeout_ms: int = setting(integer(100, 3600000), "5000", "no final response (nor provisional) within this: local 408 and failover")
    fr_inv_timeout_ms: int = setting(integer(100, 3600000), "120000", "INVITE answered provisionally but not finally within this: 408 and failover")
    t1_ms: int = setting(integer(50, 60000), "500", "RFC 3261 T1, round-trip estimate")
    t2_ms: int = setting(integer(100, 600000), "4000", "RFC 3261 T2, longest non-INVITE retransmit interval")
    t4_ms: int = setting(integer(100, 600000), "5000", "RFC 3261 T4, how long a message may live in the network")
    max_transactions: int = setting(integer(100, 10000000), "600000", "transactions per worker, finished ones kept for Timer J/L (32 s) included: about 1.1 KB each in steady state, so 600,000 is ~650 MiB and holds 9,000 calls/s per worker (a call keeps 2 for 32 s); above it new INVITEs get 503 with Retry-After")
    overload_lag_ms: int = setting(integer(10, 60000), "250", "a worker whose event loop lags more than this sheds new INVITEs (503, Retry-After) until it is under half of it")
    drain_idle_s: int = setting(integer(0, 3600), "10", "a drain (SIGTERM, fastds drain) ends once no in-dialog request came for this long and no transaction is open; 0 = once transactions are done")
    drain_timeout_s: int = setting(integer(0, 3600), "60", "a drain ends after this at the latest (systemd's TimeoutStopSec must exceed it by 30 s); meanwhile new INVITEs get 503 with Retry-After and in-dialog requests are routed")
    ping_interval_s: int = setting(integer(1, 3600), "10", "seconds between OPTIONS probes of a destination")
    ping_method: str = setting(PROBE_METHOD, "OPTIONS", "method of the probes")
    ping_from: str = setting(SIP_URI, "sip:dispatcher@localhost", "From URI of the probes")
    ping_reply_codes: frozenset[int] = setting(STATUS_CODES, "", "probe reply codes that count as alive besides 200")
    probing_threshold: int = setting(integer(1, 1000), "3", "failures that move an active destination to probing")
    probing_mode: int = setting(integer(0, 1), "0", "0 probe only probing destinations, 1 probe all but inactive ones")
    confirm_failures: bool = setting(BOOLEAN, "1", "a traffic failure of a destination that answers other requests is confirmed by an immediate probe before it counts; 0 = count it at once (OpenSIPS)")
    trusted_sources: tuple[Network, ...] = setting(OPTIONAL_CIDR_LIST, "", "CIDRs whose initial requests are accepted, besides the address table and the destinations; empty and no address rows = everyone")
    trusted_group: int = setting(integer(0, 65535), "0", "grp of the address table rows that are trusted; 0 = every group")
    untrusted_action: str = setting(choice("403", "drop"), "403", "what an initial request from an untrusted source gets: 403 Forbidden, or dropped silently")
    pike_reqs: int = setting(integer(0, 1000000), "0", "requests one IP may send per FASTDS_PIKE_WINDOW_MS before it is blocked; 0 = no flood limit")
    pike_window_ms: int = setting(integer(100, 3600000), "2000", "window of FASTDS_PIKE_REQS")
    pike_block_s: int = setting(integer(1, 86400), "60", "how long a flooding IP's requests are dropped")
    pike_trusted: bool = setting(BOOLEAN, "0", "1 = trusted sources are flood-limited too")
    pike_table_size: int = setting(integer(16, 10000000), "16384", "source IPs the flood limit tracks per worker (the least recently seen go first)")
    block_user_agents: tuple[str, ...] = setting(WORD_LIST, "friendly-scanner,sipvicious,sipcli,sip-scan,sundayddr,iwar,sivus,vaxsipuseragent,smap,pplsip", "requests whose User-Agent contains one of these (any case) are dropped silently; empty = none")
    cluster_url: str = setting(REDIS_URL, "", "Redis the nodes of a cluster share destination states through, redis://host:port/db; empty = standalone")
    cluster_name: str = setting(CLUSTER_NAME, "fastds", "the cluster's name: prefixes its Redis keys, so clusters (and test runs) can share one Redis")
    cluster_heartbeat_ms: int = setting(integer(100, 60000), "1000", "how often a node renews its heartbeat in Redis; a node silent for three of these has left")
    event_webhooks: tuple[str, ...] = setting(URL_LIST, "", "URLs every destination state change (E_DISPATCHER_STATUS, JSON-RPC body) is POSTed to, in order, retried with back-off; a dead receiver never slows probing")
    dns_servers: tuple[tuple[str, int], ...] = setting(HOST_PORT_LIST, "", "DNS servers the prober asks for destinations given by name (SRV, A, AAAA); empty = the system's (/etc/resolv.conf, then /etc/hosts)")
    dns_ttl_min_s: int = setting(integer(1, 86400), "10", "a destination name is looked up again no sooner than this, whatever its TTL")
    dns_ttl_max_s: int = setting(integer(1, 86400), "300", "and no later than this: a TTL of a day still re-resolves within five minutes")
    hep_destination: tuple[str, int] | None = setting(HEP_DESTINATION, "", "Homer capture: every SIP message fastds receives and sends is copied there as HEP v3 (udp:IP:port); empty = off")
    hep_capture_id: int = setting(integer(0, 4294967295), "1", "the HEP capture agent id fastds's copies carry (OpenSIPS hep_capture_id, Kamailio capture_id)")
    hep_sampling: float = setting(RATIO, "1", "share of calls captured, chosen by Call-ID so a call is captured whole or not at all")
    api_listen: tuple[str, int] = setting(HOST_PORT, "127.0.0.1:8888", "HTTP management address (JSON API, /mi, /metrics, panel)")
    api_token: str = setting(TEXT, "", "bearer token for the API; required when FASTDS_API_LISTEN is not loopback", secret=True)
    api_open_paths: tuple[str, ...] = setting(OPEN_PATHS, "", "API paths answered without FASTDS_API_TOKEN: /metrics and/or /api/v1/health (Prometheus, L4 health checks); empty = none")
    log_level: str = setting(choice("debug", "info", "warning", "error"), "info", "log level")

    @property
    def udp_listen(self) -> tuple[str, int]:
        """The UDP listener's address (there is always one)."""
        return next((listener.host, listener.port) for listener in self.sip_listen if listener.transport == "udp")

    @property
    def tcp_listen(self) -> tuple[str, int] | None:
        """The TCP listener's address, if there is one."""
        return self.stream_listen("tcp")

    @property
    def tls_listen(self) -> tuple[str, int] | None:
        """The TLS listener's address, if there is one."""
        return self.stream_listen("tls")

    def stream_listen(self, transport: str) -> tuple[str, int] | None:
        return next(((listener.host, listener.port) for listener in self.sip_listen if listener.transport == transport),
                    None)


VARIABLES: tuple[Var, ...] = tuple(Var(f"FASTDS_{field.name.upper()}", *field.metadata["var"])
                                   for field in dataclasses.fields(Settings))

# read by setup.py at build time, not by the running service
BUILD_VARIABLES = ("FASTDS_DEBUG",)


def _cross_checks(values: dict[str, Any]) -> list[str]:
    """Rules that tie variables together; only run on variables that parsed."""
    problems = []
    if any(listener.transport == "tls" for listener in values.get("sip_listen", ())):
        try:
            server_context(values.get("tls_cert_file", ""), values.get("tls_key_file", ""), values.get("tls_ca_file", ""),
                           values.get("tls_verify_clients", False))
        except ValueError as exc:
            problems.append(f"{exc} (a tls: listener is in FASTDS_SIP_LISTEN)")
    elif values.get("tls_ca_file") or values.get("tls_cert_file"):
        try:  # no listener: the files are for the connections fastds opens
            client_context(values.get("tls_ca_file", ""), True, values.get("tls_cert_file", ""),
                           values.get("tls_key_file", ""))
        except ValueError as exc:
            problems.append(str(exc))
    if values.get("dns_ttl_min_s", 0) > values.get("dns_ttl_max_s", 86400):
        problems.append(f"FASTDS_DNS_TTL_MIN_S={values['dns_ttl_min_s']} is over FASTDS_DNS_TTL_MAX_S="
                        f"{values['dns_ttl_max_s']} (expected: the floor at most the ceiling)")
    hep = values.get("hep_destination")
    if hep is not None and "egress_allow" in values and not any(
            ipaddress.ip_address(hep[0]) in network for network in values["egress_allow"]):
        problems.append(f"FASTDS_HEP_DESTINATION=udp:{_show_host_port(hep)}: not within FASTDS_EGRESS_ALLOW "
                        "(expected: a capture server fastds may send to, or widen FASTDS_EGRESS_ALLOW)")
    if "api_listen" not in values:
        return problems
    api_host = values["api_listen"][0]
    if not ipaddress.ip_address(api_host).is_loopback and not values.get("api_token"):
        problems.append(
            f"FASTDS_API_LISTEN={api_host}:{values['api_listen'][1]}: a non-loopback API address "
            "requires FASTDS_API_TOKEN (expected: set a bearer token, or listen on 127.0.0.1)")
    return problems


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from environ (default os.environ); ConfigError lists every bad variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems = []
    for var in VARIABLES:
        raw = environ.get(var.name, var.default)
        try:
            values[var.field] = var.kind.parse(raw)
        except ValueError as exc:
            shown = "(hidden)" if var.secret else repr(raw)
            problems.append(f"{var.name}={shown}: expected {exc}")
    problems += _cross_checks(values)
    if problems:
        raise ConfigError(problems)
    return Settings(**values)


def node_id(settings: Settings) -> str:
    """FASTDS_NODE_ID, or one derived from the host name (letters and digits)."""
    return settings.node_id or re.sub(r"[^A-Za-z0-9]", "", os.uname().nodename)[:16] or "node"


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each FASTDS_* variable that is not in the table (a typo must show)."""
    environ = os.environ if environ is None else environ
    known = {var.name for var in VARIABLES} | set(BUILD_VARIABLES)
    warnings = []
    for name in sorted(environ):
        if name.startswith("FASTDS_") and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"unknown variable {name} is ignored{hint}")
    return warnings


def systemd_environment(environ: Mapping[str, str] | None = None) -> tuple[str, int]:
    """(NOTIFY_SOCKET, WATCHDOG_USEC) that systemd gives a Type=notify service; '' and 0 outside."""
    environ = os.environ if environ is None else environ
    try:
        watchdog_usec = int(environ.get("WATCHDOG_USEC", "0"))
    except ValueError:
        watchdog_usec = 0
    return environ.get("NOTIFY_SOCKET", ""), watchdog_usec


def effective(settings: Settings) -> dict[str, Any]:
    """Settings as plain JSON-able values keyed by variable name, secrets masked."""
    shown = {}
    for var in VARIABLES:
        value = getattr(settings, var.field)
        shown[var.name] = ("(set)" if value else "") if var.secret else var.kind.show(value)
    return shown


def markdown_table() -> str:
    rows = ["| variable | default | expected | meaning |", "|---|---|---|---|"]
    for var in VARIABLES:
        rows.append(f"| `{var.name}` | `{var.default}` | {var.kind.expected} | {var.doc} |")
    return "\n".join(rows) + "\n"


def env_example() -> str:
    lines = [
        "# fastds environment (EnvironmentFile of systemd/fastds.service, e.g. /etc/default/fastds).",
        "# Generated by `python -m fastds.config env-example`; every line shows the default.",
        "",
    ]
    for var in VARIABLES:
        lines += [f"# {var.doc} ({var.kind.expected})", f"#{var.name}={var.default}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    outputs = {"markdown": markdown_table, "env-example": env_example}
    if len(sys.argv) != 2 or sys.argv[1] not in outputs:
        sys.exit(f"usage: python -m fastds.config {'|'.join(outputs)}")
    sys.stdout.write(outputs[sys.argv[1]]())

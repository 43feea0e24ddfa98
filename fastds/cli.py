"""The `fastds` command: run, check, db init, ds ..., address list|add|rm, cluster status, --version.

Owns argument parsing and exit statuses: 0 ok, 1 runtime failure (store, sockets),
2 bad configuration, usage or input (a token the running fastds refuses), 141 the reader
of our output went away (a closed pipe). The ds and address commands go through the running
fastds's API when it answers (live state, applied at once), else to the store directly. Reads the
environment only through fastds.config.
Subcommands import what they need lazily so `fastds check` starts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
import logging
import os
import sys
import time

import orjson

from fastds import __version__
from fastds.config import effective, load_settings, unknown_variables
from fastds.dispatch.state import DestinationState
from fastds.errors import ConfigError, FastdsError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what the shell shows for a program a closed pipe ended
STATE_CHOICES = [state.label for state in DestinationState] + [str(int(state)) for state in DestinationState]


def _state_label(code) -> str:
    """A state column's value by name; a value OpenSIPS would not accept, as it is."""
    try:
        return DestinationState(int(code)).label
    except (TypeError, ValueError):
        return str(code)


@functools.cache
def _settings_or_exit():
    """The settings, read once per command (unknown variables warned once)."""
    for warning in unknown_variables():
        print(f"fastds: warning: {warning}", file=sys.stderr)
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"fastds: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _with_store(action):
    """Run `action(store)` against FASTDS_DB_URL; a store error exits 1 with its message."""
    from fastds.store import open_store

    settings = _settings_or_exit()

    async def run():
        store = open_store(settings.db_url)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except FastdsError as exc:
        print(f"fastds: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILURE)


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the environment: print the effective settings as JSON (secrets masked),
    then open the store and try every SIP listener's bind and the API's, a line each (stderr)."""
    settings = _settings_or_exit()
    sys.stdout.write(orjson.dumps(effective(settings), option=orjson.OPT_INDENT_2).decode() + "\n")
    if args.offline:
        return 0
    from fastds.preflight import environment_checks

    def running_fastds() -> str | None:
        client = ApiClient(settings)
        try:
            health = client.health()
        except TokenRefused as exc:
            return str(exc)
        return None if health is None else f"its API at {client.base} answers, generation {health['generation']}"

    checks = environment_checks(settings, running_fastds)
    sys.stdout.flush()
    for check in checks:
        print(f"fastds: check: {check.line()}", file=sys.stderr)
    return 0 if all(check.ok for check in checks) else EXIT_FAILURE


def cmd_run(args: argparse.Namespace) -> int:
    """Run the SIP load balancer in the foreground: master, prober and workers."""
    settings = _settings_or_exit()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s")
    from fastds.procs import master

    return master.run(settings)


def cmd_db_init(args: argparse.Namespace) -> int:
    """Create the OpenSIPS 3.4 tables (version, dispatcher 9, dialplan 5) if absent."""
    from fastds.store import ensure_schema

    created = _with_store(ensure_schema)
    print(f"fastds: schema ready ({'created' if created else 'existing'})")
    return 0


class ApiClient:
    """The running fastds's API (FASTDS_API_LISTEN, FASTDS_API_TOKEN), when it answers."""

    def __init__(self, settings):
        host, port = settings.api_listen
        host = "127.0.0.1" if host == "0.0.0.0" else "::1" if host == "::" else host
        self.base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self.token = settings.api_token

    def call(self, method: str, path: str, body=None):
        """(status, JSON reply); OSError when nothing answers."""
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.base + path, method=method,
                                         data=orjson.dumps(body) if body is not None else None,
                                         headers={"Content-Type": "application/json"})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, orjson.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, orjson.loads(exc.read() or b"{}")
            except orjson.JSONDecodeError:
                return exc.code, {"error": f"HTTP {exc.code} {exc.reason}"}

    def health(self) -> dict | None:
        """The running fastds's /api/v1/health reply; None when no fastds answers.
        TokenRefused when one answers but refuses FASTDS_API_TOKEN: it runs, and nothing
        may then be written behind it."""
        try:
            status, reply = self.call("GET", "/api/v1/health")
        except (OSError, orjson.JSONDecodeError):
            return None
        if status in (401, 403):
            raise TokenRefused(f"the fastds API at {self.base} answers but refused the request: FASTDS_API_TOKEN is "
                               + ("wrong" if self.token else "not set") + " (expected: the token that fastds runs with)")
        return reply if isinstance(reply, dict) and "generation" in reply else None


class TokenRefused(FastdsError):
    """A fastds answers on FASTDS_API_LISTEN but refuses our token."""


def _api_or_none():
    """The running fastds's API; None when none answers. A fastds that refuses the token
    runs: say so and exit, never fall back to writing the store behind it."""
    settings = _settings_or_exit()
    client = ApiClient(settings)
    try:
        return client if client.health() is not None else None
    except TokenRefused as exc:
        print(f"fastds: {exc}; nothing was changed", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _api_result(status: int, reply: dict, failed: str) -> dict:
    """The reply of a successful call; otherwise print why and exit (2 refused input, else 1)."""
    if status < 300:
        return reply
    print(f"fastds: {failed}: {reply.get('error', reply)}", file=sys.stderr)
    sys.exit(EXIT_USAGE if status in (400, 404, 409) else EXIT_FAILURE)


def _print_table(columns: tuple[str, ...], rows: list[dict]) -> None:
    table = [columns] + [tuple("" if row.get(c) is None else str(row[c]) for c in columns) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


def _applied(reply: dict) -> str:
    if reply.get("applied"):
        return f"; live (generation {reply['generation']})"
    return f"; NOT applied: {reply.get('reload_error') or reply.get('note')}"


def _print_json(value) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _add_to_store(noun: str, validate, body: dict, add) -> int:
    """Validate `body` as the API would (exit 2 naming the field), then `add(store, fields)`."""
    from fastds.errors import FieldError

    try:
        fields = validate(body)
    except FieldError as exc:
        print(f"fastds: {noun} not added: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def write(store):
        await store.check_schema()
        return await add(store, fields)

    print(f"fastds: added {noun} id {_with_store(write)} to the store (read when fastds starts)")
    return 0


class LiveDestinations:
    """The ds commands through the running fastds's API: live state, writes applied at once."""

    def __init__(self, api: ApiClient):
        self.api = api

    def list(self, as_json: bool) -> int:
        reply = _api_result(*self.api.call("GET", "/api/v1/sets"), "cannot list")
        if as_json:
            _print_json(reply)
            return 0
        print(f"# live from fastds at {self.api.base}, generation {reply['generation']}")
        _print_table(("id", "setid", "destination", "transport", "state", "weight", "priority", "picks", "failovers",
                      "in_flight", "rtt_ms", "description"), [d for s in reply["sets"] for d in s["destinations"]])
        if reply.get("skipped"):
            print(f"# {len(reply['skipped'])} row(s) of the store skipped by the last load:")
            for row in reply["skipped"]:
                print(f"#   id {row['id']}: {row['reason']}")
        return 0

    def add(self, body: dict) -> int:
        reply = _api_result(*self.api.call("POST", "/api/v1/destinations", body), "destination not added")
        print(f"fastds: added destination id {reply['id']}{_applied(reply)}")
        return 0

    def remove(self, dest_id: int) -> int:
        reply = _api_result(*self.api.call("DELETE", f"/api/v1/destinations/{dest_id}"), "not removed")
        print(f"fastds: removed destination id {dest_id}{_applied(reply)}")
        return 0

    def set_state(self, dest_id: int, state: str) -> int:
        reply = _api_result(*self.api.call("PUT", f"/api/v1/destinations/{dest_id}/state", {"state": state}),
                            "state not set")
        print(f"fastds: destination id {dest_id} is now {reply['state']} (live; written back to the store)")
        return 0


class StoredDestinations:
    """The ds commands on the store itself, when no fastds answers (read when it starts)."""

    def list(self, as_json: bool) -> int:
        async def rows(store):
            await store.check_schema()
            return await store.load_destinations()

        destinations = sorted(_with_store(rows), key=lambda row: (row["setid"], row["id"]))
        if as_json:
            _print_json(destinations)
            return 0
        print("# from the store (fastds is not running)")
        _print_table(("id", "setid", "destination", "state", "weight", "priority", "probe_mode", "description"),
                     [{**row, "state": _state_label(row["state"])} for row in destinations])
        return 0

    def add(self, body: dict) -> int:
        from fastds.api.validate import destination_fields

        return _add_to_store("destination", destination_fields, body, lambda store, fields: store.add_destination(fields))

    def remove(self, dest_id: int) -> int:
        _with_store(lambda store: store.remove_destination(dest_id))
        print(f"fastds: removed destination id {dest_id} from the store")
        return 0

    def set_state(self, dest_id: int, state: str) -> int:
        _with_store(lambda store: store.set_state(dest_id, int(DestinationState.parse(state))))
        print(f"fastds: destination id {dest_id} is now {state} in the store")
        return 0


def _destinations() -> LiveDestinations | StoredDestinations:
    """Through the running fastds's API when it answers, else on the store."""
    api = _api_or_none()
    return LiveDestinations(api) if api is not None else StoredDestinations()


def cmd_ds_list(args: argparse.Namespace) -> int:
    """List destinations: live from the running fastds, else from the store."""
    return _destinations().list(args.json)


def cmd_ds_add(args: argparse.Namespace) -> int:
    """Add a destination (validated before anything is written)."""
    return _destinations().add({
        "setid": args.set, "destination": args.uri, "socket": args.socket, "state": args.state,
        "probe_mode": args.probe_mode, "weight": args.weight, "priority": args.priority, "attrs": args.attrs,
        "description": args.description})


def cmd_ds_rm(args: argparse.Namespace) -> int:
    """Remove a destination by id."""
    return _destinations().remove(args.id)


def cmd_ds_set_state(args: argparse.Namespace) -> int:
    """Set a destination's state: active, inactive or probing (live when fastds runs)."""
    return _destinations().set_state(args.id, args.state)


def cmd_ds_reload(args: argparse.Namespace) -> int:
    """Reload destinations and routes from the store into the running fastds."""
    api = _api_or_none()
    if api is None:
        print(f"fastds: fastds is not running (no API at {ApiClient(_settings_or_exit()).base}); "
              "the store is read when it starts", file=sys.stderr)
        return EXIT_FAILURE
    reply = _api_result(*api.call("POST", "/api/v1/reload", {"inherit_state": not args.reset_state}),
                        "reload failed")
    for problem in reply["problems"]:
        print(f"fastds: warning: {problem}", file=sys.stderr)
    print(f"fastds: reloaded, generation {reply['generation']}")
    return 0


ADDRESS_TABLE = ("id", "grp", "ip", "mask", "port", "proto", "pattern", "context_info")


def cmd_address_list(args: argparse.Namespace) -> int:
    """List the address table (trusted sources): through the running fastds, else from the store."""
    api = _api_or_none()
    if api is not None:
        rows = _api_result(*api.call("GET", "/api/v1/addresses"), "cannot list")["addresses"]
    else:
        async def load(store):
            await store.check_schema()
            return await store.load_addresses()

        rows = _with_store(load)
    if args.json:
        _print_json(rows)
    else:
        _print_table(ADDRESS_TABLE, rows)
    return 0


def cmd_address_add(args: argparse.Namespace) -> int:
    """Add a trusted source to the address table (validated before anything is written)."""
    body = {"grp": args.grp, "ip": args.ip, "port": args.port, "proto": args.proto, "pattern": args.pattern,
            "context_info": args.context_info, **({"mask": args.mask} if args.mask is not None else {})}
    api = _api_or_none()
    if api is not None:
        reply = _api_result(*api.call("POST", "/api/v1/addresses", body), "address not added")
        print(f"fastds: added address id {reply['id']}{_applied(reply)}")
        return 0
    from fastds.api.validate import address_fields

    return _add_to_store("address", address_fields, body, lambda store, fields: store.add_address(fields))


def cmd_address_rm(args: argparse.Namespace) -> int:
    """Remove an address table row by id."""
    api = _api_or_none()
    if api is not None:
        reply = _api_result(*api.call("DELETE", f"/api/v1/addresses/{args.id}"), "not removed")
        print(f"fastds: removed address id {args.id}{_applied(reply)}")
        return 0
    _with_store(lambda store: store.remove_address(args.id))
    print(f"fastds: removed address id {args.id} from the store")
    return 0


def cmd_cluster_status(args: argparse.Namespace) -> int:
    """Show the cluster's nodes, their last heartbeat, and which destinations each probes."""
    api = _api_or_none()
    if api is None:
        print(f"fastds: fastds is not running (no API at {ApiClient(_settings_or_exit()).base})", file=sys.stderr)
        return EXIT_FAILURE
    reply = _api_result(*api.call("GET", "/api/v1/cluster"), "no cluster status")
    if args.json or not reply.get("enabled"):
        _print_json(reply)
        return 0
    print(f"# cluster {reply['name']}, seen from node {reply['node']}: {'DEGRADED' if reply['degraded'] else 'ok'}"
          + (f" ({reply['error']})" if reply.get("error") else ""))
    probes, now = reply["probes"], time.time()
    _print_table(("id", "sip", "api", "pid", "version", "started", "last_beat", "probes", "state"),
                 [{**node, "probes": len(probes.get(node["id"], [])), "started": _utc(node.get("started_at")),
                   "last_beat": _ago(node.get("beat_at"), now), "state": "draining" if node.get("draining") else "serving"}
                  for node in reply["nodes"]])
    return 0


def _utc(unix_time: float | None) -> str:
    """A Unix time as the operator reads it: 2026-12-07 16:04:47Z."""
    if unix_time is None:
        return ""
    return datetime.datetime.fromtimestamp(unix_time, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _ago(unix_time: float | None, now: float) -> str:
    return "" if unix_time is None else f"{max(0.0, now - unix_time):.1f} s ago"


def cmd_drain(args: argparse.Namespace) -> int:
    """Drain the running fastds, then stop it (as SIGTERM does): new INVITEs get 503 with
    Retry-After while in-dialog requests are routed, until none came for FASTDS_DRAIN_IDLE_S,
    at most FASTDS_DRAIN_TIMEOUT_S."""
    api = _api_or_none()
    if api is None:
        print(f"fastds: fastds is not running (no API at {ApiClient(_settings_or_exit()).base})", file=sys.stderr)
        return EXIT_FAILURE
    reply = _api_result(*api.call("POST", "/api/v1/drain"), "not drained")
    print(f"fastds: {'already ' if reply['already'] else ''}draining: new INVITEs get 503; it stops once no in-dialog "
          f"request came for {reply['idle_s']} s, at the latest in {reply['timeout_s']} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastds", description="SIP load balancer (dispatcher).")
    parser.add_argument("--version", action="version", version=f"fastds {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group, name, handler):
        summary = " ".join(handler.__doc__.split("\n\n")[0].split())  # the docstring's first paragraph, whole
        sub = group.add_parser(name, help=summary, description=summary)
        sub.set_defaults(handler=handler)
        return sub

    command(commands, "run", cmd_run)
    command(commands, "drain", cmd_drain)
    command(commands, "check", cmd_check).add_argument(
        "--offline", action="store_true", help="only the variables: do not open the store nor try the binds")
    db = commands.add_parser("db", help="the store's schema").add_subparsers(dest="db_command", required=True)
    command(db, "init", cmd_db_init)
    ds = commands.add_parser("ds", help="destinations: through the running fastds, else in the store").add_subparsers(
        dest="ds_command", required=True)
    command(ds, "list", cmd_ds_list).add_argument("--json", action="store_true", help="JSON instead of a table")
    add = command(ds, "add", cmd_ds_add)
    add.add_argument("--set", type=int, required=True, help="destination set id")
    add.add_argument("--uri", required=True, help="sip: or sips: URI, e.g. sip:10.0.0.5:5060 or "
                     "sip:10.0.0.5;transport=tcp (TCP and TLS need a tcp: or tls: listener in FASTDS_SIP_LISTEN)")
    add.add_argument("--weight", type=int, default=1)
    add.add_argument("--priority", type=int, default=0)
    add.add_argument("--state", choices=STATE_CHOICES, default="active")
    add.add_argument("--probe-mode", type=int, choices=(0, 1), default=0)
    add.add_argument("--attrs", default="")
    add.add_argument("--description", default="")
    add.add_argument("--socket", default=None)
    command(ds, "rm", cmd_ds_rm).add_argument("id", type=int)
    set_state = command(ds, "set-state", cmd_ds_set_state)
    set_state.add_argument("id", type=int)
    set_state.add_argument("state", choices=STATE_CHOICES)
    command(ds, "reload", cmd_ds_reload).add_argument(
        "--reset-state", action="store_true", help="take states from the store (ds_reload inherit_state=0)")
    address = commands.add_parser("address", help="trusted sources (the permissions address table)").add_subparsers(
        dest="address_command", required=True)
    command(address, "list", cmd_address_list).add_argument("--json", action="store_true", help="JSON instead of a table")
    add = command(address, "add", cmd_address_add)
    add.add_argument("--ip", required=True, help="IPv4 or IPv6 address (with --mask: a network)")
    add.add_argument("--mask", type=int, default=None, help="prefix length; default one address (32 / 128)")
    add.add_argument("--grp", type=int, default=0, help="group (FASTDS_TRUSTED_GROUP picks one; 0 = any)")
    add.add_argument("--port", type=int, default=0, help="source port; 0 = any")
    add.add_argument("--proto", default="any", help="any, udp, tcp, tls, sctp, ws, wss")
    add.add_argument("--pattern", default=None, help="shell wildcards the Request-URI must match")
    add.add_argument("--context-info", default=None)
    command(address, "rm", cmd_address_rm).add_argument("id", type=int)
    cluster = commands.add_parser("cluster", help="the nodes sharing states through Redis").add_subparsers(
        dest="cluster_command", required=True)
    command(cluster, "status", cmd_cluster_status).add_argument("--json", action="store_true", help="JSON instead of a table")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.handler(args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:  # `fastds ds list | head -2`: the reader has gone, as a pipeline means
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())

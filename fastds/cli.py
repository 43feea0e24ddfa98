"""The `fastds` command: run, check, db init, ds list|add|rm|set-state, --version.

Owns argument parsing and exit statuses: 0 ok, 1 runtime failure (store, sockets),
2 bad configuration, usage or input. Reads the environment only through fastds.config.
Subcommands import what they need lazily so `fastds check` starts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import orjson

from fastds import __version__
from fastds.config import effective, load_settings, unknown_variables
from fastds.errors import ConfigError, FastdsError

EXIT_FAILURE = 1
EXIT_USAGE = 2
STATES = {"active": 0, "inactive": 1, "probing": 2, "0": 0, "1": 1, "2": 2}


def _settings_or_exit():
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
    """Validate the environment and print the effective settings as JSON."""
    settings = _settings_or_exit()
    sys.stdout.write(orjson.dumps(effective(settings), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the SIP load balancer in the foreground: master, prober and workers."""
    settings = _settings_or_exit()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s")
    from fastds.procs import master

    return master.run(settings)


def cmd_db_init(args: argparse.Namespace) -> int:
    """Create the OpenSIPS 3.4 tables (version, dispatcher 9, dialplan 5) if absent."""
    _with_store(lambda store: store.init_schema())
    print("fastds: schema ready")
    return 0


def cmd_ds_list(args: argparse.Namespace) -> int:
    """List the destinations of the store."""
    from fastds.dispatch.sets import STATE_NAMES

    async def rows(store):
        await store.check_schema()
        return await store.load_destinations()

    destinations = sorted(_with_store(rows), key=lambda row: (row["setid"], row["id"]))
    if args.json:
        sys.stdout.write(orjson.dumps(destinations, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    columns = ("id", "setid", "destination", "state", "weight", "priority", "probe_mode", "description")
    table = [columns] + [tuple(str(STATE_NAMES.get(row[c], row[c]) if c == "state" else row[c] if row[c] is not None
                                   else "") for c in columns) for row in destinations]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    return 0


def cmd_ds_add(args: argparse.Namespace) -> int:
    """Add a destination (validated before anything is written)."""
    from fastds.dispatch.sets import destination_from_row

    fields = {"setid": args.set, "destination": args.uri, "socket": args.socket, "state": STATES[args.state],
              "probe_mode": args.probe_mode, "weight": str(args.weight), "priority": args.priority,
              "attrs": args.attrs, "description": args.description}
    try:
        destination_from_row(fields)
    except ValueError as exc:
        print(f"fastds: destination not added: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def add(store):
        await store.check_schema()
        return await store.add_destination(fields)

    print(f"fastds: added destination id {_with_store(add)}")
    return 0


def cmd_ds_rm(args: argparse.Namespace) -> int:
    """Remove a destination by id."""
    _with_store(lambda store: store.remove_destination(args.id))
    print(f"fastds: removed destination id {args.id}")
    return 0


def cmd_ds_set_state(args: argparse.Namespace) -> int:
    """Set a destination's stored state: active, inactive or probing."""
    _with_store(lambda store: store.set_state(args.id, STATES[args.state]))
    print(f"fastds: destination id {args.id} is now {args.state}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastds", description="SIP load balancer (dispatcher).")
    parser.add_argument("--version", action="version", version=f"fastds {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group, name, handler):
        sub = group.add_parser(name, help=handler.__doc__.splitlines()[0])
        sub.set_defaults(handler=handler)
        return sub

    command(commands, "run", cmd_run)
    command(commands, "check", cmd_check)
    db = commands.add_parser("db", help="the store's schema").add_subparsers(dest="db_command", required=True)
    command(db, "init", cmd_db_init)
    ds = commands.add_parser("ds", help="destinations in the store").add_subparsers(dest="ds_command", required=True)
    command(ds, "list", cmd_ds_list).add_argument("--json", action="store_true", help="JSON instead of a table")
    add = command(ds, "add", cmd_ds_add)
    add.add_argument("--set", type=int, required=True, help="destination set id")
    add.add_argument("--uri", required=True, help="sip: or sips: URI, e.g. sip:10.0.0.5:5060")
    add.add_argument("--weight", type=int, default=1)
    add.add_argument("--priority", type=int, default=0)
    add.add_argument("--state", choices=sorted(STATES), default="active")
    add.add_argument("--probe-mode", type=int, choices=(0, 1), default=0)
    add.add_argument("--attrs", default="")
    add.add_argument("--description", default="")
    add.add_argument("--socket", default=None)
    command(ds, "rm", cmd_ds_rm).add_argument("id", type=int)
    set_state = command(ds, "set-state", cmd_ds_set_state)
    set_state.add_argument("id", type=int)
    set_state.add_argument("state", choices=sorted(STATES))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())

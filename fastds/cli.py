"""The `fastds` command: run, check, --version (later: db, ds).

Owns argument parsing and exit statuses: 0 ok, 2 bad configuration or usage. Reads the
environment only through fastds.config. Subcommands import what they need lazily so
`fastds check` works without starting anything.
"""

from __future__ import annotations

import argparse
import sys

import orjson

from fastds import __version__
from fastds.config import effective, load_settings, unknown_variables
from fastds.errors import ConfigError

EXIT_CONFIG = 2


def _settings_or_exit():
    for warning in unknown_variables():
        print(f"fastds: warning: {warning}", file=sys.stderr)
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"fastds: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the environment and print the effective settings as JSON."""
    settings = _settings_or_exit()
    sys.stdout.write(orjson.dumps(effective(settings), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the SIP load balancer in the foreground."""
    _settings_or_exit()
    print("fastds run: the SIP proxy is not part of this build yet; "
          "`fastds check` validates the configuration", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastds", description="SIP load balancer (dispatcher).")
    parser.add_argument("--version", action="version", version=f"fastds {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, handler in (("run", cmd_run), ("check", cmd_check)):
        command = commands.add_parser(name, help=handler.__doc__.splitlines()[0])
        command.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())

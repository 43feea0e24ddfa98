"""CPU per call of several fastds source trees and Kamailio, side by side, runs interleaved.

Each variant is a fastds source tree (a git worktree of another commit, built there with
`python setup.py build_ext --inplace`) or `kamailio`; every round runs each variant once
(bench/load.py's run_once: one SIPp socket, the given rate and hold) from its own tree, so a
noisy machine moves all of them alike; the medians of the rounds are printed last. Compares
commits without recording in bench/results (bench/load.py is the benchmark of record). A
variant TREE+FASTDS_NAME=value runs that tree with the variable set (e.g. capture on).

    git worktree add /tmp/before HEAD~3 && (cd /tmp/before && python setup.py build_ext --inplace -q)
    python -m bench.ab --rate 1000 --duration 20 --runs 3 . /tmp/before kamailio
    python -m bench.ab --rate 200 . .+FASTDS_HEP_DESTINATION=udp:127.0.0.1:9060
    python -m bench.ab --rate 200 --scenario failover . /tmp/before
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

RUN = ("import dataclasses, json, sys, fastds; import bench.load as load; "
       "run = load.run_once(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[8], sys.argv[6], "
       "int(sys.argv[5]), **({'settings': json.loads(sys.argv[7])} if sys.argv[7] != '{}' else {})); "
       "print(json.dumps(dict(dataclasses.asdict(run), source=fastds.__file__)))")


def parse_variant(variant: str) -> tuple[str, Path, dict[str, str]]:
    """kamailio, or TREE[+FASTDS_NAME=value...] -> (kind, tree, settings by lower-case name)."""
    if variant == "kamailio":
        return "kamailio", Path(__file__).parents[1], {}
    tree, *assignments = variant.split("+")
    settings = {}
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not (equals and name.startswith("FASTDS_")):
            raise SystemExit(f"{variant}: expected TREE+FASTDS_NAME=value, not {assignment!r}")
        settings[name.removeprefix("FASTDS_").lower()] = value
    return "fastds", Path(tree), settings


def run_variant(variant: str, args: argparse.Namespace) -> dict:
    kind, tree, settings = parse_variant(variant)
    processes = args.kamailio_children if kind == "kamailio" else args.fastds_workers
    done = subprocess.run([sys.executable, "-c", RUN, kind, str(processes), str(args.rate), str(args.duration),
                           str(args.hold_ms), args.caller, json.dumps(settings), args.scenario], cwd=tree.resolve(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{variant}: the run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="fastds source trees, or kamailio")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per run")
    parser.add_argument("--hold-ms", type=int, default=1000)
    parser.add_argument("--caller", default="u1",
                        help="SIPp -t of the caller: u1, un, t1 (one TCP connection), tt (t1, and callees on TCP)")
    parser.add_argument("--scenario", choices=("normal", "failover"), default="normal",
                        help="bench/load.py's: two callees, or the failover run (callees ok, 503, dead)")
    parser.add_argument("--runs", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--fastds-workers", type=int, default=2)
    parser.add_argument("--kamailio-children", type=int, default=4)
    args = parser.parse_args()
    per_call: dict[str, list[float]] = {variant: [] for variant in args.variants}
    for _ in range(args.runs):
        for variant in args.variants:
            run = run_variant(variant, args)
            per_call[variant].append(run["cpu_us_per_call"])
            print(f"{variant}: {run['cpu_us_per_call']} µs CPU/call, {run['completed']}/{run['attempted']} calls,"
                  f" shares {run['cpu_shares'][:2]}, kernel {run['kernel_pct']} %,"
                  f" wake-ups/call {run.get('wakeups_per_call', ())[:2]}"
                  + (f" ({run['source']})" if variant != "kamailio" else ""), flush=True)
    for variant, figures in per_call.items():
        print(f"median {variant}: {statistics.median(figures)} µs CPU/call of {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

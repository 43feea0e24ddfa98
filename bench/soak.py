"""Soak: fastds under steady load for a long time, sampled every 10 s, to show whether anything grows.

`python -m bench.soak` runs 30 minutes at 70 % of the highest passing rate (--highest,
default 1,000 calls/s: 60 s from one socket passed with 59,997 of 60,000 calls on
2026-12-01, 1,400/s lost 0.6 %; the same machine kind ran 2,000/s a week earlier, when its
cores were about 3x faster by bench/micro/call.py), the normal production case: SIPp's single caller socket
(-t u1), 1 s call hold, two callees, FASTDS_WORKERS=2, trusted sources and the flood limit
on (--no-edge: off). Every --sample-s it records the
RSS and CPU of every fastds process, CPU per completed call in the interval, the open
transactions (the API's counters) and the setup time p99 of the interval (SIPp -trace_rtt).
Writes bench/results/soak-<date>.json and bench/results/soak.png (needs matplotlib:
`pip install -e '.[bench]'`) and prints the verdict: each process's RSS at the end within
±5 % of its value after the warm-up, CPU per call of the last third within ±10 % of the
first third after the warm-up. Not a test: nothing here is asserted in CI.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson

from bench.load import RESULTS, SCENARIOS, Fastds, cpu_seconds, process_tree, sipp
from fastds.loopback import free_udp_port, stop


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode() or str(pid)
    except OSError:
        return str(pid)


def sipp_completed(stat_file: Path) -> int:
    """Completed calls so far, from SIPp's periodic statistics file."""
    if not stat_file.exists():
        return 0
    rows = list(csv.reader(stat_file.read_text().splitlines(), delimiter=";"))
    return int(dict(zip(rows[0], rows[-1]))["SuccessfulCall(C)"]) if len(rows) > 1 else 0


class SetupTimes:
    """Reads SIPp's -trace_rtt file as it grows (date_ms since SIPp started;rtt_ms;rtd):
    each call returns the setup times (ms) of the lines added since the last one."""

    def __init__(self, workdir: Path):
        self._workdir = workdir
        self._offset = 0
        self._partial = b""

    def new(self) -> list[float]:
        paths = list(self._workdir.glob("*_rtt.csv"))
        if not paths:
            return []
        with open(paths[0], "rb") as file:
            file.seek(self._offset)
            data = self._partial + file.read()
            self._offset = file.tell()
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next read
        found = []
        for line in lines:
            parts = line.split(b";")
            try:
                found.append(float(parts[1]))
            except (IndexError, ValueError):  # the header line
                continue
        return found


def open_transactions(api_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/v1/stats", timeout=10) as response:
        return orjson.loads(response.read())["totals"]["transactions_open"]


def verdict(samples: list[dict], warmup_s: float) -> dict:
    """After the warm-up, the first third against the last third (medians: the allocator's
    RSS moves up and down by a few MiB as arenas are taken and given back, and one sample
    would say more about that moment than about a trend), plus each process's range."""
    settled = [s for s in samples if s["t_s"] >= warmup_s and s["calls"]]
    if len(settled) < 6:
        return {"note": "too short for a verdict"}
    third = len(settled) // 3
    early, late = settled[:third], settled[-third:]
    rss = {}
    for name in settled[0]["rss_kib"]:
        before = statistics.median(s["rss_kib"][name] for s in early if name in s["rss_kib"])
        after = statistics.median(s["rss_kib"][name] for s in late if name in s["rss_kib"])
        seen = [s["rss_kib"][name] for s in settled if name in s["rss_kib"]]
        rss[name] = {"first_third_kib": before, "last_third_kib": after,
                     "change_pct": round(100 * (after - before) / before, 2), "min_kib": min(seen), "max_kib": max(seen)}
    cpu_early = statistics.median(s["cpu_us_per_call"] for s in early)
    cpu_late = statistics.median(s["cpu_us_per_call"] for s in late)
    return {"rss": rss, "rss_within_5pct": all(abs(r["change_pct"]) <= 5 for r in rss.values()),
            "cpu_us_per_call_first_third": round(cpu_early, 1), "cpu_us_per_call_last_third": round(cpu_late, 1),
            "cpu_flat_within_10pct": abs(cpu_late - cpu_early) <= 0.1 * cpu_early}


def plot(samples: list[dict], summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s["t_s"] / 60 for s in samples]
    figure, axes = plt.subplots(2, 2, figsize=(12, 7.5))
    rss_axis, cpu_axis, txn_axis, p99_axis = axes.flat
    for name in samples[-1]["rss_kib"]:
        rss_axis.plot(minutes, [s["rss_kib"].get(name, float("nan")) / 1024 for s in samples], label=name)
    rss_axis.set(ylabel="RSS MiB", title="RSS of every fastds process")
    cpu_axis.plot(minutes, [s["cpu_us_per_call"] for s in samples])
    cpu_axis.set(ylabel="CPU-µs per completed call", title="fastds CPU per call (10 s intervals)")
    txn_axis.plot(minutes, [s["transactions_open"] for s in samples])
    txn_axis.set(ylabel="transactions", title="open transactions (all workers)")
    p99_axis.plot(minutes, [s["setup_p99_ms"] for s in samples])
    p99_axis.set(ylabel="ms", title="call setup p99 (INVITE to 200)")
    for axis in axes.flat:
        axis.set_xlabel("minutes")
        axis.grid(alpha=0.3)
    rss_axis.legend(fontsize=7)
    figure.suptitle(f"fastds soak: {summary['rate']} calls/s from one socket, 1 s hold, "
                    f"{summary['workers']} workers, {time.strftime('%Y-%m-%d')}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--highest", type=int, default=1000, help="highest passing calls/s measured")
    parser.add_argument("--fraction", type=float, default=0.7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--warmup-s", type=float, default=300.0)
    parser.add_argument("--no-edge", action="store_true", help="without trusted sources and the flood limit")
    parser.add_argument("--from-json", type=Path, help="only the verdict and the plot again, from a run's JSON")
    args = parser.parse_args()
    if args.from_json:
        run = orjson.loads(args.from_json.read_bytes())
        run["summary"]["verdict"] = verdict(run["samples"], args.warmup_s)
        args.from_json.write_bytes(orjson.dumps(run, option=orjson.OPT_INDENT_2))
        plot(run["samples"], run["summary"], args.from_json.with_suffix(".png"))
        print(orjson.dumps(run["summary"], option=orjson.OPT_INDENT_2).decode())
        return 0
    rate = int(args.highest * args.fraction)
    duration_s = int(args.minutes * 60)
    workdir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    ports = [free_udp_port(), free_udp_port()]
    uases = [sipp(["-sf", str(SCENARIOS / "uas.xml"), "-p", str(port), "-aa", "-timeout", f"{duration_s + 120}s"],
                  workdir, f"uas{i}") for i, port in enumerate(ports)]
    # the edge's checks on, as an exposed edge runs: the caller is a trusted source, and
    # FASTDS_PIKE_TRUSTED=1 makes it count against a flood limit far above its rate
    edge = {} if args.no_edge else {"trusted_sources": "127.0.0.1/32", "pike_reqs": 100 * rate, "pike_trusted": 1}
    fastds = Fastds(workdir, args.workers, **edge)
    samples: list[dict] = []
    try:
        fastds.start(ports)
        uac = sipp(["-sf", str(SCENARIOS / "uac.xml"), f"127.0.0.1:{fastds.port}", "-p", str(free_udp_port()),
                    "-t", "u1", "-s", "soak", "-m", str(rate * duration_s), "-r", str(rate), "-d", "1000",
                    "-recv_timeout", "10s", "-timeout", f"{duration_s + 60}s", "-trace_stat", "-stf", "uac.csv",
                    "-fd", "5", "-trace_rtt", "-rtt_freq", "500"], workdir, "uac")
        started = time.time()
        pids = process_tree(fastds.process.pid)
        names = {pid: f"{process_name(pid).removeprefix('fastds: ')} ({pid})" for pid in pids}
        cpu_before, calls_before, at = cpu_seconds(pids), 0, started
        setup_times = SetupTimes(workdir)
        while uac.poll() is None and time.time() - started < duration_s + 90:
            time.sleep(max(0.0, at + args.sample_s - time.time()))
            now = time.time()
            cpu_now, calls_now = cpu_seconds(pids), sipp_completed(workdir / "uac.csv")
            cpu = sum(cpu_now.values()) - sum(cpu_before.get(pid, 0) for pid in cpu_now)
            calls = calls_now - calls_before
            setups = setup_times.new()  # SIPp writes them in batches of 500 (-rtt_freq): close to the interval
            samples.append({
                "t_s": round(now - started, 1), "calls": calls,
                "cpu_us_per_call": round(1e6 * cpu / calls, 1) if calls else None,
                "cpu_share": {names[pid]: round((cpu_now[pid] - cpu_before.get(pid, 0)) / max(now - at, 1e-9), 3)
                              for pid in cpu_now},
                "rss_kib": {names[pid]: rss_kib(pid) for pid in pids if rss_kib(pid) is not None},
                "transactions_open": open_transactions(fastds.api_port),
                "setup_p99_ms": round(sorted(setups)[int(0.99 * (len(setups) - 1))], 2) if setups else None,
            })
            print(orjson.dumps(samples[-1]).decode(), flush=True)
            cpu_before, calls_before, at = cpu_now, calls_now, now
        stop(uac)
    finally:
        fastds.stop()
        for uas in uases:
            stop(uas)
    rows = list(csv.reader((workdir / "uac.csv").read_text().splitlines(), delimiter=";"))
    totals = dict(zip(rows[0], rows[-1]))
    summary = {"rate": rate, "minutes": args.minutes, "workers": args.workers, "caller": "u1", "hold_ms": 1000,
               "edge_settings": edge,
               "completed": int(totals["SuccessfulCall(C)"]), "failed": int(totals["FailedCall(C)"]),
               "verdict": verdict(samples, args.warmup_s), "when": time.strftime("%Y-%m-%d %H:%M:%S"),
               "loadavg_1m": os.getloadavg()[0]}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"soak-{time.strftime('%Y%m%d')}.json"
    out.write_bytes(orjson.dumps({"summary": summary, "samples": samples}, option=orjson.OPT_INDENT_2))
    try:
        plot(samples, summary, RESULTS / "soak.png")
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot")
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

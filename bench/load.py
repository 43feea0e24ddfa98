"""Load benchmark: fastds and Kamailio side by side, same SIPp load, same backends, one run.

`python -m bench.load` runs everything (about 20 minutes on a 2-core machine): each proxy at
a fixed rate, a step-up to the highest rate with < 0.1 % failed calls, and a failover run
(one backend answering 503, one dead port, one healthy). Every figure is the median of
--runs runs. Results: JSON lines in bench/results/runs.jsonl, bench/results/summary.md and
the plot bench/results/load.png (needs matplotlib: `pip install -e '.[bench]'`).
`python -m bench.load --smoke` is the 10-second check CI runs against fastds alone.

Per run: calls attempted / completed / failed, achieved calls/s, setup time p50 / p99 (the
INVITE-to-200 time of each call, from SIPp's -trace_rtt), CPU seconds of all the proxy's
processes (utime + stime from /proc, before and after) and so CPU-µs per completed call,
SIPp's own CPU (the UAC's rusage), and the load average. Everything listens on 127.0.0.1;
fastds runs with FASTDS_EGRESS_ALLOW=127.0.0.0/8. Each SIPp run is bounded by -m and
-timeout, and every process started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from fastds import loopback
from fastds.loopback import free_tcp_port, free_udp_port, stop
from fastds.store.sqlite import SqliteStore

BENCH = Path(__file__).parent
SCENARIOS = BENCH / "sipp"
RESULTS = BENCH / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CALLER_MODES = {"u1": "one socket, as a trunk or an SBC sends", "un": "a socket per call",
                "t1": "one TCP connection, callees on UDP",
                "tt": "one TCP connection, callees on TCP too"}  # SIPp -t (tt: t1, and -t t1 for the callees)
FR_TIMEOUT_MS = 1000  # both proxies: a dead backend costs one second in the failover run


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            todo += [int(child) for child in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except OSError:
            pass
    return pids


def cpu_times(pids: list[int]) -> dict[int, tuple[float, float]]:
    """(utime, stime) of each process, in seconds."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK)
    return found


def wakeups(pids: list[int]) -> dict[int, int]:
    """Voluntary context switches of each process (/proc/PID/status): the times it slept and was woken."""
    found = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    found[pid] = int(line.split()[1])
        except OSError:
            continue
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each process, in seconds."""
    return {pid: user + kernel for pid, (user, kernel) in cpu_times(pids).items()}


def wait_for_line(log: Path, needle: bytes, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and needle in log.read_bytes():
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{process.args[0]} did not start: {log.read_text()[-2000:] if log.exists() else ''}")


# -- proxies under test ------------------------------------------------------------------

def backend_uri(port: int, transport: str) -> str:
    return f"sip:127.0.0.1:{port}" + ("" if transport == "udp" else f";transport={transport}")


class Fastds:
    name = "fastds"

    def __init__(self, workdir: Path, workers: int, tcp: bool = False, **settings):
        """tcp: listen on TCP too (at tcp_port); settings: more FASTDS_* by lower-case name
        (bench/soak.py turns the edge's checks on)."""
        self.workdir, self.workers, self.settings = workdir, workers, settings
        self.port = free_udp_port()
        self.tcp_port = free_tcp_port() if tcp else None
        self.api_port = free_tcp_port()

    def start(self, backends: list[int], transport: str = "udp") -> None:
        """backends: the callees' ports, reached over `transport` (udp or tcp)."""
        db = self.workdir / "fastds.db"

        async def fill():
            store = SqliteStore(str(db))
            await store.init_schema()
            for port in backends:
                await store.add_destination({"setid": 1, "destination": backend_uri(port, transport)})
            await store.close()

        asyncio.run(fill())
        settings = {"workers": self.workers, "default_alg": 2, "default_flags": "f", "fr_timeout_ms": FR_TIMEOUT_MS,
                    "ping_interval_s": 10, "probing_threshold": 3, **self.settings}
        if self.tcp_port is not None:
            settings["sip_listen"] = f"udp:127.0.0.1:{self.port},tcp:127.0.0.1:{self.tcp_port}"
        env = loopback.environment(self.workdir, db, self.port, self.api_port, os.environ["PATH"], **settings)
        self.log = self.workdir / "fastds.log"
        self.log.unlink(missing_ok=True)
        self.process = loopback.start(env, self.log)
        loopback.wait_ready(self.process, self.log)  # every worker has bound

    def stop(self) -> None:
        stop(self.process, 60)


class Kamailio:
    name = "kamailio"

    def __init__(self, workdir: Path, children: int, tcp: bool = False):
        self.workdir, self.children = workdir, children
        self.port = free_udp_port()
        self.tcp_port = free_tcp_port() if tcp else None

    def start(self, backends: list[int], transport: str = "udp") -> None:
        """-m 1024: tm keeps each transaction ~5 s after it ends; 256 MB of shared memory
        ran out at 2,000 calls/s ("could not allocate shared memory from shm pool")."""
        listing = self.workdir / "dispatcher.list"
        listing.write_text("".join(f"1 {backend_uri(port, transport)}\n" for port in backends))
        self.log = self.workdir / "kamailio.log"
        command = [shutil.which("kamailio") or "/usr/sbin/kamailio", "-f", str(BENCH / "kamailio" / "kamailio.cfg"),
                   "-DD", "-E", "-m", "1024", "-M", "16", "-P", str(self.workdir / "kamailio.pid"),
                   "-A", f"LISTEN=udp:127.0.0.1:{self.port}", "-A", f'LIST_FILE="{listing}"',
                   "-A", f"CHILDREN={self.children}", "-A", f"FR_TIMER={FR_TIMEOUT_MS}"]
        if self.tcp_port is not None:
            command += ["-A", f"LISTEN_TCP=tcp:127.0.0.1:{self.tcp_port}"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for_line(self.log, b"Listening on", self.process, 30)
        time.sleep(1.0)

    def stop(self) -> None:
        stop(self.process, 30)


# -- one run ----------------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    proxy: str
    processes: int
    scenario: str
    rate: int
    duration_s: int
    attempted: int
    completed: int
    failed: int
    achieved_cps: float
    setup_p50_ms: float
    setup_p99_ms: float
    proxy_cpu_s: float
    cpu_us_per_call: float
    sipp_cpu_s: float
    loadavg_1m: float
    when: str
    caller: str = "un"  # SIPp -t of the caller (runs recorded before it was a choice were un)
    hold_ms: int = 100
    cpu_shares: tuple = ()  # each proxy process's share of the proxy's CPU, largest first
    sipp_cpu_pct: float = 0.0  # the caller's CPU over its run, % of one core (near 100: SIPp is the limit)
    kernel_pct: float = 0.0  # the kernel's part (stime) of the proxy's CPU, %
    wakeups_per_call: tuple = ()  # each proxy process's voluntary context switches per completed call, in
    # the order of cpu_shares (largest CPU first)

    @property
    def failed_pct(self) -> float:
        return 100.0 * self.failed / max(self.attempted, 1)


SIPP_LIMIT_PCT = 90  # a step that fails with the caller this busy failed for want of load generator
SIPP_BUFFER_BYTES = 4 * 1024 * 1024  # SIPp's default 64 KB socket buffers dropped datagrams of both proxies' bursts at 4,000/s


def sipp(args: list[str], workdir: Path, name: str) -> subprocess.Popen:
    log = open(workdir / f"{name}.log", "wb")
    return subprocess.Popen(["sipp", *args, "-i", "127.0.0.1", "-nostdin", "-buff_size", str(SIPP_BUFFER_BYTES)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=workdir)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_once(kind: str, processes: int, rate: int, duration_s: int, scenario: str, caller: str = "u1",
             hold_ms: int = 1000, settings: dict[str, str] | None = None) -> Run:
    """settings: FASTDS_* overrides for fastds, by lower-case name."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
    backends, uases = [], []
    layout = ["uas_503.xml", None, "uas.xml"] if scenario == "failover" else ["uas.xml", "uas.xml"]
    callees_tcp = caller == "tt"
    for index, backend in enumerate(layout):
        port = free_tcp_port() if callees_tcp else free_udp_port()
        backends.append(port)
        if backend is not None:  # None: a dead port
            uases.append(sipp(["-sf", str(SCENARIOS / backend), "-p", str(port), "-aa", "-timeout",
                               f"{duration_s + 60}s", "-t", "t1" if callees_tcp else "u1"], workdir, f"uas{index}"))
    tcp = caller.startswith("t")
    proxy = Fastds(workdir, processes, tcp, **(settings or {})) if kind == "fastds" else Kamailio(workdir, processes, tcp)
    try:
        proxy.start(backends, "tcp" if callees_tcp else "udp")
        calls = rate * duration_s
        pids = process_tree(proxy.process.pid)
        before, woken_before = cpu_times(pids), wakeups(pids)
        uac = sipp(["-sf", str(SCENARIOS / "uac.xml"), f"127.0.0.1:{proxy.tcp_port if tcp else proxy.port}",
                    "-p", str(free_tcp_port() if tcp else free_udp_port()),  # SIPp binds it for its transport
                    "-t", "t1" if callees_tcp else caller, "-max_socket", str(min(max(4 * rate, 1000), 15000)), "-s", "bench",
                    "-m", str(calls), "-r", str(rate), "-d", str(hold_ms), "-recv_timeout", "10s",
                    "-timeout", f"{duration_s + 40}s", "-trace_stat", "-stf", "uac.csv", "-trace_rtt",
                    "-rtt_freq", "1"], workdir, "uac")
        _, status, usage = os.wait4(uac.pid, 0)
        uac.returncode = os.waitstatus_to_exitcode(status)
        after_pids = process_tree(proxy.process.pid)
        after, woken_after = cpu_times(after_pids), wakeups(after_pids)
    finally:
        proxy.stop()
        for uas in uases:
            stop(uas)
    rows = list(csv.reader((workdir / "uac.csv").read_text().splitlines(), delimiter=";"))
    stats = dict(zip(rows[0], rows[-1]))
    completed, failed = int(stats["SuccessfulCall(C)"]), int(stats["FailedCall(C)"])
    # SIPp's ElapsedTime(C) is whole seconds (5 % of a 20 s run): the start and last dump's Unix times instead
    elapsed = float(stats["CurrentTime"].split("\t")[2]) - float(stats["StartTime"].split("\t")[2])
    setup_ms = []
    for path in workdir.glob("*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 2 and parts[1].strip():
                setup_ms.append(float(parts[1]))
    by_cpu = sorted(after, key=lambda pid: sum(after[pid]) - sum(before.get(pid, (0.0, 0.0))), reverse=True)
    used = [sum(after[pid]) - sum(before.get(pid, (0.0, 0.0))) for pid in by_cpu]
    woken = [woken_after.get(pid, 0) - woken_before.get(pid, 0) for pid in by_cpu]
    proxy_cpu = sum(used)
    kernel_cpu = sum(after[pid][1] - before.get(pid, (0.0, 0.0))[1] for pid in after)
    shutil.rmtree(workdir, ignore_errors=True)
    return Run(kind, processes, scenario, rate, duration_s, int(stats["OutgoingCall(C)"]), completed, failed,
               round(completed / max(elapsed - hold_ms / 1000, 1e-9), 1), round(percentile(setup_ms, 0.5), 2),
               round(percentile(setup_ms, 0.99), 2), round(proxy_cpu, 3),
               round(1e6 * proxy_cpu / max(completed, 1), 1), round(usage.ru_utime + usage.ru_stime, 3),
               os.getloadavg()[0], time.strftime("%Y-%m-%d %H:%M:%S"), caller, hold_ms,
               tuple(round(share / max(proxy_cpu, 1e-9), 3) for share in used),
               round(100 * (usage.ru_utime + usage.ru_stime) / max(elapsed, 1e-9), 1),
               round(100 * kernel_cpu / max(proxy_cpu, 1e-9), 1),
               tuple(round(count / max(completed, 1), 2) for count in woken))


def median_run(runs: list[Run]) -> dict:
    """The median of every measured figure over repeated runs."""
    first = runs[0]
    numbers = ("attempted", "completed", "failed", "achieved_cps", "setup_p50_ms", "setup_p99_ms", "proxy_cpu_s",
               "cpu_us_per_call", "sipp_cpu_s", "sipp_cpu_pct", "kernel_pct", "loadavg_1m")
    merged = {field: statistics.median(getattr(run, field) for run in runs) for field in numbers}
    merged.update(proxy=first.proxy, processes=first.processes, scenario=first.scenario, rate=first.rate,
                  duration_s=first.duration_s,
                  caller=first.caller, cpu_shares=first.cpu_shares,
                  wakeups_per_call=tuple(statistics.median(counts) for counts in zip(*(run.wakeups_per_call for run in runs))),
                  runs=len(runs), failed_pct=statistics.median(run.failed_pct for run in runs))
    return merged


def measure(kind: str, processes: int, rate: int, duration_s: int, scenario: str, runs: int, out, caller: str,
            hold_ms: int) -> list[dict]:
    """`runs` runs, each appended to `out` as it ends; returns them as records."""
    found = []
    for _ in range(runs):
        run = run_once(kind, processes, rate, duration_s, scenario, caller, hold_ms)
        record = dataclasses.asdict(run)
        out.write(orjson.dumps(record) + b"\n")
        out.flush()
        print(f"  {kind:8} {scenario:8} {rate:5d}/s: {run.completed}/{run.attempted} ok, {run.failed_pct:.2f}% failed,"
              f" {run.cpu_us_per_call:.0f} µs CPU/call (shares {run.cpu_shares[:3]},"
              f" wake-ups/call {run.wakeups_per_call[:3]}), setup p50 {run.setup_p50_ms}"
              f" p99 {run.setup_p99_ms} ms, SIPp {run.sipp_cpu_s} s CPU ({run.sipp_cpu_pct:.0f} % of a core)",
              flush=True)
        found.append(record)
    return found


# -- the report ----------------------------------------------------------------------------------

def plot(points: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cpu_axis, failed_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, rows in points.items():
        rows = sorted(rows, key=lambda row: row["rate"])
        cpu_axis.plot([r["rate"] for r in rows], [r["cpu_us_per_call"] for r in rows], marker="o", label=name)
        failed_axis.plot([r["rate"] for r in rows], [r["failed_pct"] for r in rows], marker="o", label=name)
    cpu_axis.set(xlabel="offered calls/s", ylabel="proxy CPU-µs per completed call", title="CPU per call")
    failed_axis.set(xlabel="offered calls/s", ylabel="failed calls %", title="Failed calls")
    failed_axis.axhline(0.1, color="grey", linestyle=":", linewidth=1)
    for axis in (cpu_axis, failed_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(f"fastds vs Kamailio 5.6, SIPp on one {os.cpu_count()}-core machine, {time.strftime('%Y-%m-%d')}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def percent(value: float) -> str:
    return f"{value:.0f} %" if value else "-"  # 0: a run recorded before the figure was


def table(rows: list[dict]) -> str:
    lines = ["| proxy | processes | caller | scenario | offered/s | achieved/s | completed | failed % | setup p50 ms |"
             " setup p99 ms | proxy CPU-µs/call | of it kernel | CPU shares (largest 3) | wake-ups/call (same 3) |"
             " SIPp CPU % of a core | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        shares = " / ".join(f"{100 * share:.0f} %" for share in r["cpu_shares"][:3]) or "-"
        woken = " / ".join(f"{count:.2f}" for count in r.get("wakeups_per_call", ())[:3]) or "-"
        lines.append(f"| {r['proxy']} | {r['processes']} | {r['caller']} | {r['scenario']} | {r['rate']} |"
                     f" {r['achieved_cps']:.0f} | {r['completed']:.0f} | {r['failed_pct']:.3f} | {r['setup_p50_ms']:.2f} |"
                     f" {r['setup_p99_ms']:.2f} | {r['cpu_us_per_call']:.0f} | {percent(r.get('kernel_pct', 0))} | {shares} |"
                     f" {woken} |"
                     f" {percent(r.get('sipp_cpu_pct', 0))} |"
                     f" {r['loadavg_1m']:.2f} |")
    return "\n".join(lines) + "\n"


SETUP_P99_OK_MS = 200  # a proxy that answers this fast is not what held the caller back


def passes(row: dict) -> bool:
    return row["failed_pct"] < 0.1 and row["achieved_cps"] >= 0.97 * row["rate"]


def generator_limited(row: dict) -> bool:
    """The step failed only because SIPp did not offer the rate: it is busy (SIPP_LIMIT_PCT),
    or it fell behind its own pacing while the proxy failed nothing and answered fast."""
    return row.get("sipp_cpu_pct", 0) >= SIPP_LIMIT_PCT or (
        row["failed_pct"] < 0.1 and row["setup_p99_ms"] <= SETUP_P99_OK_MS)


def write_report(runs: list[dict], fixed_rate: int) -> str:
    """summary.md and load.png from recorded runs: medians per proxy, scenario and rate."""
    groups: dict[tuple, list[Run]] = {}
    for record in runs:
        run = Run(**record)
        groups.setdefault((run.proxy, run.processes, run.caller, run.hold_ms, run.scenario, run.rate), []).append(run)
    rows = [median_run(found) for _, found in sorted(groups.items())]
    normal = [r for r in rows if r["scenario"] == "normal"]
    first = Run(**runs[0])
    fixed = [r for r in normal if r["rate"] == fixed_rate] + [r for r in rows if r["scenario"] == "failover"]
    sustained = [r for r in rows if r["scenario"] == "sustained"]
    highest, limit = {}, {}
    for name in dict.fromkeys(r["proxy"] for r in normal):
        for row in sorted((r for r in normal if r["proxy"] == name), key=lambda r: r["rate"]):
            if not passes(row):
                limit[name] = (f" (at {row['rate']}/s SIPp offered {row['achieved_cps']:.0f}/s at"
                               f" {row.get('sipp_cpu_pct', 0):.0f} % of a core and {row['failed_pct']:.3f} % failed: "
                               + ("the load generator is the limit, not the proxy)" if generator_limited(row)
                                  else "the proxy failed)"))
                break
            highest[name] = row["rate"]
    report = [f"Machine: {os.cpu_count()} cores; runs of {first.when[:10]}; medians of"
              f" {min(r['runs'] for r in rows)}+ runs of {first.duration_s} s; caller SIPp -t {first.caller}"
              f" ({CALLER_MODES[first.caller]}); calls hold {first.hold_ms} ms;"
              f" FR timer {FR_TIMEOUT_MS} ms for both.", "", f"At {fixed_rate} calls/s, and the failover run:", "",
              table(fixed), "Step-up (every rate run):", "", table(sorted(normal, key=lambda r: (r["proxy"], r["rate"]))),
              f"Highest offered rate with < 0.1 % failed calls (and ≥ 97 % of it achieved), SIPp -t {first.caller},"
              f" {first.hold_ms} ms calls, {first.duration_s} s steps: " +
              ", ".join(f"{name} {rate}/s{limit.get(name, ' (passed every rate run)')}" for name, rate in highest.items())
              + "\n"]
    if sustained:
        report += [f"Sustained at the highest passing rate ({sustained[0]['duration_s']:.0f} s runs):", "", table(sustained)]
    (RESULTS / "summary.md").write_text("\n".join(report))
    points: dict[str, list[dict]] = {}
    for row in normal:
        points.setdefault(row["proxy"], []).append(row)
    if any(len(found) > 1 for found in points.values()):
        plot(points, RESULTS / "load.png")
    return "\n".join(report)


def step_up_rates(first: str, step: int, top: int):
    """The listed rates, then on by `step` up to `top` (the caller stops at the first failure)."""
    rates = [int(rate) for rate in first.split(",")]
    yield from rates
    yield from range(rates[-1] + step, top + 1, step)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxies", default="fastds,kamailio")
    parser.add_argument("--fastds-workers", type=int, default=2)
    parser.add_argument("--kamailio-children", type=int, default=4)
    parser.add_argument("--rate", type=int, default=1000, help="the fixed rate of the side-by-side table")
    parser.add_argument("--step-rates", default="1000,1500,2000,2500,3000",
                        help="the step-up's first rates; after the last it goes on by --step-by until the proxy fails")
    parser.add_argument("--step-by", type=int, default=1000)
    parser.add_argument("--step-max", type=int, default=40000, help="where the step-up stops if nothing failed")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per run")
    parser.add_argument("--caller", choices=sorted(CALLER_MODES), default="u1",
                        help="SIPp -t: u1 one socket (a trunk, the normal case), un a socket per call, t1 one TCP"
                             " connection, tt one TCP connection and callees on TCP")
    parser.add_argument("--hold-ms", type=int, default=1000, help="how long each call is held")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument("--skip-step-up", action="store_true")
    parser.add_argument("--sustained-s", type=int, default=60,
                        help="after the step-up, each proxy this long at its highest passing rate (0: not)")
    parser.add_argument("--skip-failover", action="store_true")
    parser.add_argument("--report", action="store_true", help="only rebuild summary.md and load.png from runs.jsonl")
    parser.add_argument("--since", default="", help="with --report: only the runs recorded at or after this"
                                                    " 'YYYY-MM-DD HH:MM:SS' (one benchmark's runs)")
    parser.add_argument("--smoke", action="store_true", help="fastds alone, 50 calls/s for 10 s, once; CI's check")
    args = parser.parse_args()
    if args.smoke:
        run = run_once("fastds", 2, 50, 10, "normal")
        print(orjson.dumps(dataclasses.asdict(run)).decode())
        return 0 if run.completed == run.attempted == 500 and run.cpu_us_per_call > 0 else 1
    RESULTS.mkdir(exist_ok=True)
    if args.report:
        runs = [orjson.loads(line) for line in (RESULTS / "runs.jsonl").read_bytes().splitlines() if line]
        runs = [run for run in runs if run["when"] >= args.since]
        print(write_report(runs, args.rate))
        return 0
    processes = {"fastds": args.fastds_workers, "kamailio": args.kamailio_children}
    proxies = args.proxies.split(",")
    recorded: list[dict] = []
    with open(RESULTS / "runs.jsonl", "ab") as out:
        def measure_into(name: str, rate: int, scenario: str, duration_s: int = args.duration) -> dict:
            found = measure(name, processes[name], rate, duration_s, scenario, args.runs, out, args.caller,
                            args.hold_ms)
            recorded.extend(found)
            return median_run([Run(**record) for record in found])

        fixed = {name: measure_into(name, args.rate, "normal") for name in proxies}
        if not args.skip_failover:
            for name in proxies:
                measure_into(name, min(args.rate, 200), "failover")
        if not args.skip_step_up:
            highest = {name: args.rate for name in proxies if passes(fixed[name])}  # where steps start above it
            for name in proxies:
                for rate in step_up_rates(args.step_rates, args.step_by, args.step_max):
                    if rate != args.rate and not passes(measure_into(name, rate, "normal")):
                        break
                    highest[name] = rate
            if args.sustained_s:
                for name, rate in highest.items():
                    measure_into(name, rate, "sustained", args.sustained_s)
    print(write_report(recorded, args.rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())

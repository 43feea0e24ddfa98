"""The load driver's 10-second smoke run against fastds (the full benchmark is not in CI)."""

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).parents[2]


def test_bench_load_smoke_run():
    result = subprocess.run([sys.executable, "-m", "bench.load", "--smoke"], cwd=ROOT, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert run["proxy"] == "fastds" and run["completed"] == run["attempted"] == 500 and run["failed"] == 0
    assert run["cpu_us_per_call"] > 0 and run["setup_p50_ms"] >= 0
    # wake-ups per call for each proxy process, busiest first: a worker sleeps and wakes for its calls
    assert len(run["wakeups_per_call"]) == len(run["cpu_shares"]) and run["wakeups_per_call"][0] > 0

"""The whole service as a subprocess: workers killed and respawned, destinations dying and
coming back, SIGHUP reload, SIGTERM drain, boot failure, sd_notify (issue: multiprocess).

Every load is bounded (-m calls, -timeout); every process is ended by PID.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime

from tests.harness import free_tcp_port, free_udp_port, wait_for


def log_time(line: str) -> float:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def worker_pids(harness) -> dict[int, int]:
    pids = {}
    for line in harness.log_lines("INFO worker"):
        match = re.search(r"\[(\d+)\] INFO worker (\d+) listening", line)
        if match:
            pids[int(match.group(2))] = int(match.group(1))
    return pids


def counts(stats, *names):
    return tuple(int(stats[name]) for name in names)


def test_a_a_killed_worker_is_respawned_and_calls_keep_completing(harness):
    ports = [free_udp_port(), free_udp_port()]
    for port in ports:
        harness.add_destination(port)
    for port in ports:
        harness.uas("uas.xml", port)
    harness.start_fastds(workers=2)
    calls = 1500
    uac = harness.start_uac("uac.xml", calls, 150, 60, 0, "-t", "un", "-max_socket", "2000")  # a socket per call
    time.sleep(3)
    victim = worker_pids(harness)[0]
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    line = wait_for(lambda: harness.log_lines("worker 0 respawned as pid"), 10, "worker 0 to be respawned")[0]
    assert log_time(line) - killed_at < 2.0
    assert uac.wait(90) in (0, 1)
    ok, failed = counts(uac.stats(), "SuccessfulCall(C)", "FailedCall(C)")
    assert ok + failed == calls and ok >= 0.99 * calls, (ok, failed)


def test_b_a_dead_destination_goes_probing_and_comes_back_active(harness):
    ports = [free_udp_port(), free_udp_port()]
    for port in ports:
        harness.add_destination(port)
    dying, _ = harness.uas("uas.xml", ports[0]), harness.uas("uas.xml", ports[1])
    harness.start_fastds(workers=2, probing_threshold=1, probing_mode=1, ping_interval_s=1, fr_timeout_ms=500)
    uac = harness.start_uac("uac.xml", 900, 60, 60, 0)
    time.sleep(3)
    dying.process.kill()
    dying.process.wait(5)
    died_at = time.time()
    down = wait_for(lambda: harness.log_lines(f"sip:127.0.0.1:{ports[0]} active -> probing"), 10, "probing")[0]
    time.sleep(2)
    harness.uas("uas.xml", ports[0])  # it comes back
    back_at = time.time()
    up = wait_for(lambda: harness.log_lines(f"sip:127.0.0.1:{ports[0]} probing -> active"), 10, "active again")[0]
    assert uac.wait(90) in (0, 1)
    ok, failed = counts(uac.stats(), "SuccessfulCall(C)", "FailedCall(C)")
    assert failed <= 5 and ok + failed == 900, (ok, failed)  # only calls mid-dialog at the callee that died
    assert log_time(down) - died_at < 1.5
    assert log_time(up) - back_at <= 1.0 + 0.5  # within one ping interval (+ the probe's round trip)


def test_c_sighup_reload_sends_new_calls_to_an_added_destination(harness):
    first, second = free_udp_port(), free_udp_port()
    harness.add_destination(first)
    harness.uas("uas.xml", first)
    added = harness.uas("uas.xml", second)
    master = harness.start_fastds(workers=2)
    uac = harness.start_uac("uac.xml", 600, 60, 60, 0)
    time.sleep(3)
    harness.add_destination(second)
    master.send_signal(signal.SIGHUP)
    wait_for(lambda: harness.log_lines("published generation 2"), 10, "the reload")
    assert uac.wait(60) == 0
    assert counts(uac.stats(), "SuccessfulCall(C)", "FailedCall(C)") == (600, 0)
    assert counts(added.stop(), "IncomingCall(C)")[0] > 0


def test_d_sigterm_lets_calls_in_flight_finish_and_exits_0(harness):
    port = free_udp_port()
    harness.add_destination(port)
    harness.uas("uas.xml", port, "-d", "1500")  # every INVITE waits 1.5 s for its 200
    master = harness.start_fastds(workers=2)
    uac = harness.start_uac("uac.xml", 40, 40, 30, 0)
    wait_for(lambda: int(uac.stats().get("OutgoingCall(C)", 0)) == 40 if uac.stat_file.exists() else False, 10,
             "all calls started")
    master.send_signal(signal.SIGTERM)
    assert master.wait(30) == 0
    assert uac.wait(30) == 0
    assert counts(uac.stats(), "SuccessfulCall(C)", "FailedCall(C)") == (40, 0)
    assert len(harness.log_lines("stopped (drained)")) == 2


def test_e_port_in_use_exits_non_zero_at_once_naming_the_address(harness):
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", harness.port))
    try:
        started = time.time()
        master = harness.start_fastds(expect_ready=False)
        assert master.wait(15) != 0 and time.time() - started < 15
    finally:
        taken.close()
    assert harness.log_lines(f"halting: cannot bind UDP 127.0.0.1:{harness.port}: Address already in use")


def test_e_a_second_fastds_on_the_same_address_is_refused_and_check_knows_the_first(harness):
    harness.add_destination(free_udp_port())
    first = harness.start_fastds(workers=2)
    second = harness.start_fastds(expect_ready=False, api_listen=f"127.0.0.1:{free_tcp_port()}")
    assert second.wait(30) != 0
    assert harness.log_lines(f"halting: cannot bind UDP 127.0.0.1:{harness.port}: Address already in use "
                             "(another fastds, or another program, holds it)")
    assert len(harness.log_lines("fastds ready")) == 1 and first.poll() is None
    assert harness.api("GET", "/api/v1/health")[0] == 200
    check = subprocess.run([sys.executable, "-m", "fastds", "check"], capture_output=True, text=True, timeout=60,
                           env=harness.env())
    assert check.returncode == 0, check.stderr
    assert f"ok   SIP udp 127.0.0.1:{harness.port}: held by the running fastds" in check.stderr
    assert f"ok   API tcp 127.0.0.1:{harness.api_port}: held by the running fastds" in check.stderr


def test_sd_notify_ready_status_watchdog_stopping(harness, tmp_path):
    harness.add_destination(free_udp_port())
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(20)
    master = harness.start_fastds(workers=2, expect_ready=False,
                                  extra_env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "400000"})
    messages = []
    while not any(m.startswith("READY=1") for m in messages):
        messages.append(notify.recv(4096).decode())
    ready = next(m for m in messages if m.startswith("READY=1"))
    assert "STATUS=2/2 workers, prober up, API up, generation 1, 1 destinations" in ready
    while "WATCHDOG=1" not in messages:
        messages.append(notify.recv(4096).decode())
    master.send_signal(signal.SIGTERM)
    while "STOPPING=1" not in messages:
        messages.append(notify.recv(4096).decode())
    assert master.wait(30) == 0
    notify.close()


def process_title(pid: int) -> str:
    return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()


def test_processes_are_named_for_ps(harness):
    harness.add_destination(free_udp_port())
    master = harness.start_fastds(workers=2)

    def children():
        pids = [int(pid) for pid in open(f"/proc/{master.pid}/task/{master.pid}/children").read().split()]
        return pids if len(pids) == 4 else None

    children = wait_for(children, 30, "the master's four children")
    assert process_title(master.pid) == "fastds: master"
    assert sorted(process_title(pid) for pid in children) == [
        "fastds: api", "fastds: prober", "fastds: worker 0", "fastds: worker 1"]


def test_the_children_stop_when_the_master_is_killed(harness):
    """A SIGKILLed master cannot stop its children: they are asked to stop with it instead
    (PR_SET_PDEATHSIG), so no prober or worker is left running on its own."""
    harness.add_destination(free_udp_port())
    master = harness.start_fastds(workers=2, drain_timeout_s=1)
    children = [int(pid) for pid in open(f"/proc/{master.pid}/task/{master.pid}/children").read().split()]
    assert len(children) == 4
    master.kill()
    master.wait(10)

    def alive(pid):
        try:
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has stopped
        except OSError:
            return False

    wait_for(lambda: not any(alive(pid) for pid in children), 30, "every child of the killed master to stop")

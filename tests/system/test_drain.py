"""A drain lets established calls finish: SIGTERM (or `fastds drain`) mid-run, new INVITEs get
503 with Retry-After while every established call's BYE is still routed and answered; health
says draining; the node stops once in-dialog requests stop coming (issue 25)."""

import signal
import subprocess
import sys

from tests.harness import free_udp_port, wait_for

CALLS, RATE, HOLD_MS = 80, 10, 3000  # 8 s of new calls, each held 3 s


def health(harness):
    try:
        return harness.api("GET", "/api/v1/health")
    except OSError:
        return None


def test_sigterm_mid_run_refuses_new_calls_and_answers_every_established_calls_bye(harness):
    callee_port = free_udp_port()
    harness.add_destination(callee_port)
    callee = harness.uas("uas.xml", callee_port)
    # idle 12 s: the drain outlasts SIPp's remaining ~6 s of INVITEs by far, so every one of them meets the
    # draining node (and its 503), not a stopped one
    master = harness.start_fastds(workers=2, drain_idle_s=12, drain_timeout_s=60)
    uac = harness.start_uac("uac.xml", CALLS, RATE, 90, HOLD_MS)
    wait_for(lambda: uac.stat_file.exists() and int(uac.stats().get("OutgoingCall(C)", 0)) >= 25 or None, 30,
             "25 calls started")
    master.send_signal(signal.SIGTERM)
    status, reply, _ = wait_for(lambda: (found := health(harness)) and found[1]["status"] == "draining" and found,
                                10, "health saying draining")
    assert status == 503 and "new INVITEs get 503" in reply["checks"]["drain"]
    assert master.wait(90) == 0
    assert uac.wait(60) in (0, 1)
    caller = uac.stats()
    answered = callee.stop()
    established = int(answered["IncomingCall(C)"])
    ok, failed = int(caller["SuccessfulCall(C)"]), int(caller["FailedCall(C)"])
    figures = f"caller {ok} ok, {failed} failed of {CALLS}; callee {answered['SuccessfulCall(C)']} of {established}"
    assert 25 <= established < CALLS, figures  # some calls before the signal, some refused after it
    assert int(answered["SuccessfulCall(C)"]) == established, figures  # every established call's BYE reached it
    assert ok == established and ok + failed == CALLS, figures  # ... and its 200 reached the caller
    assert int(caller["FailedUnexpectedMessage(C)"]) == failed, figures  # the refused ones: a 503, nothing lost
    assert b"SIP/2.0 503 Shutting Down" in (harness.directory / "uac-uac.xml.messages").read_bytes()
    assert harness.log_lines("draining: new INVITEs get 503") and harness.log_lines("drained: no in-dialog request")
    assert len(harness.log_lines("stopped (drained)")) == 2


def test_fastds_drain_stops_an_idle_node(harness):
    harness.add_destination(free_udp_port())
    master = harness.start_fastds(drain_idle_s=0)
    result = subprocess.run([sys.executable, "-m", "fastds", "drain"], capture_output=True, text=True,
                            env=harness.env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "draining: new INVITEs get 503; it stops once no in-dialog request came for 0 s" in result.stdout
    assert master.wait(30) == 0
    assert harness.log_lines("drained: no in-dialog request for 0 s")


def test_ctrl_c_reaches_every_process_but_only_the_master_acts_on_it(harness):
    """A terminal's Ctrl-C signals the whole process group: the children ignore SIGINT, so the
    master drains as on SIGTERM instead of the children vanishing under it."""
    import os

    harness.add_destination(free_udp_port())
    master = harness.start_fastds(workers=2, drain_idle_s=0)
    children = [int(pid) for pid in open(f"/proc/{master.pid}/task/{master.pid}/children").read().split()]
    assert len(children) == 4
    for pid in children:
        os.kill(pid, signal.SIGINT)
    assert health(harness)[1]["status"] == "ok"
    master.send_signal(signal.SIGINT)
    assert master.wait(30) == 0
    log = harness.log.read_text()
    # every child lived through its own SIGINT: the drain ended on its idle rule, then the master stopped each one
    assert "the workers have stopped" not in log and "died" not in log
    assert "exited" not in log.split("drained: no in-dialog request")[0]
    assert len(harness.log_lines("stopped (drained)")) == 2

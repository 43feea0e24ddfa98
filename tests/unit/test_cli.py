"""The `fastds` command as a subprocess: exit statuses, messages, the ds commands."""

import socket
import sqlite3
import subprocess
import sys

import orjson

from fastds.loopback import free_tcp_port, free_udp_port


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fastds", *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **(env or {})}, timeout=60)


def test_cli_check_prints_effective_settings_as_json():
    result = run_cli("check", "--offline", env={"FASTDS_WORKERS": "3"})
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["FASTDS_WORKERS"] == 3


def test_cli_check_masks_the_database_password():
    result = run_cli("check", env={"FASTDS_DB_URL": "mysql://u:secretpw@127.0.0.1:1/fastds",
                                   "FASTDS_API_LISTEN": f"127.0.0.1:{free_tcp_port()}",
                                   "FASTDS_SIP_LISTEN": f"127.0.0.1:{free_udp_port()}"})
    assert "secretpw" not in result.stdout + result.stderr
    assert orjson.loads(result.stdout)["FASTDS_DB_URL"] == "mysql://u:***@127.0.0.1:1/fastds"
    assert result.returncode == 1 and "FAIL store: MySQL u@127.0.0.1:1/fastds: cannot connect" in result.stderr


def test_cli_check_opens_the_store_and_tries_the_binds(tmp_path):
    sip_port, api_port = free_udp_port(), free_tcp_port()
    env = {"FASTDS_DB_URL": f"sqlite:///{tmp_path}/ds.db", "FASTDS_SIP_LISTEN": f"127.0.0.1:{sip_port}",
           "FASTDS_API_LISTEN": f"127.0.0.1:{api_port}"}
    missing = run_cli("check", env=env)
    assert missing.returncode == 1
    assert f"FAIL store: SQLite store {tmp_path}/ds.db does not exist: run `fastds db init`" in missing.stderr
    assert f"ok   SIP udp 127.0.0.1:{sip_port}: free" in missing.stderr
    assert f"ok   API tcp 127.0.0.1:{api_port}: free" in missing.stderr
    assert run_cli("db", "init", env=env).stdout == "fastds: schema ready (created)\n"
    assert run_cli("db", "init", env=env).stdout == "fastds: schema ready (existing)\n"
    assert run_cli("check", env=env).returncode == 0
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", sip_port))
    try:
        held = run_cli("check", env=env)
    finally:
        taken.close()
    assert held.returncode == 1
    assert (f"FAIL SIP udp 127.0.0.1:{sip_port}: cannot bind UDP 127.0.0.1:{sip_port}: Address already in use; "
            "another program holds it (change FASTDS_SIP_LISTEN or stop that program)") in held.stderr
    offline = run_cli("check", "--offline", env={**env, "FASTDS_DB_URL": "sqlite:///nowhere/x.db"})
    assert offline.returncode == 0 and "check:" not in offline.stderr


def test_cli_check_exits_2_naming_the_bad_variable():
    result = run_cli("check", env={"FASTDS_WORKERS": "abc", "FASTDS_WORKER": "1"})
    assert result.returncode == 2
    assert "FASTDS_WORKERS='abc'" in result.stderr and "did you mean FASTDS_WORKERS" in result.stderr


def test_cli_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("fastds 0.")


def test_cli_ds_commands_validate_before_writing(tmp_path):
    env = {"FASTDS_DB_URL": f"sqlite:///{tmp_path}/ds.db", "FASTDS_API_LISTEN": f"127.0.0.1:{free_tcp_port()}"}
    assert run_cli("ds", "list", env=env).returncode == 1  # no store yet: says to run db init
    assert run_cli("db", "init", env=env).returncode == 0
    bad = run_cli("ds", "add", "--set", "1", "--uri", "http://example.com", env=env)
    assert bad.returncode == 2 and "expected a sip: or sips: URI with a host" in bad.stderr
    assert run_cli("ds", "add", "--set", "1", "--uri", "sip:127.0.0.1:5070", "--weight", "2", env=env).returncode == 0
    assert run_cli("ds", "set-state", "1", "probing", env=env).returncode == 0
    (row,) = orjson.loads(run_cli("ds", "list", "--json", env=env).stdout)
    assert (row["destination"], row["weight"], row["state"]) == ("sip:127.0.0.1:5070", "2", 2)
    assert "probing" in run_cli("ds", "list", env=env).stdout
    assert run_cli("ds", "rm", "7", env=env).returncode == 1
    assert run_cli("ds", "rm", "1", env=env).returncode == 0
    assert "from the store" in run_cli("ds", "list", env=env).stdout
    not_running = run_cli("ds", "reload", env=env)
    assert not_running.returncode == 1 and "fastds is not running" in not_running.stderr


def test_cli_address_commands_on_the_store(tmp_path):
    env = {"FASTDS_DB_URL": f"sqlite:///{tmp_path}/ds.db", "FASTDS_API_LISTEN": f"127.0.0.1:{free_tcp_port()}"}
    assert run_cli("db", "init", env=env).returncode == 0
    added = run_cli("address", "add", "--ip", "198.51.100.0", "--mask", "24", "--context-info", "carrier-a", env=env)
    assert added.returncode == 0 and "added address id 1 to the store" in added.stdout, added.stderr
    bad = run_cli("address", "add", "--ip", "pbx.example.com", env=env)
    assert bad.returncode == 2 and "address not added: ip: 'pbx.example.com' is not valid" in bad.stderr
    listed = orjson.loads(run_cli("address", "list", "--json", env=env).stdout)
    assert [(r["ip"], r["mask"], r["context_info"]) for r in listed] == [("198.51.100.0", 24, "carrier-a")]
    assert run_cli("address", "rm", "1", env=env).returncode == 0
    assert orjson.loads(run_cli("address", "list", "--json", env=env).stdout) == []
    assert run_cli("address", "rm", "1", env=env).returncode == 1


class RefusingApi:
    """An HTTP server on loopback that answers every request 401, as fastds's API does to a
    wrong or missing bearer token."""

    def __init__(self):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def _refuse(self):
                body = b'{"error": "missing or wrong bearer token"}'
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _refuse

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_cli_says_the_token_is_refused_and_writes_nothing_behind_a_running_fastds(tmp_path):
    env = {"FASTDS_DB_URL": f"sqlite:///{tmp_path}/ds.db", "FASTDS_API_LISTEN": f"127.0.0.1:{free_tcp_port()}"}
    assert run_cli("db", "init", env=env).returncode == 0
    assert run_cli("ds", "add", "--set", "1", "--uri", "sip:127.0.0.1:5070", env=env).returncode == 0
    api = RefusingApi()
    try:
        for token in ("", "wrong"):
            running = {**env, "FASTDS_API_LISTEN": f"127.0.0.1:{api.port}", "FASTDS_API_TOKEN": token}
            for command in (("ds", "list"), ("ds", "set-state", "1", "inactive"), ("ds", "reload"),
                            ("ds", "add", "--set", "1", "--uri", "sip:127.0.0.1:5071"), ("ds", "rm", "1"),
                            ("address", "add", "--ip", "198.51.100.1"), ("cluster", "status")):
                result = run_cli(*command, env=running)
                assert result.returncode == 2, (command, token, result.stderr)
                assert "answers but refused the request: FASTDS_API_TOKEN is " + ("wrong" if token else "not set") \
                    in result.stderr, (command, result.stderr)
                assert "not running" not in result.stdout + result.stderr and "store" not in result.stdout
    finally:
        api.close()
    (row,) = orjson.loads(run_cli("ds", "list", "--json", env=env).stdout)
    assert (row["id"], row["state"]) == (1, 0)  # the store was not written behind the running fastds
    assert orjson.loads(run_cli("address", "list", "--json", env=env).stdout) == []


def test_cli_check_tries_the_tcp_and_tls_binds_too(tmp_path):
    import trustme

    certificate = trustme.CA().issue_cert("edge.example.com")
    certificate.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "edge.pem"))
    udp_port, tcp_port, tls_port = free_udp_port(), free_tcp_port(), free_tcp_port()
    env = {"FASTDS_DB_URL": f"sqlite:///{tmp_path}/ds.db", "FASTDS_API_LISTEN": f"127.0.0.1:{free_tcp_port()}",
           "FASTDS_SIP_LISTEN": f"udp:127.0.0.1:{udp_port},tcp:127.0.0.1:{tcp_port},tls:127.0.0.1:{tls_port}",
           "FASTDS_TLS_CERT_FILE": str(tmp_path / "edge.pem"), "FASTDS_TLS_KEY_FILE": str(tmp_path / "edge.pem")}
    assert run_cli("db", "init", env=env).returncode == 0
    free = run_cli("check", env=env)
    assert free.returncode == 0, free.stderr
    for transport, port in (("udp", udp_port), ("tcp", tcp_port), ("tls", tls_port)):
        assert f"ok   SIP {transport} 127.0.0.1:{port}: free" in free.stderr
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", tls_port))
    taken.listen(1)
    try:
        held = run_cli("check", env=env)
    finally:
        taken.close()
    assert held.returncode == 1
    assert (f"FAIL SIP tls 127.0.0.1:{tls_port}: cannot bind SIP over TLS on 127.0.0.1:{tls_port}: Address already in use;"
            " another program holds it (change FASTDS_SIP_LISTEN or stop that program)") in held.stderr
    assert f"ok   SIP tcp 127.0.0.1:{tcp_port}: free" in held.stderr


def test_cli_output_into_a_closed_pipe_ends_quietly(tmp_path):
    env = {"FASTDS_DB_URL": f"sqlite:///{tmp_path}/ds.db", "FASTDS_API_LISTEN": f"127.0.0.1:{free_tcp_port()}"}
    assert run_cli("db", "init", env=env).returncode == 0
    rows = "".join(f"INSERT INTO dispatcher (setid, destination) VALUES (1, 'sip:127.0.0.1:{port}');"
                   for port in range(5070, 7070))
    with sqlite3.connect(tmp_path / "ds.db") as db:
        db.executescript(rows)
    pipeline = subprocess.run(f"{sys.executable} -m fastds ds list | head -2", shell=True, capture_output=True,
                              text=True, env={"PATH": "/usr/bin:/bin", **env}, timeout=60)
    assert len(pipeline.stdout.splitlines()) == 2 and pipeline.stderr == "", pipeline.stderr


def test_cli_help_gives_each_commands_summary_whole():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "try every SIP listener's bind and the API's, a line each (stderr)." in " ".join(result.stdout.split())

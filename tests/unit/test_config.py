"""The configuration table: parsing, every error at once, warnings, generated docs."""

from pathlib import Path

import orjson
import pytest

from fastds.config import VARIABLES, effective, env_example, load_settings, markdown_table, unknown_variables
from fastds.errors import ConfigError

ROOT = Path(__file__).parents[2]


def test_defaults_parse():
    settings = load_settings({})
    assert settings.udp_listen == ("0.0.0.0", 5060) and settings.tcp_listen is None
    assert settings.failover_codes == frozenset(range(500, 600))
    assert settings.fr_timeout_ms == 5000 and settings.default_flags == "f"
    assert settings.api_listen == ("127.0.0.1", 8888) and settings.record_route is True


def test_values_are_parsed_and_normalised():
    settings = load_settings({
        "FASTDS_SIP_LISTEN": "[::1]:5070", "FASTDS_FAILOVER_CODES": "5xx, 408,600-603",
        "FASTDS_DEFAULT_FLAGS": "C f D", "FASTDS_EGRESS_ALLOW": "127.0.0.0/8, ::1",
        "FASTDS_RECORD_ROUTE": "off", "FASTDS_LOG_LEVEL": "DEBUG"})
    assert settings.udp_listen == ("::1", 5070)
    assert 408 in settings.failover_codes and 603 in settings.failover_codes and 604 not in settings.failover_codes
    assert settings.default_flags == "fdc"
    assert [str(n) for n in settings.egress_allow] == ["127.0.0.0/8", "::1/128"]
    assert settings.record_route is False and settings.log_level == "debug"


def test_listeners_a_bare_address_is_udp_and_tcp_may_join_it():
    settings = load_settings({"FASTDS_SIP_LISTEN": "tcp:[::]:5062, 127.0.0.1:5060"})
    assert settings.udp_listen == ("127.0.0.1", 5060) and settings.tcp_listen == ("::", 5062)
    assert effective(settings)["FASTDS_SIP_LISTEN"] == "tcp:[::]:5062,udp:127.0.0.1:5060"
    assert load_settings({"FASTDS_SIP_LISTEN": "UDP:10.0.0.1:5060"}).udp_listen == ("10.0.0.1", 5060)


@pytest.mark.parametrize("value, why", [
    ("tcp:0.0.0.0:5060", "one udp listener"),
    ("udp:0.0.0.0:5060,udp:0.0.0.0:5070", "one udp listener"),
    ("udp:0.0.0.0:5060,tcp:0.0.0.0:5060,tcp:0.0.0.0:5070", "one udp listener"),
    ("udp:0.0.0.0:5060,tls:0.0.0.0:5061,tls:0.0.0.0:5062", "one udp listener"),
    ("sctp:0.0.0.0:5060", "a list of"),
    ("udp:0.0.0.0:5060,", "a list of"),
])
def test_bad_listener_lists_name_the_value_and_what_is_expected(value, why):
    with pytest.raises(ConfigError) as info:
        load_settings({"FASTDS_SIP_LISTEN": value})
    (problem,) = info.value.problems
    assert problem.startswith(f"FASTDS_SIP_LISTEN={value!r}: expected ") and why in problem


def test_a_tls_listener_needs_a_certificate_and_key_that_load(tmp_path):
    listen = {"FASTDS_SIP_LISTEN": "udp:127.0.0.1:5060,tls:127.0.0.1:5061"}
    with pytest.raises(ConfigError) as info:
        load_settings(listen)
    assert info.value.problems[0].startswith("FASTDS_TLS_CERT_FILE='': expected a readable PEM file")
    (tmp_path / "not.pem").write_text("not a certificate")
    with pytest.raises(ConfigError) as info:
        load_settings({**listen, "FASTDS_TLS_CERT_FILE": str(tmp_path / "not.pem"),
                       "FASTDS_TLS_KEY_FILE": str(tmp_path / "not.pem")})
    assert "expected a PEM certificate chain and its private key" in info.value.problems[0]


def test_without_a_tls_listener_the_ca_file_for_destinations_must_load_too(tmp_path):
    (tmp_path / "not.pem").write_text("not a certificate")
    with pytest.raises(ConfigError) as info:
        load_settings({"FASTDS_TLS_CA_FILE": str(tmp_path / "not.pem")})
    assert info.value.problems[0].startswith(f"FASTDS_TLS_CA_FILE={str(tmp_path / 'not.pem')!r}: expected PEM CA")
    assert load_settings({"FASTDS_TLS_VERIFY": "0"}).tls_verify is False


def test_every_bad_variable_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load_settings({"FASTDS_WORKERS": "abc", "FASTDS_SIP_LISTEN": "localhost:5060",
                       "FASTDS_FR_TIMEOUT_MS": "5", "FASTDS_DEFAULT_FLAGS": "fz",
                       "FASTDS_DB_URL": "postgres://x", "FASTDS_EGRESS_ALLOW": "10.0.0.0/33",
                       "FASTDS_NODE_ID": "a.b"})
    problems = "\n".join(info.value.problems)
    assert len(info.value.problems) == 7
    assert "FASTDS_WORKERS='abc': expected an integer from 0 to 256" in problems
    for name in ("FASTDS_SIP_LISTEN='localhost:5060'", "FASTDS_FR_TIMEOUT_MS='5'", "FASTDS_DEFAULT_FLAGS='fz'",
                 "FASTDS_DB_URL='postgres://x'", "'10.0.0.0/33' is not one", "FASTDS_NODE_ID='a.b'"):
        assert name in problems


def test_public_api_address_needs_a_token_and_secrets_are_not_echoed():
    with pytest.raises(ConfigError) as info:
        load_settings({"FASTDS_API_LISTEN": "0.0.0.0:8888"})
    assert "requires FASTDS_API_TOKEN" in str(info.value)
    assert load_settings({"FASTDS_API_LISTEN": "0.0.0.0:8888", "FASTDS_API_TOKEN": "t"}).api_token == "t"
    shown = effective(load_settings({"FASTDS_SECRET": "hunter2"}))
    assert shown["FASTDS_SECRET"] == "(set)" and "hunter2" not in orjson.dumps(shown).decode()


def test_unknown_variables_warn_with_the_closest_name():
    warnings = unknown_variables({"FASTDS_FR_TIMOUT_MS": "1", "FASTDS_DEBUG": "1", "PATH": "/bin"})
    assert warnings == ["unknown variable FASTDS_FR_TIMOUT_MS is ignored; did you mean FASTDS_FR_TIMEOUT_MS?"]


def test_every_variable_is_documented_and_named_by_convention():
    for var in VARIABLES:
        assert var.name.startswith("FASTDS_") and var.name.isupper() and var.doc
        load_settings({var.name: var.default})
    assert len({var.name for var in VARIABLES}) == len(VARIABLES)


def test_readme_table_and_env_example_are_generated_from_the_table():
    assert markdown_table() in (ROOT / "README.md").read_text()
    assert (ROOT / "systemd" / "fastds.env.example").read_text() == env_example()


def test_only_the_read_only_paths_may_be_opened_without_the_token():
    assert load_settings({"FASTDS_API_OPEN_PATHS": "/metrics, /api/v1/health"}).api_open_paths == (
        "/metrics", "/api/v1/health")
    with pytest.raises(ConfigError) as caught:
        load_settings({"FASTDS_API_OPEN_PATHS": "/metrics,/api/v1/destinations"})
    assert caught.value.problems == ["FASTDS_API_OPEN_PATHS='/metrics,/api/v1/destinations': expected empty, or a "
                                     "comma-separated list of /metrics, /api/v1/health ('/api/v1/destinations' may "
                                     "not be opened)"]


def test_the_probe_method_and_from_uri_are_checked():
    with pytest.raises(ConfigError) as caught:
        load_settings({"FASTDS_PING_FROM": "garbage", "FASTDS_PING_METHOD": "OPT IONS"})
    assert caught.value.problems == [
        "FASTDS_PING_METHOD='OPT IONS': expected a SIP method token other than INVITE, ACK and CANCEL, e.g. OPTIONS",
        "FASTDS_PING_FROM='garbage': expected a sip: or sips: URI, e.g. sip:dispatcher@localhost"]
    for method, uri in (("ACK", "tel:+15551234"), ("invite", "http://example.com/")):
        with pytest.raises(ConfigError) as caught:
            load_settings({"FASTDS_PING_FROM": uri, "FASTDS_PING_METHOD": method})
        assert len(caught.value.problems) == 2
    settings = load_settings({"FASTDS_PING_FROM": "sips:lb@edge.example.com;x=1", "FASTDS_PING_METHOD": "INFO"})
    assert (settings.ping_from, settings.ping_method) == ("sips:lb@edge.example.com;x=1", "INFO")


def test_the_hep_capture_variables_are_checked_and_must_stay_within_the_egress_allowance():
    assert load_settings({}).hep_destination is None
    settings = load_settings({"FASTDS_HEP_DESTINATION": "udp:127.0.0.1:9060", "FASTDS_HEP_SAMPLING": "0.25",
                              "FASTDS_HEP_CAPTURE_ID": "2001", "FASTDS_EGRESS_ALLOW": "127.0.0.0/8"})
    assert (settings.hep_destination, settings.hep_sampling, settings.hep_capture_id) == (("127.0.0.1", 9060), 0.25, 2001)
    with pytest.raises(ConfigError) as caught:
        load_settings({"FASTDS_HEP_DESTINATION": "tcp:127.0.0.1:9060", "FASTDS_HEP_SAMPLING": "0"})
    assert caught.value.problems == [
        "FASTDS_HEP_DESTINATION='tcp:127.0.0.1:9060': expected udp:IP:port (HEP v3 over UDP), e.g. udp:10.0.0.9:9060,"
        " or empty",
        "FASTDS_HEP_SAMPLING='0': expected a number over 0 and at most 1, e.g. 0.1 for one call in ten"]
    with pytest.raises(ConfigError) as caught:
        load_settings({"FASTDS_HEP_DESTINATION": "udp:192.0.2.9:9060", "FASTDS_EGRESS_ALLOW": "127.0.0.0/8"})
    assert caught.value.problems == ["FASTDS_HEP_DESTINATION=udp:192.0.2.9:9060: not within FASTDS_EGRESS_ALLOW "
                                     "(expected: a capture server fastds may send to, or widen FASTDS_EGRESS_ALLOW)"]

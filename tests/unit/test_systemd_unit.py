"""systemd/fastds.service passes `systemd-analyze verify` (ExecStart pointed at this install)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def test_unit_verifies(tmp_path):
    analyze, fastds = shutil.which("systemd-analyze"), shutil.which("fastds")
    if analyze is None:
        pytest.fail("systemd-analyze is required: apt-get install -y systemd")
    unit = (ROOT / "systemd" / "fastds.service").read_text()
    assert "ExecStart=/opt/fastds/bin/fastds run" in unit and "Type=notify" in unit
    (tmp_path / "fastds.service").write_text(unit.replace("/opt/fastds/bin/fastds", fastds))
    result = subprocess.run([analyze, "verify", str(tmp_path / "fastds.service")], capture_output=True, text=True,
                            timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "fastds.service" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_the_units_documentation_is_what_a_venv_install_puts_there(tmp_path):
    """`pip install .` into /opt/fastds ships the files Documentation= names."""
    import tomllib

    unit = (ROOT / "systemd" / "fastds.service").read_text()
    (line,) = [line for line in unit.splitlines() if line.startswith("Documentation=")]
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    shipped = {f"file:/opt/fastds/{folder}/{Path(name).name}" for folder, names in data_files.items() for name in names}
    assert set(line.removeprefix("Documentation=").split()) <= shipped
    assert all((ROOT / name).is_file() for names in data_files.values() for name in names)


def test_unit_has_what_an_operator_expects():
    unit = (ROOT / "systemd" / "fastds.service").read_text()
    for line in ("NotifyAccess=main", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID",
                 "EnvironmentFile=-/etc/default/fastds", "Restart=on-failure", "DynamicUser=yes",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=fastds"):
        assert line in unit


def test_the_units_stop_timeout_fits_the_longest_default_drain():
    """systemd kills what has not stopped by TimeoutStopSec: the drain (FASTDS_DRAIN_TIMEOUT_S) and
    the stop that follows it (API, workers' last transactions, prober) must fit."""
    from fastds.config import load_settings
    from fastds.procs.master import STOP_GRACE_S
    from fastds.procs.worker import FINISH_S

    unit = (ROOT / "systemd" / "fastds.service").read_text()
    (line,) = [line for line in unit.splitlines() if line.startswith("TimeoutStopSec=")]
    stop_s = int(line.removeprefix("TimeoutStopSec="))
    assert stop_s >= load_settings({}).drain_timeout_s + 2 * STOP_GRACE_S + FINISH_S + STOP_GRACE_S

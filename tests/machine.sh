#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh machine (Debian, as root): SIPp,
# headless Chromium and its driver, systemd-analyze, MariaDB and Redis. Each step is skipped
# when already there; the shared servers are started only when they do not answer, and never
# stopped or flushed. The README's test command runs this first; so does CI (.ci/run).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v sipp >/dev/null || missing+=(sip-tester)                  # SIPp drives the calls
command -v systemd-analyze >/dev/null || missing+=(systemd)          # verifies systemd/fastds.service
command -v chromium >/dev/null || missing+=(chromium)                # the web panel's browser test
command -v chromedriver >/dev/null || missing+=(chromium-driver)
[ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)               # the asyncmy store's tests
command -v redis-server >/dev/null || missing+=(redis-server)        # the cluster's tests
installed_mariadb=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/machine.sh: installing ${missing[*]}" >&2
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  [[ " ${missing[*]} " == *" mariadb-server "* ]] && installed_mariadb=1
fi
# promtool checks /metrics (tests/unit/test_metrics.py): only the binary is unpacked from Debian's
# prometheus package, whose server the tests do not want installed and started
PROMTOOL_ROOT=/opt/fastds-test-tools/prometheus
if [ ! -x "$PROMTOOL_ROOT/usr/bin/promtool" ]; then
  echo "tests/machine.sh: unpacking promtool" >&2
  work=$(mktemp -d)
  (cd "$work" && { apt-get download -qq prometheus 2>/dev/null || { apt-get update -qq && apt-get download -qq prometheus; }; } \
    && mkdir -p "$PROMTOOL_ROOT" && dpkg -x prometheus_*.deb "$PROMTOOL_ROOT")
  rm -rf "$work"
fi

# MariaDB at 127.0.0.1:3306, root without a password, database test (as these machines have it)
if ! mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql --bind-address=127.0.0.1
  for _ in $(seq 60); do mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
if [ "$installed_mariadb" = 1 ]; then  # Debian's root logs in by socket only: let the tests in over TCP, as here
  mysql -u root -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('')" || true
fi
mysql -h 127.0.0.1 -u root -e "CREATE DATABASE IF NOT EXISTS test" >/dev/null 2>&1 || true

# Redis at 127.0.0.1:6379, keeping nothing on disk
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save "" --appendonly no >/dev/null
  for _ in $(seq 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.25; done
fi

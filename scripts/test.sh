#!/usr/bin/env bash
# The test command (README): installs what the tests need on a fresh machine, then runs every
# test of the workspace, including the real PC/SC test through a private pcscd (it starts its
# own pcscd inside `unshare -mn`, see crates/card-host/tests/pcsc.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v pcscd >/dev/null 2>&1 || need+=(pcscd)
[ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || need+=(vsmartcard-vpcd)
pkg-config --exists libpcsclite 2>/dev/null || need+=(libpcsclite-dev)
command -v opensc-tool >/dev/null 2>&1 || need+=(opensc)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
# the browser tests (e2e::webdriver): Debian's Chromium and its chromedriver
{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || need+=(chromium chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Property tests draw from a fixed seed, so a run is reproducible (override to explore).
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261122}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
# A private PostgreSQL cluster for the servers' PostgreSQL tests (shared/design/postgres.md): its
# own data directory and port, trust authentication on loopback only, stopped and removed on
# exit. Each test creates its own database under TEST_POSTGRES_URL; it is always set here, so
# those tests always run (without it they only report that they were skipped).
unset TEST_POSTGRES_URL
pg_bin=$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -n 1)
pg_dir=$(mktemp -d /tmp/cardwright-pg.XXXXXX)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" -eq 0 ]; then chown postgres "$pg_dir"; fi
stop_pg() {
  as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap stop_pg EXIT
as_pg "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U cw >/dev/null
for _ in 1 2 3 4 5; do
  pg_port=$((20000 + RANDOM % 20000))
  if as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
      -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1" start >/dev/null; then
    export TEST_POSTGRES_URL="postgres://cw@127.0.0.1:$pg_port/postgres"
    break
  fi
done
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  echo "test.sh: could not start PostgreSQL" >&2
  cat "$pg_dir/log" >&2
  exit 1
fi
echo "test.sh: private PostgreSQL at $TEST_POSTGRES_URL"

cargo test --workspace --all-features

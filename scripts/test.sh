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
cargo test --workspace --all-features

#!/usr/bin/env bash
# Refreshes the portal's screenshots in docs/portal/NN-name.png: reruns its browser tests
# (crates/e2e/tests/portal.rs: every screen (a)-(i), a service that does not fit, a wrong PIN,
# the card pulled out while installing)
# against real parties in headless Chromium, saving each screen there instead of under
# $CARGO_TARGET_TMPDIR/portal/.
set -euo pipefail
cd "$(dirname "$0")/.."

for program in chromium chromedriver; do
    if ! command -v "$program" >/dev/null; then
        echo "$program is missing: apt-get install chromium chromium-driver" >&2
        exit 1
    fi
done

mkdir -p docs/portal
CARDWRIGHT_SCREENSHOTS=docs/portal cargo test -p e2e --test portal
ls -1 docs/portal/*.png

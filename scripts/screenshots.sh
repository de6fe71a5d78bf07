#!/usr/bin/env bash
# Regenerates docs/screenshots/: the matrix page (`envgate status --format
# html`, the page `envgate ci` writes as matrix.html) of examples/quickstart
# (dev, staging and prod as SQLite databases: applied, pending and drifted
# migrations), at a desktop width (1280 CSS pixels) and a phone's (390);
# then the console's pages (matrix, release, promotion preview, audit trail,
# each at both widths) after a login through the fake GitHub, drawn by its
# browser tests (tests/console.rs; needs PostgreSQL, as the tests do).
#
# Needs: cargo, Node.js with npm, Debian's chromium (installed with apt-get
# when missing); playwright-core and axe-core come from the npm registry
# under target/browser-tools (tests/browser/package.json). The page is a
# local file; nothing else touches the network.
#
#   scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
command -v chromium >/dev/null 2>&1 ||
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
tools="$PWD/target/browser-tools"
if ! cmp -s tests/browser/package.json "$tools/package.json"; then
    mkdir -p "$tools"
    cp tests/browser/package.json "$tools/package.json"
    (cd "$tools" && npm install --no-audit --no-fund --silent >/dev/null)
fi

cargo build --quiet --bin envgate
work=target/screenshots
rm -rf "$work"
mkdir -p "$work" docs/screenshots
cp -r examples/quickstart "$work/quickstart"
(cd "$work/quickstart" && ../../debug/envgate status --format html >../matrix.html 2>/dev/null) || true

for size in desktop:1280:800 phone:390:844; do
    IFS=: read -r name width height <<<"$size"
    ENVGATE_BROWSER_TOOLS="$tools" node tests/browser/page.mjs "file://$PWD/$work/matrix.html" \
        --width "$width" --height "$height" --screenshot "docs/screenshots/matrix-$name.png" >/dev/null
    echo "docs/screenshots/matrix-$name.png"
done
ENVGATE_BROWSER_TOOLS="$tools" ENVGATE_SCREENSHOTS="$PWD/docs/screenshots" \
    cargo test --quiet --test console in_a_browser >/dev/null
ls docs/screenshots/console-*.png

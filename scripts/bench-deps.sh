#!/usr/bin/env bash
# Installs the peer tools the benchmarks compare against, under
# target/bench-tools (nothing global): dbmate from the npm registry and
# sqlx-cli from crates.io; wrk (the bot's intake benchmark) from the
# distribution's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench-tools
cd target/bench-tools
[ -f package.json ] || echo '{"private": true}' > package.json
npm install --silent --no-audit --no-fund dbmate@2
./node_modules/.bin/dbmate --version
cd ..
if [ ! -x bench-tools/bin/sqlx ]; then
    cargo install --locked --root bench-tools sqlx-cli --no-default-features --features postgres,rustls
fi
bench-tools/bin/sqlx --version

if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
wrk --version 2>&1 | head -n 1 || true

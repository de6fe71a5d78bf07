#!/usr/bin/env bash
# Installs the peer tools the benchmarks compare against, under
# target/bench-tools (nothing global): dbmate from the npm registry and
# sqlx-cli from crates.io.
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

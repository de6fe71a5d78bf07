#!/usr/bin/env bash
# Runs envgate's whole test suite, provisioning what the tests need:
#
# - PostgreSQL: the server at $DATABASE_URL when set; else one answering on
#   127.0.0.1:5432; else a throwaway server (TLS on) started from the locally
#   installed binaries, installing the distribution's `postgresql` package
#   when there are none. The throwaway server is stopped on exit.
# - PgBouncer, and the psql and sqlite3 clients (the bundle tests run them):
#   installed from the distribution's packages when missing.
#
# Extra arguments go to the test runner (cargo nextest, else cargo test).
# ENVGATE_TEST_THROWAWAY_PG=1 forces the throwaway server.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'test.sh: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=
install_pkg() {
    log "installing $*"
    if [ -z "$apt_updated" ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_cmd() { # ensure_cmd COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || install_pkg "$2"
}

answers() { psql "$1" -Atqc 'SELECT 1' >/dev/null 2>&1; }

ensure_cmd psql postgresql-client
ensure_cmd pgbouncer pgbouncer
ensure_cmd sqlite3 sqlite3

pg_dir=
cleanup() {
    if [ -n "$pg_dir" ]; then
        log "stopping the throwaway PostgreSQL"
        run_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$pg_dir"
    fi
}
trap cleanup EXIT

run_pg() { # runs a PostgreSQL server binary as a non-root user
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_throwaway_pg() {
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
        install_pkg postgresql
        pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    ensure_cmd openssl openssl
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
    fi
    pg_dir=$(mktemp -d /tmp/envgate-test-pg.XXXXXX)
    chmod 755 "$pg_dir"
    [ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    log "starting a throwaway PostgreSQL ($pg_bin) on 127.0.0.1:$port"
    run_pg "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    run_pg openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=localhost \
        -keyout "$pg_dir/data/server.key" -out "$pg_dir/data/server.crt" >/dev/null 2>&1
    run_pg chmod 600 "$pg_dir/data/server.key"
    run_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
        -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c ssl=on -c max_connections=300 -c fsync=off" \
        start >/dev/null
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

if [ -n "${ENVGATE_TEST_THROWAWAY_PG:-}" ]; then
    start_throwaway_pg
elif [ -n "${DATABASE_URL:-}" ]; then
    answers "$DATABASE_URL" || { log "DATABASE_URL is set but does not answer"; exit 1; }
    log "using PostgreSQL at \$DATABASE_URL"
elif answers "postgres://postgres@127.0.0.1:5432/postgres"; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
    log "using PostgreSQL at 127.0.0.1:5432"
else
    start_throwaway_pg
fi

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --no-fail-fast "$@"
else
    cargo test --locked --no-fail-fast "$@"
fi

#!/usr/bin/env bash
# Runs envgate's whole test suite, provisioning what the tests need:
#
# - PostgreSQL: the server at $DATABASE_URL when set; else one answering on
#   127.0.0.1:5432; else a throwaway server (TLS on) started from the locally
#   installed binaries, installing the distribution's `postgresql` package
#   when there are none. The throwaway server is stopped on exit.
# - MariaDB: the server at $MYSQL_URL when set (mysql://root@host:port/db);
#   else one answering on 127.0.0.1:3306 as root without a password; else a
#   throwaway server started from the locally installed binaries, installing
#   the distribution's `mariadb-server` package when there are none.
# - PgBouncer, the psql, sqlite3 and mariadb clients, and the MariaDB server
#   binaries (one test starts a TLS server of its own): installed from the
#   distribution's packages when missing.
# - The browser tests: Debian's chromium and nodejs (installed when
#   missing) and the npm packages in tests/browser/package.json
#   (playwright-core, axe-core), installed under target/browser-tools.
#
# Extra arguments go to the test runner (cargo nextest, else cargo test).
# ENVGATE_TEST_THROWAWAY_PG=1 and ENVGATE_TEST_THROWAWAY_MYSQL=1 force the
# throwaway servers.
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
ensure_cmd mariadb mariadb-client
# The TLS test starts its own MariaDB with certificates: the server binaries.
ensure_cmd mariadbd mariadb-server
ensure_cmd chromium chromium
ensure_cmd node nodejs
ensure_cmd npm npm
browser_tools="$PWD/target/browser-tools"
if ! cmp -s tests/browser/package.json "$browser_tools/package.json" \
    || [ ! -d "$browser_tools/node_modules/playwright-core" ] \
    || [ ! -d "$browser_tools/node_modules/axe-core" ]; then
    log "installing playwright-core and axe-core under $browser_tools"
    mkdir -p "$browser_tools"
    cp tests/browser/package.json "$browser_tools/package.json"
    (cd "$browser_tools" && npm install --no-audit --no-fund --silent >/dev/null)
fi
export ENVGATE_BROWSER_TOOLS="$browser_tools"

pg_dir=
my_dir=
my_pid=
cleanup() {
    if [ -n "$pg_dir" ]; then
        log "stopping the throwaway PostgreSQL"
        run_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$pg_dir"
    fi
    if [ -n "$my_pid" ]; then
        log "stopping the throwaway MariaDB"
        kill "$my_pid" 2>/dev/null || true
        wait "$my_pid" 2>/dev/null || true
    fi
    if [ -n "$my_dir" ]; then rm -rf "$my_dir"; fi
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

# mysql://user[:password]@host:port/db → the client's arguments.
my_args() {
    python3 - "$1" <<'PY'
import sys, urllib.parse as u
p = u.urlparse(sys.argv[1])
args = ["-h", p.hostname or "127.0.0.1", "-P", str(p.port or 3306), "-u", u.unquote(p.username or "root")]
if p.password:
    args.append("-p" + u.unquote(p.password))
print(" ".join(args))
PY
}
my_answers() { # shellcheck disable=SC2046
    mariadb $(my_args "$1") --connect-timeout=3 -e 'SELECT 1' >/dev/null 2>&1
}

start_throwaway_mysql() {
    local server
    server=$(command -v mariadbd || command -v mysqld || ls /usr/sbin/mariadbd /usr/sbin/mysqld 2>/dev/null | head -n 1 || true)
    if [ -z "$server" ]; then
        install_pkg mariadb-server
        server=$(command -v mariadbd || ls /usr/sbin/mariadbd /usr/sbin/mysqld 2>/dev/null | head -n 1)
    fi
    local install_db
    install_db=$(command -v mariadb-install-db || command -v mysql_install_db)
    my_dir=$(mktemp -d /tmp/envgate-test-mysql.XXXXXX)
    chmod 755 "$my_dir"
    local user=()
    if [ "$(id -u)" = 0 ]; then
        id mysql >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin mysql
        chown mysql "$my_dir"
        user=(--user=mysql)
    fi
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    log "starting a throwaway MariaDB ($server) on 127.0.0.1:$port"
    "$install_db" --no-defaults "${user[@]}" --datadir="$my_dir/data" --auth-root-authentication-method=normal \
        --skip-test-db >"$my_dir/install.log" 2>&1
    "$server" --no-defaults "${user[@]}" --datadir="$my_dir/data" --socket="$my_dir/mysqld.sock" \
        --port="$port" --bind-address=127.0.0.1 --skip-name-resolve --max-connections=300 \
        --innodb-flush-log-at-trx-commit=0 --log-error="$my_dir/server.log" &
    my_pid=$!
    export MYSQL_URL="mysql://root@127.0.0.1:$port/mysql"
    for _ in $(seq 1 100); do
        my_answers "$MYSQL_URL" && return
        sleep 0.2
    done
    log "the throwaway MariaDB did not start:"
    cat "$my_dir/server.log" >&2
    exit 1
}

if [ -n "${ENVGATE_TEST_THROWAWAY_MYSQL:-}" ]; then
    start_throwaway_mysql
elif [ -n "${MYSQL_URL:-}" ]; then
    my_answers "$MYSQL_URL" || { log "MYSQL_URL is set but does not answer"; exit 1; }
    log "using MariaDB/MySQL at \$MYSQL_URL"
elif my_answers "mysql://root@127.0.0.1:3306/mysql"; then
    export MYSQL_URL="mysql://root@127.0.0.1:3306/mysql"
    log "using MariaDB/MySQL at 127.0.0.1:3306"
else
    start_throwaway_mysql
fi

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --no-fail-fast "$@"
else
    cargo test --locked --no-fail-fast "$@"
fi

#!/usr/bin/env bash
# Rebuilds dev.db, staging.db and prod.db: applies migrations with the
# sqlite3 shell and records them in envgate's ledger, the way envgate does.
# dev applied an earlier version of 20260424_002_audit_idx.sql, so the file in
# migrations/ now shows as drifted there.
set -euo pipefail
cd "$(dirname "$0")"

ledger_ddl="CREATE TABLE envgate_migrations (
    version      TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    applied_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    applied_by   TEXT NOT NULL,
    execution_ms INTEGER NOT NULL DEFAULT 0,
    success      INTEGER NOT NULL CHECK (success IN (0, 1)),
    release      TEXT,
    applied_via  TEXT NOT NULL DEFAULT 'managed',
    error        TEXT
);"

# apply DB FILE APPLIED_AT [CONTENT]: runs the migration and records it.
apply() {
    local db=$1 file=$2 at=$3 content=${4:-}
    [ -n "$content" ] || content=$(cat "migrations/$file")
    local stem=${file%.sql}
    local version name hash
    version=$(sed -E 's/^([0-9]+(_[0-9]+)*)_.*/\1/' <<<"$stem")
    name=${stem#"${version}_"}
    hash=$(printf '%s\n' "$content" | sha256sum | cut -d' ' -f1)
    sqlite3 "$db" "$content
INSERT INTO envgate_migrations (version, name, sha256, applied_at, applied_by, execution_ms, success)
VALUES ('$version', '$name', 'sha256-lf:$hash', '$at', 'ci@example.com', 4, 1);"
}

rm -f dev.db staging.db prod.db
for db in dev.db staging.db prod.db; do sqlite3 "$db" "$ledger_ddl"; done

for db in dev.db staging.db prod.db; do
    apply "$db" 20260418_001_users.sql 2026-04-18T09:12:03.000Z
done
for db in dev.db staging.db; do
    apply "$db" 20260420_001_tickets.sql 2026-04-20T10:00:41.000Z
    apply "$db" 20260422_001_deletion_log.sql 2026-04-22T08:30:00.000Z
done
apply dev.db 20260424_001_add_trash.sql 2026-04-24T11:02:17.000Z
apply dev.db 20260424_002_audit_idx.sql 2026-04-24T11:02:18.000Z \
    "CREATE INDEX tickets_user_status_idx ON tickets (user_id);"

ALTER TABLE tickets ADD COLUMN trashed_at TEXT;

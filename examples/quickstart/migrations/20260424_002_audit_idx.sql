-- Speeds up the audit screen, which lists a user's open tickets.
CREATE INDEX tickets_user_status_idx ON tickets (user_id, status);

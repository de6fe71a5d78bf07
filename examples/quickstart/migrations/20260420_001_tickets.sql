CREATE TABLE tickets (
    id       INTEGER PRIMARY KEY,
    user_id  INTEGER NOT NULL REFERENCES users (id),
    title    TEXT NOT NULL,
    status   TEXT NOT NULL DEFAULT 'open'
);

-- Captures and bins. Ids come from AUTOINCREMENT so a deleted id is never reused: live
-- clients resume with "after=<id>" and must never see a new capture under an old id.
CREATE TABLE bins (
    name        TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    count       INTEGER NOT NULL DEFAULT 0,   -- captures currently held
    pruned      INTEGER NOT NULL DEFAULT 0,   -- captures removed by retention
    last_at     TEXT,
    response    TEXT                          -- JSON: the configured answer, NULL = default
);

CREATE TABLE captures (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    bin          TEXT NOT NULL,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    query        TEXT NOT NULL,
    content_type TEXT,
    size         INTEGER NOT NULL,
    remote_addr  TEXT,
    received_at  TEXT NOT NULL,
    tls          TEXT,
    headers      TEXT NOT NULL,               -- JSON list of [name, value], order and repeats kept
    body         BLOB NOT NULL                -- last: list queries never touch its pages
);

CREATE INDEX captures_bin_id ON captures (bin, id);

-- Outbound deliveries of the mock provider (send, replay, emit, forward) and every attempt.
-- A delivery keeps everything needed to make its next attempt after a restart: the body as
-- rendered once, the request headers that do not change between attempts, and how the
-- per-attempt headers are made (headers_mode). Times are ISO 8601 UTC with microseconds, so
-- they compare as text.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    source          TEXT NOT NULL,               -- send | replay | emit | forward
    vendor          TEXT,                        -- NULL for a plain replay/forward
    event           TEXT,
    url             TEXT NOT NULL,               -- target as given (no URL params appended)
    method          TEXT NOT NULL,
    url_params      TEXT,                        -- JSON list of [name, value] (GET deliveries)
    headers         TEXT NOT NULL,               -- JSON list of [name, value]: fixed headers
    headers_mode    TEXT NOT NULL,               -- vendor | fixed | resign
    scheme          TEXT,                        -- signing scheme id (vendor or resign)
    secret          TEXT,
    msg_id          TEXT,                        -- stable across attempts (webhook-id)
    seed            INTEGER,
    overrides       TEXT,                        -- JSON object, as given
    content_type    TEXT,
    body            BLOB NOT NULL,
    status          TEXT NOT NULL,               -- pending | delivered | failed
    error           TEXT,                        -- why it failed, once failed
    warnings        TEXT NOT NULL DEFAULT '[]',  -- JSON list of strings
    policy          TEXT NOT NULL,               -- JSON: retry schedule, jitter, timeout, …
    attempt_count   INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER,                     -- response status of the latest attempt
    last_error      TEXT,                        -- error of the latest attempt
    capture_id      INTEGER,                     -- the replayed or forwarded capture
    redelivery_of   INTEGER,
    context         TEXT,                        -- JSON: source-specific (subscription, rule)
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    settled_at      TEXT,
    next_attempt_at TEXT,                        -- NULL once settled
    claimed_by      TEXT                         -- engine token holding the current lease
);

-- The scheduler's question: which pending deliveries are due?
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_capture ON deliveries (capture_id) WHERE capture_id IS NOT NULL;

CREATE TABLE delivery_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id      INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number           INTEGER NOT NULL,
    started_at       TEXT NOT NULL,
    method           TEXT NOT NULL,
    url              TEXT NOT NULL,              -- with URL params, as sent
    request_headers  TEXT NOT NULL,              -- JSON list of [name, value], as sent
    request_body     BLOB,                       -- NULL: the delivery's body
    response_status  INTEGER,
    response_headers TEXT,                       -- JSON list of [name, value]
    response_body    BLOB,                       -- the first 4 KiB
    response_size    INTEGER,
    duration_ms      REAL NOT NULL,
    error            TEXT,                       -- connection refused, timeout after 30s, …
    outcome          TEXT NOT NULL,              -- delivered | retry | failed
    UNIQUE (delivery_id, number)
);

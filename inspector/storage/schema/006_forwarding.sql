-- Forwarding (inspector/forwarding.py, inspector/storage/forwarding.py): per-bin rules, and
-- per-target ordering of forward deliveries.
CREATE TABLE forward_rules (
    bin         TEXT PRIMARY KEY,
    rules       TEXT NOT NULL,               -- JSON: {"targets": [...], "mode": ..., ...}
    updated_at  TEXT NOT NULL
);

-- Bumped on every change of forward_rules: each server process caches the rules in memory and
-- re-reads them when this number moved (several gunicorn workers share one file).
CREATE TABLE forward_version (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    version     INTEGER NOT NULL
);
INSERT INTO forward_version (id, version) VALUES (1, 0);

-- A delivery with a queue is sent strictly after every earlier pending delivery of the same
-- queue has settled (forwards: one queue per bin and target, in capture order). Only the head
-- of a queue has a next_attempt_at; the others wait with NULL until the head settles.
ALTER TABLE deliveries ADD COLUMN queue TEXT;
CREATE INDEX deliveries_queue ON deliveries (queue, id) WHERE status = 'pending';

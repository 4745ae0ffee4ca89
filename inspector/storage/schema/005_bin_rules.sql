-- Saved diff ignore rules per bin (inspector/storage/bin_rules.py). Kept apart from the bins
-- table so a bin's rules survive clearing or deleting it and can be set before its first
-- capture arrives.
CREATE TABLE bin_ignore_rules (
    bin         TEXT PRIMARY KEY,
    rules       TEXT NOT NULL,               -- JSON list of rule strings, in the order given
    updated_at  TEXT NOT NULL
);

-- "Which send produced capture N?" looks for attempts to /in/<bin> started before the capture
-- arrived, newest first.
CREATE INDEX delivery_attempts_started ON delivery_attempts (started_at);

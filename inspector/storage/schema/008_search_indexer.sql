-- Index captures after their commit instead of inside it. The insert trigger made every
-- capture's commit pay for FTS5 (~200 us of CPU), on the capture's own critical path; now the
-- writer indexes in batches when it has nothing else to do (storage/search.py), and a search
-- first brings the index up to date, so results are the same as before.
CREATE TABLE search_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_upto  INTEGER NOT NULL             -- every capture id <= this is in captures_fts
);

INSERT INTO search_state (id, indexed_upto) SELECT 1, COALESCE(MAX(id), 0) FROM captures;

DROP TRIGGER captures_fts_insert;
DROP TRIGGER captures_fts_delete;
DROP TRIGGER captures_fts_update_old;
DROP TRIGGER captures_fts_update_new;

-- A contentless index must be told exactly what a row held to forget it, and must never be
-- told about a row it does not have: only indexed ids are removed or re-indexed.
CREATE TRIGGER captures_fts_delete BEFORE DELETE ON captures
WHEN old.id <= (SELECT indexed_upto FROM search_state WHERE id = 1) BEGIN
    INSERT INTO captures_fts (captures_fts, rowid, bin, method, ctype, path, query, hnames,
                              headers, body)
    SELECT 'delete', id, bin, method, ctype, path, query, hnames, headers, body
    FROM captures_search_src WHERE id = old.id;
END;

CREATE TRIGGER captures_fts_update_old
BEFORE UPDATE OF id, bin, method, content_type, path, query, headers, body ON captures
WHEN old.id <= (SELECT indexed_upto FROM search_state WHERE id = 1) BEGIN
    INSERT INTO captures_fts (captures_fts, rowid, bin, method, ctype, path, query, hnames,
                              headers, body)
    SELECT 'delete', id, bin, method, ctype, path, query, hnames, headers, body
    FROM captures_search_src WHERE id = old.id;
END;

CREATE TRIGGER captures_fts_update_new
AFTER UPDATE OF id, bin, method, content_type, path, query, headers, body ON captures
WHEN new.id <= (SELECT indexed_upto FROM search_state WHERE id = 1) BEGIN
    INSERT INTO captures_fts (rowid, bin, method, ctype, path, query, hnames, headers, body)
    SELECT id, bin, method, ctype, path, query, hnames, headers, body
    FROM captures_search_src WHERE id = new.id;
END;

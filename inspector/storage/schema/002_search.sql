-- Full-text search over captures (inspector/storage/search.py runs the queries).
--
-- A contentless FTS5 index (content=''): it holds only the index, no second copy of headers
-- and bodies; search.py reads rowids from it and everything else from captures. The indexed
-- text is derived from each captures row by the view below, in one place. Triggers keep the
-- index in the same transaction as the row: a capture answered 2xx is already searchable, and
-- every delete (one capture, a cleared bin, retention pruning) removes its entries. FTS5's
-- 'delete' command must be handed exactly the values that were indexed; reading them through
-- the same view from the still-present row (BEFORE DELETE) guarantees that.
--
-- Columns:
--   bin, method, ctype (Content-Type), path, query, headers (the JSON list: names and values),
--   as stored;
--   hnames: each header name as ONE word: lower-cased, with q -> qq, '-' -> qh, '_' -> qu,
--     '.' -> qd, so X-Audian-Signature is the single word xqhaudianqhsignature, and
--     header:signature never matches x-audian-signature or stripe-signature (search.py holds
--     the same mapping). One word, not a phrase: FTS5 intersects single words with skips, so
--     "a common header in a bin that has none" stays ~10 ms at a million captures, where the
--     phrase "x audian signature" in the headers column took ~150 ms. It costs a json_each
--     per capture, about a tenth of the index's ingest cost.
--   body: the first 64 KiB of the body as text, none at all when that part holds a NUL byte
--     (binary: images, gzip, protobuf).
-- Only rowid order matters (newest first), never rank, so no per-row column sizes are kept.
CREATE VIEW captures_search_src AS
SELECT
    id,
    bin,
    method,
    content_type AS ctype,
    path,
    query,
    (SELECT group_concat(
         replace(replace(replace(replace(lower(h.value ->> 0), 'q', 'qq'), '-', 'qh'),
                 '_', 'qu'), '.', 'qd'), ' ')
     FROM json_each(captures.headers) AS h) AS hnames,
    headers,
    CASE WHEN instr(substr(body, 1, 65536), X'00') > 0 THEN NULL
         ELSE CAST(substr(body, 1, 65536) AS TEXT) END AS body
FROM captures;

CREATE VIRTUAL TABLE captures_fts USING fts5(
    bin, method, ctype, path, query, hnames, headers, body,
    content = '',
    columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER captures_fts_insert AFTER INSERT ON captures BEGIN
    INSERT INTO captures_fts (rowid, bin, method, ctype, path, query, hnames, headers, body)
    SELECT id, bin, method, ctype, path, query, hnames, headers, body
    FROM captures_search_src WHERE id = new.id;
END;

CREATE TRIGGER captures_fts_delete BEFORE DELETE ON captures BEGIN
    INSERT INTO captures_fts (captures_fts, rowid, bin, method, ctype, path, query, hnames,
                              headers, body)
    SELECT 'delete', id, bin, method, ctype, path, query, hnames, headers, body
    FROM captures_search_src WHERE id = old.id;
END;

-- Captures are not updated today; should an indexed column ever change, the index follows.
-- Other columns (status, …) may change freely without touching the index.
CREATE TRIGGER captures_fts_update_old
BEFORE UPDATE OF id, bin, method, content_type, path, query, headers, body ON captures BEGIN
    INSERT INTO captures_fts (captures_fts, rowid, bin, method, ctype, path, query, hnames,
                              headers, body)
    SELECT 'delete', id, bin, method, ctype, path, query, hnames, headers, body
    FROM captures_search_src WHERE id = old.id;
END;

CREATE TRIGGER captures_fts_update_new
AFTER UPDATE OF id, bin, method, content_type, path, query, headers, body ON captures BEGIN
    INSERT INTO captures_fts (rowid, bin, method, ctype, path, query, hnames, headers, body)
    SELECT id, bin, method, ctype, path, query, hnames, headers, body
    FROM captures_search_src WHERE id = new.id;
END;

-- Index what an existing database already holds.
INSERT INTO captures_fts (rowid, bin, method, ctype, path, query, hnames, headers, body)
SELECT id, bin, method, ctype, path, query, hnames, headers, body FROM captures_search_src;

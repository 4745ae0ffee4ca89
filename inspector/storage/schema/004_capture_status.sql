-- The status each capture was answered with (the bin's configured one at the time), so the
-- list can show it and search can filter on it. NULL for captures stored before this column.
ALTER TABLE captures ADD COLUMN status INTEGER;

CREATE INDEX captures_status ON captures (status, id);

-- Only deliveries that have a queue (forwards) belong in the queue index. It used to hold every
-- pending delivery, so each send paid for one more index entry on create and its removal on
-- settle; every query on it names a queue (queue = ? or queue IS NOT NULL), so the narrower
-- index serves them all.
DROP INDEX deliveries_queue;
CREATE INDEX deliveries_queue ON deliveries (queue, id) WHERE status = 'pending' AND queue IS NOT NULL;

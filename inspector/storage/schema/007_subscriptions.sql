-- Webhook subscriptions of the mock provider: the ones integration code registers through a
-- vendor's own API (/vendors/audian/…, /vendors/atomic/…) and the ones set up in a vendor's
-- console (/api/subscriptions). Emitted events are delivered to them; their secrets persist.
CREATE TABLE subscriptions (
    id                   TEXT PRIMARY KEY,            -- wh_… (Audian), 8 alnum (Atomic), sub_…
    vendor               TEXT NOT NULL,
    scope                TEXT NOT NULL DEFAULT '',    -- Atomic environment id; '' otherwise
    url                  TEXT NOT NULL,
    events               TEXT NOT NULL,               -- JSON list of event names, or ["*"]
    active               INTEGER NOT NULL DEFAULT 1,  -- 0: inactive (Audian) / disabled (Atomic)
    description          TEXT,
    secret               TEXT,                        -- NULL for unsigned vendors
    options              TEXT NOT NULL DEFAULT '{}',  -- JSON: vendor options (headers, method…)
    warnings             TEXT NOT NULL DEFAULT '[]',  -- JSON list of strings
    pause_after          INTEGER,                     -- consecutive failures that pause it
    paused_at            TEXT,                        -- set when it paused itself
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    delivered_count      INTEGER NOT NULL DEFAULT 0,
    failed_count         INTEGER NOT NULL DEFAULT 0,
    last_delivery_at     TEXT,
    last_outcome         TEXT,                        -- delivered | failed
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX subscriptions_vendor ON subscriptions (vendor, scope, created_at);

-- Which delivery went to which subscription (the /logs of a subscription, its health). Either
-- side may be written first: the link after the engine created the delivery, the outcome when
-- the engine reports it settled; a subscription's counters move once both are known.
CREATE TABLE subscription_deliveries (
    delivery_id     INTEGER PRIMARY KEY,
    subscription_id TEXT,
    event           TEXT,
    event_id        TEXT,                             -- the vendor's event id (evt_…), if any
    kind            TEXT,                             -- emit | test | scenario
    created_at      TEXT,
    outcome         TEXT,                             -- delivered | failed, once settled
    counted         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX subscription_deliveries_sub ON subscription_deliveries (subscription_id,
                                                                     delivery_id);

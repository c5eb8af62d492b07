-- Webhook delivery: one row per (event, subscribed endpoint), and every attempt made.

-- Why the engine disabled an endpoint (a whole retry schedule failed); NULL while active.
ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT;

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    -- pending, delivered, failed
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    -- When the next attempt is due; while an attempt is in flight, the end of its claim, so a
    -- dispatcher that died mid-attempt has its delivery picked up again.
    next_attempt_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (event_id, webhook_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, state);

CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    latency_ms BIGINT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX webhook_attempts_webhook ON webhook_attempts (webhook_id, created_at);
CREATE INDEX webhook_attempts_event ON webhook_attempts (event_id);

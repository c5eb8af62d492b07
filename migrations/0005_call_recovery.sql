-- Crash recovery: which engine instance runs a call and when it last said so, and the
-- transcript as it happens, so a call interrupted by a crash can still be finished.
ALTER TABLE calls ADD COLUMN instance_id TEXT;
ALTER TABLE calls ADD COLUMN heartbeat_at TEXT;
CREATE INDEX calls_open ON calls (status, instance_id);

-- One row per transcript turn of a running call, written as the turn is committed.
CREATE TABLE call_turns (
    call_id TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    PRIMARY KEY (call_id, seq)
);

-- Portable SQL: runs unchanged on SQLite and PostgreSQL. Timestamps are fixed-width RFC 3339 UTC
-- text (microseconds), so they sort and compare as text on both engines. JSON is stored as text.

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    live BOOLEAN NOT NULL,
    plan TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE knowledge_bases (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    live BOOLEAN NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX knowledge_bases_scope ON knowledge_bases (workspace_id, live, created_at);

CREATE TABLE knowledge_documents (
    id TEXT PRIMARY KEY,
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX knowledge_documents_kb ON knowledge_documents (knowledge_base_id, created_at);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    live BOOLEAN NOT NULL,
    name TEXT NOT NULL,
    voice_id TEXT NOT NULL,
    greeting TEXT,
    prompt TEXT,
    knowledge_base_id TEXT,
    phone_number TEXT,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX agents_scope ON agents (workspace_id, live, created_at);
CREATE INDEX agents_phone ON agents (phone_number);

CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    live BOOLEAN NOT NULL,
    agent_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    caller TEXT NOT NULL,
    to_number TEXT NOT NULL,
    carrier_call_id TEXT,
    context TEXT,
    status TEXT NOT NULL,
    duration_seconds BIGINT,
    sentiment TEXT,
    summary TEXT,
    tags TEXT NOT NULL,
    transcript TEXT NOT NULL,
    recording_path TEXT,
    latency TEXT NOT NULL,
    end_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE INDEX calls_scope ON calls (workspace_id, live, created_at);
CREATE INDEX calls_agent ON calls (workspace_id, live, agent_id, created_at);

CREATE TABLE leads (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    live BOOLEAN NOT NULL,
    name TEXT NOT NULL,
    phone TEXT,
    email TEXT,
    status TEXT NOT NULL,
    source TEXT,
    score BIGINT,
    tags TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX leads_scope ON leads (workspace_id, live, created_at);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    live BOOLEAN NOT NULL,
    channel TEXT NOT NULL,
    direction TEXT NOT NULL,
    to_number TEXT NOT NULL,
    from_number TEXT,
    body TEXT,
    template TEXT,
    variables TEXT,
    lead_id TEXT,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX messages_scope ON messages (workspace_id, live, created_at);

CREATE TABLE appointments (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    live BOOLEAN NOT NULL,
    lead_id TEXT,
    agent_id TEXT,
    title TEXT NOT NULL,
    start_time TEXT NOT NULL,
    end_time TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX appointments_scope ON appointments (workspace_id, live, start_time);

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    live BOOLEAN NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX webhooks_scope ON webhooks (workspace_id, live, created_at);

-- The outbox: written in the same transaction as the change that caused the event.
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    live BOOLEAN NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    delivery_state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at TEXT
);
CREATE INDEX events_pending ON events (delivery_state, next_attempt_at);
CREATE INDEX events_scope ON events (workspace_id, live, created_at);

-- API calls per key per UTC day (free-plan quota and /v1/analytics/usage).
CREATE TABLE api_usage (
    key_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    live BOOLEAN NOT NULL,
    day TEXT NOT NULL,
    calls BIGINT NOT NULL,
    PRIMARY KEY (key_id, day)
);
CREATE INDEX api_usage_scope ON api_usage (workspace_id, live, day);

-- Billable call minutes per workspace per UTC day, counted when a call finishes.
CREATE TABLE call_minutes (
    workspace_id TEXT NOT NULL,
    live BOOLEAN NOT NULL,
    day TEXT NOT NULL,
    minutes BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, live, day)
);

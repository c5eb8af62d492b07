-- Messaging through a real provider: the provider's id of each message (status callbacks and
-- inbound retries are matched by it), SMS segments, the provider's error, and when each status
-- was reached.
ALTER TABLE messages ADD COLUMN provider_sid TEXT;
ALTER TABLE messages ADD COLUMN segments BIGINT;
ALTER TABLE messages ADD COLUMN error_code TEXT;
ALTER TABLE messages ADD COLUMN error_message TEXT;
ALTER TABLE messages ADD COLUMN sent_at TEXT;
ALTER TABLE messages ADD COLUMN delivered_at TEXT;
ALTER TABLE messages ADD COLUMN failed_at TEXT;
CREATE UNIQUE INDEX messages_provider_sid ON messages (provider_sid);
-- The 24-hour WhatsApp window and inbound lead matching look up a sender's newest message.
CREATE INDEX messages_sender ON messages (workspace_id, live, from_number, created_at);

-- Where an agent may transfer callers: a JSON array of E.164 numbers and sip: URIs. The
-- transfer_call tool refuses every other target, so neither the caller nor a model can make
-- the engine dial a number the operator did not configure.
ALTER TABLE agents ADD COLUMN transfer_targets TEXT NOT NULL DEFAULT '[]';

-- A phone number reaches one agent per mode (live/test) across the whole store. Numbers
-- claimed twice before this constraint stay with the agent that claimed them first (oldest
-- created_at, then smallest id); the later claimants lose the number.
UPDATE agents SET phone_number = NULL
WHERE phone_number IS NOT NULL AND EXISTS (
    SELECT 1 FROM agents AS earlier
    WHERE earlier.phone_number = agents.phone_number
      AND earlier.live = agents.live
      AND (earlier.created_at < agents.created_at
           OR (earlier.created_at = agents.created_at AND earlier.id < agents.id))
);
DROP INDEX agents_phone;
CREATE UNIQUE INDEX agents_phone_per_mode ON agents (phone_number, live);

-- The tools the agent ran during a call (built-in and operator HTTP tools), with their
-- arguments and results, in order.
ALTER TABLE calls ADD COLUMN tool_calls TEXT NOT NULL DEFAULT '[]';

-- The agent's own LLM settings (model, temperature, max_tokens; the operator's endpoint and
-- key stay in configuration) and its operator HTTP tools, each a JSON document. Tool header
-- values are secrets the API never shows.
ALTER TABLE agents ADD COLUMN llm TEXT NOT NULL DEFAULT '{}';
ALTER TABLE agents ADD COLUMN tools TEXT NOT NULL DEFAULT '[]';

-- What the call came to (`result`, `follow_up`), from the post-call analysis.
ALTER TABLE calls ADD COLUMN outcome TEXT NOT NULL DEFAULT 'null';

-- Providers that failed during a call (speech, LLM), and what the caller heard instead.
ALTER TABLE calls ADD COLUMN provider_failures TEXT NOT NULL DEFAULT '[]';

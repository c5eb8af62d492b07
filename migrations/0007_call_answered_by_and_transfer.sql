-- Who answered an outbound call that asked for answering-machine detection (`human`,
-- `machine`, `fax`, `unknown`), and where a transferred call was sent.
ALTER TABLE calls ADD COLUMN answered_by TEXT;
ALTER TABLE calls ADD COLUMN transferred_to TEXT;

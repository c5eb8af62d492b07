//! Event types and the durable webhook outbox.

//! SIP trunk signalling: sans-IO transactions and dialogs, with UDP/TCP IO at the edge.

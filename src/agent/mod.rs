//! The agent side of a call: the turn-taking state machine, the session that drives one call,
//! tools, knowledge and prompts.

pub mod admission;
pub mod dates;
pub mod knowledge;
pub mod numerals;
pub mod phrases;
pub mod session;
pub mod spoken;
pub mod tools;
pub mod turn;
pub mod vocabulary;

//! Dialogue: scripts (话术组) and the per-call conversation state machine.
//!
//! [`engine::Dialogue`] is transport-free; the ESL call actor in
//! `dialer::call` feeds it recognition events and turns its actions into
//! `uuid_broadcast` / `uuid_break` / `uuid_kill`.

pub mod engine;
pub mod script;
pub mod smartivr;
pub mod tools;

pub use engine::{Action, Detail, Dialogue, Input, Prompt, RobotAudio, Summary};
pub use script::{Script, ScriptError, SAMPLE_SCRIPT};

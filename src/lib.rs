//! voxdial: an AI outbound-call engine beside FreeSWITCH.
//!
//! See `docs/ARCHITECTURE.md` for how the modules fit together.
#![forbid(unsafe_code)]

pub mod api;
pub mod benchutil;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod dialer;
pub mod dialogue;
pub mod finalize;
pub mod location;
pub mod logging;
pub mod metrics;
pub mod sim;
pub mod store;

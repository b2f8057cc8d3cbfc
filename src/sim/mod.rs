//! Simulated FreeSWITCH.
pub mod wire;

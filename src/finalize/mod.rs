//! Finalizer: turns a finished call into rows.
pub mod status;

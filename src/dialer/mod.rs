//! Dialer.

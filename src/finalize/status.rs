//! Hangup facts to number status.

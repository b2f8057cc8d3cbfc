//! Renders FreeSWITCH-shaped ESL frames.

//! FreeSWITCH Event Socket Layer: a `tokio_util` codec for the wire format and
//! an async inbound client with exact reply correlation.
//!
//! Protocol only: nothing here knows about dialing or scripts.
#![forbid(unsafe_code)]

pub mod client;
pub mod codec;
pub mod error;
pub mod event;
pub mod headers;
pub mod supervisor;

pub use client::{BgJob, CallEvents, CallEventsEnd, ClientConfig, ClientStats, EslClient, EventFormat, EventStream};
pub use codec::{Command, ContentType, EslCodec, Frame};
pub use error::{DecodeError, EslError};
pub use event::Event;
pub use headers::{Headers, ValueEncoding};
pub use supervisor::{ConnState, Supervisor, SupervisorConfig};

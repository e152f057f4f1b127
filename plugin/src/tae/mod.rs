//! The TAE REST client: routes ([`api`]) and the HTTP client with envelopes, errors and retries
//! ([`client`]).

pub mod api;
pub mod client;

pub use client::{ErrorKind, RetryPolicy, TaeClient, TaeError, Token};

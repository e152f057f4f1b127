//! The TAE REST client: routes ([`api`]), wire types ([`wire`]), error kinds ([`error`]), the
//! write gate that keeps a run's changes inside its leases ([`gate`]) and the HTTP client with
//! envelopes and retries ([`client`]). Nothing outside this module sees TAE's JSON or its
//! numeric codes.

pub mod api;
pub mod client;
pub mod error;
pub mod gate;
pub mod wire;

pub use client::{RetryPolicy, TaeClient, Token};
pub use error::{ErrorKind, TaeError};
pub use gate::WriteGate;
pub use wire::{
    Action, DocRecipient, DocStatus, Document, NewRecipient, Permissions, Profile, Publication,
    RecipientAuth, SearchRecord,
};

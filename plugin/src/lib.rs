//! tae-edu: the TOTVS Educacional ⇄ TOTVS Assinatura Eletrônica (TAE) integration plugin.
//!
//! The C ABI lives in [`ffi`] (the only module allowed `unsafe`); everything else is safe Rust,
//! testable with a mock [`host::Host`]. See `docs/abi.md` and `include/tae_edu.h`.

#![deny(unsafe_code)]

pub mod api;
pub mod attachments;
pub mod config;
pub mod error;
#[allow(unsafe_code)]
pub mod ffi;
pub mod host;
pub mod hostcalls;
pub mod logging;
pub mod process;
pub mod records;
pub mod redact;
pub mod session;
pub mod state;
pub mod tae;
pub mod validate;

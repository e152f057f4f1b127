//! Status codes of the C ABI and the structured error every entry point answers with.
//!
//! The numeric values are part of the ABI: never renumber, only append.

use serde::Serialize;

/// Return codes of every `tae_edu_*` export that returns `int32_t`.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Success; the response holds the answer.
    Ok = 0,
    /// A required pointer argument was null.
    NullArgument = 1,
    /// The request bytes are not valid UTF-8.
    InvalidUtf8 = 2,
    /// The request is not JSON of the expected shape (wrong types, unknown option, missing field).
    InvalidRequest = 3,
    /// The host callback table has the wrong `abi_version`, a too-small `struct_size`, or a null required callback.
    InvalidHostTable = 4,
    /// The plugin was entered again from inside one of its own host callbacks.
    Reentrant = 5,
    /// A panic was caught at the boundary (a bug in the plugin); the plugin stays usable.
    Panic = 6,
    /// A host callback failed or answered something the plugin could not use.
    HostError = 7,
    /// The user cancelled the authentication or CPF screen, or the progress callback asked to cancel before anything ran.
    Cancelled = 8,
    /// Authentication with TAE failed (wrong credentials, no service user for a non-interactive host).
    AuthFailed = 9,
    /// A permission is missing: the RM user's process permission or the TAE user's send/delete/query/create-users rights.
    PermissionDenied = 10,
    /// TAE could not be reached or answered an error that stopped the whole run.
    TaeError = 11,
    /// The global parameters are invalid (see the per-field errors in the response).
    InvalidConfig = 12,
    /// The request is larger than the plugin accepts.
    RequestTooLarge = 13,
    /// Kept for compatibility, no longer answered: a contract another run holds is reported in
    /// `results` with the outcome `held`, and the call goes on (it never waits for another run).
    Busy = 14,
    /// Any other failure inside the plugin.
    Internal = 99,
}

impl Status {
    /// The stable machine code used in the JSON error (`error.code`).
    pub fn code(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::NullArgument => "NULL_ARGUMENT",
            Status::InvalidUtf8 => "INVALID_UTF8",
            Status::InvalidRequest => "INVALID_REQUEST",
            Status::InvalidHostTable => "INVALID_HOST_TABLE",
            Status::Reentrant => "REENTRANT_CALL",
            Status::Panic => "PANIC",
            Status::HostError => "HOST_ERROR",
            Status::Cancelled => "CANCELLED",
            Status::AuthFailed => "AUTH_FAILED",
            Status::PermissionDenied => "PERMISSION_DENIED",
            Status::TaeError => "TAE_ERROR",
            Status::InvalidConfig => "INVALID_CONFIG",
            Status::RequestTooLarge => "REQUEST_TOO_LARGE",
            Status::Busy => "BUSY",
            Status::Internal => "INTERNAL",
        }
    }
}

/// A whole-call failure: becomes a non-zero status and the JSON
/// `{"ok": false, "error": {"code", "message", "detail", "fields"?}}`.
#[derive(Debug, Clone)]
pub struct PluginError {
    pub status: Status,
    /// For the end user, in Portuguese.
    pub message: String,
    /// For the integrator: technical detail (never a token or password).
    pub detail: String,
    /// Optional per-field errors (`configure validate`): field name -> Portuguese message.
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

impl PluginError {
    pub fn new(status: Status, message: impl Into<String>, detail: impl Into<String>) -> Self {
        PluginError {
            status,
            message: message.into(),
            detail: detail.into(),
            fields: None,
        }
    }

    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(
            Status::InvalidRequest,
            "Requisição inválida enviada ao plugin de integração com o TOTVS Assinatura Eletrônica.",
            detail,
        )
    }

    pub fn host(detail: impl Into<String>) -> Self {
        Self::new(
            Status::HostError,
            "O sistema hospedeiro (RM) não respondeu como esperado.",
            detail,
        )
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            Status::Internal,
            "Erro interno no plugin de integração com o TOTVS Assinatura Eletrônica.",
            detail,
        )
    }

    /// The JSON body written to the response buffer.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Body<'a> {
            code: &'a str,
            status: i32,
            message: &'a str,
            detail: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            fields: Option<&'a serde_json::Map<String, serde_json::Value>>,
        }
        serde_json::json!({
            "ok": false,
            "error": Body {
                code: self.status.code(),
                status: self.status as i32,
                message: &self.message,
                detail: &self.detail,
                fields: self.fields.as_ref(),
            }
        })
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} ({})",
            self.status.code(),
            self.message,
            self.detail
        )
    }
}

impl std::error::Error for PluginError {}

impl PluginError {
    /// The same error with another technical detail (redacted).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = crate::redact::redact(&detail.into());
        self
    }

    pub fn cancelled(message: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Status::Cancelled, message, detail)
    }

    pub fn auth_failed(message: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Status::AuthFailed, message, detail)
    }

    pub fn permission(message: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Status::PermissionDenied, message, detail)
    }

    pub fn tae(message: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Status::TaeError, message, detail)
    }
}

//! The stand-in's model: the business error, users and their permissions, documents with their
//! files and recipients, e-mails, the feature switches, and the rules of TAE's values (e-mail,
//! CPF/CNPJ, timestamps). No state lives here; see `store` for the store and `render` for the
//! JSON the routes answer.

use crate::api;
use chrono::{NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The seeded company.
pub const COMPANY_NAME: &str = "Escola Exemplo";
/// The seeded administrator: all permissions, confirmed.
pub const ADMIN_EMAIL: &str = "admin@escola.example";
pub const ADMIN_PASSWORD: &str = "Admin@123";
pub const ADMIN_NAME: &str = "Administrador Escola Exemplo";
pub const ADMIN_CPF: &str = "52998224725";
/// Default token lifetime (RM documents 12 hours).
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 12 * 3600;
/// Ids of uploaded documents start here.
pub const FIRST_DOCUMENT_ID: u64 = 100_001;

/// A business error of a route: the HTTP status and the Portuguese message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError {
    pub status: u16,
    pub message: String,
}

impl SimError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        SimError {
            status: 400,
            message: message.into(),
        }
    }
    pub fn unauthorized() -> Self {
        SimError {
            status: 401,
            message: api::MSG_INVALID_TOKEN.to_string(),
        }
    }
    pub fn forbidden(action: &str) -> Self {
        SimError {
            status: 403,
            message: api::msg_forbidden(action),
        }
    }
    pub fn not_found() -> Self {
        SimError::bad_request(api::MSG_NOT_FOUND)
    }
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for SimError {}

pub type SimResult<T> = Result<T, SimError>;

/// What a user may do in TAE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Permissions {
    pub publish: bool,
    pub delete: bool,
    pub query: bool,
    pub create_users: bool,
}

impl Default for Permissions {
    /// A partial `permissions` object: missing flags are `false`.
    fn default() -> Self {
        Permissions::NONE
    }
}

impl Permissions {
    pub const ALL: Permissions = Permissions {
        publish: true,
        delete: true,
        query: true,
        create_users: true,
    };
    pub const NONE: Permissions = Permissions {
        publish: false,
        delete: false,
        query: false,
        create_users: false,
    };
}

/// The permission a TAE route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Publish,
    Delete,
    Query,
    CreateUsers,
}

impl Need {
    /// The `<ação>` of the 403 message.
    pub fn action(self) -> &'static str {
        match self {
            Need::Publish => "enviar documentos",
            Need::Delete => "excluir documentos",
            Need::Query => "consultar documentos",
            Need::CreateUsers => "criar usuários",
        }
    }
    pub(crate) fn granted(self, permissions: &Permissions) -> bool {
        match self {
            Need::Publish => permissions.publish,
            Need::Delete => permissions.delete,
            Need::Query => permissions.query,
            Need::CreateUsers => permissions.create_users,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Company {
    pub id: u64,
    pub name: String,
}

/// A TAE user.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: u64,
    pub email: String,
    pub name: String,
    pub cpf: String,
    pub confirmed: bool,
    pub administrator: bool,
    pub permissions: Permissions,
    pub company: String,
    #[serde(skip)]
    pub company_id: u64,
    #[serde(skip)]
    pub password: Option<String>,
    pub created_at: String,
}

/// A user to create through the portal (`POST /_sim/users`) or [`SimState::create_user`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NewUser {
    pub email: String,
    pub password: Option<String>,
    pub name: String,
    pub cpf: String,
    /// Default `true`.
    pub confirmed: Option<bool>,
    /// Default: all four permissions. A partial object grants only the flags it sets.
    pub permissions: Option<Permissions>,
    pub administrator: bool,
    /// Default: the seeded company; a new name creates that company.
    pub company: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredFile {
    pub name: String,
    pub size: usize,
    pub sha256: String,
    #[serde(skip)]
    pub bytes: Arc<Vec<u8>>,
}

impl StoredFile {
    pub fn new(name: String, bytes: Vec<u8>) -> Self {
        StoredFile {
            size: bytes.len(),
            sha256: sha256_hex(&bytes),
            name,
            bytes: Arc::new(bytes),
        }
    }
}

/// A recipient as given to publish (D2) or add (D6).
#[derive(Debug, Clone)]
pub struct NewRecipient {
    pub email: String,
    pub name: String,
    pub acao: i64,
    pub workflow: i64,
    pub role: String,
    pub auth_type: i64,
    pub identification: String,
}

/// Where a recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientState {
    Pending,
    Signed,
    Validated,
    Witnessed,
    Rejected,
}

#[derive(Debug, Clone)]
pub struct Recipient {
    pub email: String,
    pub name: String,
    pub acao: i64,
    pub workflow: i64,
    pub role: String,
    pub auth_type: i64,
    pub identification: String,
    pub state: RecipientState,
    pub acted_at: Option<NaiveDateTime>,
}

impl Recipient {
    pub(crate) fn is_pending(&self) -> bool {
        matches!(
            self.state,
            RecipientState::Pending | RecipientState::Rejected
        )
    }
}

#[derive(Debug, Clone)]
pub struct Document {
    pub id: u64,
    pub company_id: u64,
    /// The upload's `NomeEnvelope`, answered as `nomeArquivo` (D3 and search records).
    pub name: String,
    pub files: Vec<StoredFile>,
    pub status: i64,
    pub created_at: NaiveDateTime,
    pub modified_at: NaiveDateTime,
    pub created_by: String,
    pub recipients: Vec<Recipient>,
    pub observers: Vec<String>,
    pub use_workflow: bool,
    pub allow_reject: bool,
    pub rejection_reason: Option<String>,
    pub rejected_by: Option<String>,
    pub subject: Option<String>,
    /// `publicacaoOpcoes.dataExpiracao` as given at publish (search records' `dataExpiracao`).
    pub expires_on: Option<String>,
    /// When D8 cancelled it (whatever the cancel model made of it).
    pub cancelled_at: Option<NaiveDateTime>,
    /// Cancelled under [`CancelModel::Vanish`]: absent from every TAE route.
    pub vanished: bool,
}

/// The publication (D2) as parsed by the route.
#[derive(Debug, Clone, Default)]
pub struct Publication {
    pub document_id: u64,
    pub use_workflow: bool,
    pub recipients: Vec<NewRecipient>,
    pub observers: Vec<String>,
    pub subject: Option<String>,
    pub allow_reject: bool,
    pub expires_on: Option<String>,
}

/// An e-mail the service "sent".
#[derive(Debug, Clone, Serialize)]
pub struct Email {
    pub to: String,
    /// `registration`, `signature_request`, `cancellation`, `recipient_removed`, `finalised`,
    /// `rejected`.
    pub kind: String,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_id: Option<u64>,
    pub at: String,
}

/// What D8 (cancel) makes of a document. TAE's real behaviour is not known (TAE-API.md:
/// "Cancel may not lead to a status 7"), so a client must be correct under each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelModel {
    /// Status 7 Cancelado; a second cancel answers 400 "Documento já cancelado.".
    #[default]
    Cancelled,
    /// Back to status 5 Rascunho, without recipients (it could be published again); a second
    /// cancel succeeds again.
    Draft,
    /// Gone: absent from D4, the recipient search and D5; D3, D8 and every other route answer
    /// 400 `success:false` "Documento não encontrado.".
    Vanish,
}

/// Switches of behaviours that are optional or unknown in the real service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Features {
    /// D5 (`documentos-empresa`); when off it answers 404 as an unknown route would.
    pub many_ids: bool,
    /// When on, a recipient with `tipoAutenticacao` 1 (logs in) can act only once they are a
    /// registered TAE user with a confirmed e-mail (default off: anyone named can act).
    pub strict_signers: bool,
    /// What cancel does (default: status 7).
    pub cancel_model: CancelModel,
    /// D4 filters by `nomeDocumento` (substring). TAE most likely cannot filter by name, so this
    /// is off by default: the field is then ignored, as an unknown field would be.
    pub search_by_name: bool,
    /// Answers carry the stand-in's extras beyond TAE-API.md: D3/D5 `nomeDocumento`,
    /// `criadoPor`, `pendentes[].nome`; search records' `nomeDocumento`, `recCreatedOn`,
    /// `recModifiedOn`, `criadoPor`. On by default (the plugin still reads some); a client that
    /// passes its tests with it off depends only on what TAE is known to send.
    pub sim_extras: bool,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            many_ids: true,
            strict_signers: false,
            cancel_model: CancelModel::Cancelled,
            search_by_name: false,
            sim_extras: true,
        }
    }
}

/// Timestamps as TAE writes them: no zone, UTC, microseconds.
pub fn tae_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A plausible e-mail: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

/// Check digits of a CPF (11 digits) or CNPJ (14 digits).
pub fn valid_cpf_or_cnpj(digits: &str) -> bool {
    let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != digits.len() || d.iter().all(|x| *x == d[0]) {
        return false;
    }
    match d.len() {
        11 => {
            let check = |n: usize| {
                let sum: u32 = (0..n).map(|i| d[i] * (n as u32 + 1 - i as u32)).sum();
                let r = (sum * 10) % 11;
                if r == 10 {
                    0
                } else {
                    r
                }
            };
            check(9) == d[9] && check(10) == d[10]
        }
        14 => {
            let check = |n: usize| {
                let weights: Vec<u32> = if n == 12 {
                    vec![5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
                } else {
                    vec![6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
                };
                let sum: u32 = (0..n).map(|i| d[i] * weights[i]).sum();
                let r = sum % 11;
                if r < 2 {
                    0
                } else {
                    11 - r
                }
            };
            check(12) == d[12] && check(13) == d[13]
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpf_and_cnpj_check_digits() {
        assert!(valid_cpf_or_cnpj("52998224725"));
        assert!(valid_cpf_or_cnpj("12345678909"));
        assert!(!valid_cpf_or_cnpj("12345678900"));
        assert!(!valid_cpf_or_cnpj("11111111111"));
        assert!(valid_cpf_or_cnpj("11222333000181"));
        assert!(!valid_cpf_or_cnpj("11222333000182"));
        assert!(!valid_cpf_or_cnpj("123"));
    }

    #[test]
    fn email_shapes() {
        assert!(valid_email("maria@example.com"));
        assert!(!valid_email("maria@example"));
        assert!(!valid_email("maria example@x.com"));
        assert!(!valid_email("@x.com"));
    }
}

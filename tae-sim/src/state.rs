//! The stand-in's state: companies, users, tokens, documents with their files and recipients,
//! the e-mails the service "sent", request counters, faults and features. `SimState` is a cheap
//! clone handle (an `Arc`) used by the HTTP handlers and by tests for direct inspection/control.

use crate::api;
use crate::faults::{FaultConfig, FaultDecision, FaultEngine};
use chrono::{NaiveDateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

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
    fn granted(self, permissions: &Permissions) -> bool {
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
    fn is_pending(&self) -> bool {
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

/// Optional routes that can be switched off to test a client's fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Features {
    /// D5 (`documentos-empresa`); when off it answers 404 as an unknown route would.
    pub many_ids: bool,
    /// When on, a recipient with `tipoAutenticacao` 1 (logs in) can act only once they are a
    /// registered TAE user with a confirmed e-mail (default off: anyone named can act).
    pub strict_signers: bool,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            many_ids: true,
            strict_signers: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    email: String,
    expires_at: NaiveDateTime,
}

#[derive(Debug)]
pub(crate) struct Inner {
    seed: u64,
    companies: Vec<Company>,
    users: Vec<User>,
    documents: BTreeMap<u64, Document>,
    next_document_id: u64,
    emails: Vec<Email>,
    tokens: HashMap<String, Token>,
    token_rng: fastrand::Rng,
    counters: BTreeMap<String, u64>,
    faults: FaultConfig,
    engine: FaultEngine,
    features: Features,
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

impl Inner {
    fn new(seed: u64, faults: FaultConfig) -> Self {
        let mut inner = Inner {
            seed,
            companies: Vec::new(),
            users: Vec::new(),
            documents: BTreeMap::new(),
            next_document_id: FIRST_DOCUMENT_ID,
            emails: Vec::new(),
            tokens: HashMap::new(),
            token_rng: fastrand::Rng::with_seed(seed ^ 0x5eed_70ce_u64),
            counters: BTreeMap::new(),
            engine: FaultEngine::new(seed),
            faults,
            features: Features::default(),
        };
        let company = inner.company_id(COMPANY_NAME);
        inner.users.push(User {
            id: 1,
            email: ADMIN_EMAIL.to_string(),
            name: ADMIN_NAME.to_string(),
            cpf: ADMIN_CPF.to_string(),
            confirmed: true,
            administrator: true,
            permissions: Permissions::ALL,
            company: COMPANY_NAME.to_string(),
            company_id: company,
            password: Some(ADMIN_PASSWORD.to_string()),
            created_at: tae_time(now()),
        });
        inner
    }

    fn company_id(&mut self, name: &str) -> u64 {
        if let Some(c) = self.companies.iter().find(|c| c.name == name) {
            return c.id;
        }
        let id = self.companies.len() as u64 + 1;
        self.companies.push(Company {
            id,
            name: name.to_string(),
        });
        id
    }

    fn user(&self, email: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
    }

    fn user_mut(&mut self, email: &str) -> Option<&mut User> {
        self.users
            .iter_mut()
            .find(|u| u.email.eq_ignore_ascii_case(email))
    }

    fn send_email(&mut self, to: &str, kind: &str, subject: String, document_id: Option<u64>) {
        self.emails.push(Email {
            to: to.to_string(),
            kind: kind.to_string(),
            subject,
            document_id,
            at: tae_time(now()),
        });
    }

    // --- authentication ---

    pub(crate) fn login(&mut self, email: &str, password: &str) -> SimResult<(String, String)> {
        let user = self
            .user(email)
            .filter(|u| u.password.as_deref() == Some(password))
            .ok_or_else(|| SimError::bad_request(api::MSG_BAD_LOGIN))?;
        if !user.confirmed {
            return Err(SimError::bad_request(api::MSG_NOT_CONFIRMED));
        }
        let email = user.email.clone();
        let ttl = self.faults.token_ttl_secs.unwrap_or(DEFAULT_TOKEN_TTL_SECS);
        let expires_at = now() + Duration::from_secs(ttl);
        let token: String = (0..48)
            .map(|_| {
                let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                alphabet[self.token_rng.usize(..alphabet.len())] as char
            })
            .collect();
        self.tokens
            .insert(token.clone(), Token { email, expires_at });
        Ok((
            token,
            expires_at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
        ))
    }

    /// The user behind a bearer token, if the token is known and not expired.
    pub(crate) fn authenticate(&self, token: Option<&str>) -> SimResult<User> {
        let token = token.ok_or_else(SimError::unauthorized)?;
        let entry = self.tokens.get(token).ok_or_else(SimError::unauthorized)?;
        if entry.expires_at <= now() {
            return Err(SimError::unauthorized());
        }
        self.user(&entry.email)
            .cloned()
            .ok_or_else(SimError::unauthorized)
    }

    pub(crate) fn require(user: &User, need: Need) -> SimResult<()> {
        if need.granted(&user.permissions) {
            Ok(())
        } else {
            Err(SimError::forbidden(need.action()))
        }
    }

    // --- users ---

    pub(crate) fn create_user(&mut self, new: NewUser) -> SimResult<User> {
        let email = new.email.trim().to_string();
        if !valid_email(&email) {
            return Err(SimError::bad_request("E-mail inválido."));
        }
        if self.user(&email).is_some() {
            return Err(SimError::bad_request(
                "Já existe um usuário cadastrado com este e-mail.",
            ));
        }
        let company_name = new.company.unwrap_or_else(|| COMPANY_NAME.to_string());
        let company_id = self.company_id(&company_name);
        let user = User {
            id: self.users.iter().map(|u| u.id).max().unwrap_or(0) + 1,
            name: if new.name.trim().is_empty() {
                email.clone()
            } else {
                new.name.trim().to_string()
            },
            email,
            cpf: new
                .cpf
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect(),
            confirmed: new.confirmed.unwrap_or(true),
            administrator: new.administrator,
            permissions: new.permissions.unwrap_or(Permissions::ALL),
            company: company_name,
            company_id,
            password: new.password.filter(|p| !p.is_empty()),
            created_at: tae_time(now()),
        };
        self.users.push(user.clone());
        Ok(user)
    }

    /// A3: registration by an authenticated user; the new user is unconfirmed, has no
    /// permissions, belongs to the caller's company and gets a confirmation e-mail.
    pub(crate) fn register(
        &mut self,
        caller: &User,
        email: &str,
        full_name: &str,
        identification: &str,
        identification_type: i64,
        password: Option<String>,
    ) -> SimResult<User> {
        Self::require(caller, Need::CreateUsers)?;
        if full_name.trim().is_empty() {
            return Err(SimError::bad_request("O nome completo é obrigatório."));
        }
        if email.trim().is_empty() {
            return Err(SimError::bad_request("O e-mail é obrigatório."));
        }
        if !valid_email(email.trim()) {
            return Err(SimError::bad_request("E-mail inválido."));
        }
        let identification = identification.trim();
        if identification_type == api::IDENT_FOREIGN {
            if identification.is_empty() || identification.chars().count() > 30 {
                return Err(SimError::bad_request(
                    "Identificação internacional inválida (1 a 30 caracteres).",
                ));
            }
        } else {
            let digits: String = identification
                .chars()
                .filter(|c| !matches!(c, '.' | '-' | '/' | ' '))
                .collect();
            if !valid_cpf_or_cnpj(&digits) {
                return Err(SimError::bad_request("CPF/CNPJ inválido."));
            }
        }
        let user = self.create_user(NewUser {
            email: email.trim().to_string(),
            password,
            name: full_name.trim().to_string(),
            cpf: identification.to_string(),
            confirmed: Some(false),
            permissions: Some(Permissions::NONE),
            administrator: false,
            company: Some(caller.company.clone()),
        })?;
        self.send_email(
            &user.email,
            "registration",
            "Confirme seu cadastro no TOTVS Assinatura Eletrônica".to_string(),
            None,
        );
        Ok(user)
    }

    pub(crate) fn confirm_user(
        &mut self,
        email: &str,
        password: Option<String>,
    ) -> SimResult<User> {
        let user = self
            .user_mut(email)
            .ok_or_else(|| SimError::bad_request("Usuário não encontrado."))?;
        user.confirmed = true;
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            user.password = Some(p);
        }
        Ok(user.clone())
    }

    pub(crate) fn find_users(&self, filter: &str, take: usize) -> Vec<User> {
        let filter = filter.to_lowercase();
        self.users
            .iter()
            .filter(|u| u.email.to_lowercase().contains(&filter))
            .take(take)
            .cloned()
            .collect()
    }

    // --- documents ---

    pub(crate) fn upload(&mut self, caller: &User, name: String, files: Vec<StoredFile>) -> u64 {
        let id = self.next_document_id;
        self.next_document_id += 1;
        let t = now();
        self.documents.insert(
            id,
            Document {
                id,
                company_id: caller.company_id,
                name,
                files,
                status: api::STATUS_DRAFT,
                created_at: t,
                modified_at: t,
                created_by: caller.email.clone(),
                recipients: Vec::new(),
                observers: Vec::new(),
                use_workflow: false,
                allow_reject: true,
                rejection_reason: None,
                rejected_by: None,
                subject: None,
            },
        );
        id
    }

    /// A document of the caller's company.
    pub(crate) fn document_for(&self, caller: &User, id: u64) -> SimResult<&Document> {
        self.documents
            .get(&id)
            .filter(|d| d.company_id == caller.company_id)
            .ok_or_else(SimError::not_found)
    }

    fn document_for_mut(&mut self, caller: &User, id: u64) -> SimResult<&mut Document> {
        self.documents
            .get_mut(&id)
            .filter(|d| d.company_id == caller.company_id)
            .ok_or_else(SimError::not_found)
    }

    pub(crate) fn company_documents(&self, caller: &User) -> impl Iterator<Item = &Document> {
        let company = caller.company_id;
        self.documents
            .values()
            .filter(move |d| d.company_id == company)
    }

    fn check_new_recipients(existing: &[Recipient], new: &[NewRecipient]) -> SimResult<()> {
        for (i, r) in new.iter().enumerate() {
            if !valid_email(&r.email) {
                return Err(SimError::bad_request(format!(
                    "E-mail do destinatário inválido: {}",
                    r.email
                )));
            }
            if !(api::ACAO_SIGN..=api::ACAO_WITNESS).contains(&r.acao) {
                return Err(SimError::bad_request(format!(
                    "Ação do destinatário inválida: {}",
                    r.acao
                )));
            }
            if r.auth_type == api::AUTH_EMAIL_CODE
                && (r.name.trim().is_empty() || r.identification.trim().is_empty())
            {
                return Err(SimError::bad_request(format!(
                    "Informe o nome completo e a identificação do destinatário {}.",
                    r.email
                )));
            }
            let repeated = existing
                .iter()
                .any(|e| e.email.eq_ignore_ascii_case(&r.email))
                || new[..i]
                    .iter()
                    .any(|e| e.email.eq_ignore_ascii_case(&r.email));
            if repeated {
                return Err(SimError::bad_request(format!(
                    "{}: {}",
                    api::MSG_DUPLICATE_RECIPIENT,
                    r.email
                )));
            }
        }
        Ok(())
    }

    fn recipient_name(&self, r: &NewRecipient) -> String {
        if !r.name.trim().is_empty() {
            return r.name.trim().to_string();
        }
        self.user(&r.email)
            .map(|u| u.name.clone())
            .unwrap_or_else(|| r.email.clone())
    }

    pub(crate) fn publish(&mut self, caller: &User, publication: Publication) -> SimResult<()> {
        Self::require(caller, Need::Publish)?;
        let document = self.document_for(caller, publication.document_id)?;
        if document.status != api::STATUS_DRAFT {
            return Err(SimError::bad_request(api::MSG_ALREADY_PUBLISHED));
        }
        if publication.recipients.is_empty() {
            return Err(SimError::bad_request("Informe ao menos um destinatário."));
        }
        Self::check_new_recipients(&[], &publication.recipients)?;
        if publication.use_workflow {
            let mut orders: Vec<i64> = publication.recipients.iter().map(|r| r.workflow).collect();
            orders.sort_unstable();
            if orders.iter().any(|o| *o < 1) {
                return Err(SimError::bad_request(
                    "Com fluxo de assinatura, informe a ordem (workflow) de cada destinatário a partir de 1.",
                ));
            }
        }
        let recipients: Vec<Recipient> = publication
            .recipients
            .iter()
            .map(|r| Recipient {
                email: r.email.trim().to_string(),
                name: self.recipient_name(r),
                acao: r.acao,
                workflow: if publication.use_workflow {
                    r.workflow
                } else {
                    0
                },
                role: r.role.clone(),
                auth_type: r.auth_type,
                identification: r.identification.clone(),
                state: RecipientState::Pending,
                acted_at: None,
            })
            .collect();
        let document = self.document_for_mut(caller, publication.document_id)?;
        document.status = api::STATUS_PENDING;
        document.recipients = recipients;
        document.observers = publication.observers;
        document.use_workflow = publication.use_workflow;
        document.allow_reject = publication.allow_reject;
        document.subject = publication.subject;
        document.modified_at = now();
        let (id, name) = (document.id, document.name.clone());
        let subject = document
            .subject
            .clone()
            .unwrap_or_else(|| format!("Documento para assinatura: {name}"));
        let to: Vec<String> = document
            .recipients
            .iter()
            .map(|r| r.email.clone())
            .collect();
        for email in to {
            self.send_email(&email, "signature_request", subject.clone(), Some(id));
        }
        Ok(())
    }

    pub(crate) fn add_recipients(
        &mut self,
        caller: &User,
        id: u64,
        new: Vec<NewRecipient>,
    ) -> SimResult<()> {
        Self::require(caller, Need::Publish)?;
        let document = self.document_for(caller, id)?;
        if !matches!(
            document.status,
            api::STATUS_PENDING | api::STATUS_PARTIALLY_SIGNED
        ) {
            return Err(SimError::bad_request(format!(
                "Não é possível alterar destinatários de um documento com status {}.",
                api::status_name(document.status)
            )));
        }
        if new.is_empty() {
            return Err(SimError::bad_request("Informe ao menos um destinatário."));
        }
        Self::check_new_recipients(&document.recipients, &new)?;
        let use_workflow = document.use_workflow;
        let added: Vec<Recipient> = new
            .iter()
            .map(|r| Recipient {
                email: r.email.trim().to_string(),
                name: self.recipient_name(r),
                acao: r.acao,
                workflow: if use_workflow { r.workflow.max(1) } else { 0 },
                role: r.role.clone(),
                auth_type: r.auth_type,
                identification: r.identification.clone(),
                state: RecipientState::Pending,
                acted_at: None,
            })
            .collect();
        let document = self.document_for_mut(caller, id)?;
        let subject = document
            .subject
            .clone()
            .unwrap_or_else(|| format!("Documento para assinatura: {}", document.name));
        let to: Vec<String> = added.iter().map(|r| r.email.clone()).collect();
        document.recipients.extend(added);
        document.modified_at = now();
        for email in to {
            self.send_email(&email, "signature_request", subject.clone(), Some(id));
        }
        Ok(())
    }

    pub(crate) fn remove_recipient(
        &mut self,
        caller: &User,
        id: u64,
        email: &str,
    ) -> SimResult<()> {
        Self::require(caller, Need::Publish)?;
        let document = self.document_for_mut(caller, id)?;
        if !matches!(
            document.status,
            api::STATUS_PENDING | api::STATUS_PARTIALLY_SIGNED
        ) {
            return Err(SimError::bad_request(format!(
                "Não é possível alterar destinatários de um documento com status {}.",
                api::status_name(document.status)
            )));
        }
        let index = document
            .recipients
            .iter()
            .position(|r| r.email.eq_ignore_ascii_case(email.trim()))
            .ok_or_else(|| SimError::bad_request("Destinatário não encontrado no documento."))?;
        if !document.recipients[index].is_pending() {
            return Err(SimError::bad_request(
                "O destinatário já assinou o documento e não pode ser removido.",
            ));
        }
        if document.recipients.len() == 1 {
            return Err(SimError::bad_request(
                "O documento precisa de ao menos um destinatário.",
            ));
        }
        let removed = document.recipients.remove(index);
        document.modified_at = now();
        let name = document.name.clone();
        Self::settle(document);
        self.send_email(
            &removed.email,
            "recipient_removed",
            format!("Você foi removido do documento: {name}"),
            Some(id),
        );
        Ok(())
    }

    /// Recomputes the status of a published document from its recipients.
    fn settle(document: &mut Document) {
        if !matches!(
            document.status,
            api::STATUS_PENDING | api::STATUS_PARTIALLY_SIGNED
        ) {
            return;
        }
        let acted = document
            .recipients
            .iter()
            .filter(|r| !r.is_pending())
            .count();
        document.status = if acted == document.recipients.len() {
            api::STATUS_FINALISED
        } else if acted > 0 {
            api::STATUS_PARTIALLY_SIGNED
        } else {
            api::STATUS_PENDING
        };
    }

    pub(crate) fn cancel(&mut self, caller: &User, id: u64) -> SimResult<()> {
        Self::require(caller, Need::Delete)?;
        let document = self.document_for_mut(caller, id)?;
        match document.status {
            api::STATUS_FINALISED => return Err(SimError::bad_request(api::MSG_FINALISED_CANCEL)),
            api::STATUS_CANCELLED => return Err(SimError::bad_request(api::MSG_ALREADY_CANCELLED)),
            _ => {}
        }
        let was_published = document.status != api::STATUS_DRAFT;
        document.status = api::STATUS_CANCELLED;
        document.modified_at = now();
        let name = document.name.clone();
        let to: Vec<String> = if was_published {
            document
                .recipients
                .iter()
                .filter(|r| r.is_pending())
                .map(|r| r.email.clone())
                .collect()
        } else {
            Vec::new()
        };
        for email in to {
            self.send_email(
                &email,
                "cancellation",
                format!("Documento cancelado: {name}"),
                Some(id),
            );
        }
        Ok(())
    }

    /// A document the portal can act on: pending or partially signed (else 409).
    fn pending_document_mut(&mut self, id: u64) -> SimResult<&mut Document> {
        let document = self
            .documents
            .get_mut(&id)
            .ok_or_else(SimError::not_found)?;
        if !matches!(
            document.status,
            api::STATUS_PENDING | api::STATUS_PARTIALLY_SIGNED
        ) {
            return Err(SimError {
                status: 409,
                message: format!(
                    "O documento não está pendente (status {}).",
                    api::status_name(document.status)
                ),
            });
        }
        Ok(document)
    }

    /// The portal: a recipient signs, validates or witnesses (by its `acao`).
    pub(crate) fn act(&mut self, id: u64, email: &str) -> SimResult<Document> {
        if self.features.strict_signers {
            let needs_account = self
                .documents
                .get(&id)
                .and_then(|d| {
                    d.recipients
                        .iter()
                        .find(|r| r.email.eq_ignore_ascii_case(email.trim()))
                })
                .is_some_and(|r| r.auth_type == api::AUTH_LOGIN);
            let confirmed = self.user(email.trim()).is_some_and(|u| u.confirmed);
            if needs_account && !confirmed {
                return Err(SimError {
                    status: 409,
                    message: format!(
                        "{email} precisa ter cadastro confirmado no TOTVS Assinatura Eletrônica para assinar."
                    ),
                });
            }
        }
        let document = self.pending_document_mut(id)?;
        let next_turn = document
            .recipients
            .iter()
            .filter(|r| r.is_pending())
            .map(|r| r.workflow)
            .min()
            .unwrap_or(0);
        let use_workflow = document.use_workflow;
        let recipient = document
            .recipients
            .iter_mut()
            .find(|r| r.email.eq_ignore_ascii_case(email.trim()))
            .ok_or_else(|| SimError {
                status: 404,
                message: format!("{email} não é destinatário do documento {id}."),
            })?;
        if !recipient.is_pending() {
            return Err(SimError {
                status: 409,
                message: format!("{email} já realizou sua ação neste documento."),
            });
        }
        if use_workflow && recipient.workflow > next_turn {
            return Err(SimError {
                status: 409,
                message: format!(
                    "Aguardando destinatários anteriores no fluxo (ordem {next_turn})."
                ),
            });
        }
        recipient.state = match recipient.acao {
            api::ACAO_VALIDATE => RecipientState::Validated,
            api::ACAO_WITNESS => RecipientState::Witnessed,
            _ => RecipientState::Signed,
        };
        let t = now();
        recipient.acted_at = Some(t);
        document.modified_at = t;
        Self::settle(document);
        let snapshot = document.clone();
        if snapshot.status == api::STATUS_FINALISED {
            let mut to = vec![snapshot.created_by.clone()];
            to.extend(snapshot.recipients.iter().map(|r| r.email.clone()));
            to.extend(snapshot.observers.iter().cloned());
            for email in to {
                self.send_email(
                    &email,
                    "finalised",
                    format!("Documento finalizado: {}", snapshot.name),
                    Some(id),
                );
            }
        }
        Ok(snapshot)
    }

    /// The portal: a recipient rejects the document with a reason.
    pub(crate) fn reject(&mut self, id: u64, email: &str, reason: &str) -> SimResult<Document> {
        let document = self.pending_document_mut(id)?;
        if !document.allow_reject {
            return Err(SimError {
                status: 409,
                message: "Este documento não permite rejeição.".to_string(),
            });
        }
        if reason.trim().is_empty() {
            return Err(SimError::bad_request("Informe o motivo da rejeição."));
        }
        let recipient = document
            .recipients
            .iter_mut()
            .find(|r| r.email.eq_ignore_ascii_case(email.trim()))
            .ok_or_else(|| SimError {
                status: 404,
                message: format!("{email} não é destinatário do documento {id}."),
            })?;
        if !recipient.is_pending() {
            return Err(SimError {
                status: 409,
                message: format!("{email} já realizou sua ação neste documento."),
            });
        }
        recipient.state = RecipientState::Rejected;
        let t = now();
        recipient.acted_at = Some(t);
        document.status = api::STATUS_REJECTED;
        document.rejection_reason = Some(reason.trim().to_string());
        document.rejected_by = Some(recipient.email.clone());
        document.modified_at = t;
        let snapshot = document.clone();
        self.send_email(
            &snapshot.created_by,
            "rejected",
            format!("Documento rejeitado: {}", snapshot.name),
            Some(id),
        );
        Ok(snapshot)
    }

    // --- counters and faults ---

    pub(crate) fn count_and_decide(&mut self, method: &str, template: &str) -> FaultDecision {
        *self
            .counters
            .entry(format!("{method} {template}"))
            .or_insert(0) += 1;
        self.engine.decide(&self.faults, method, template)
    }
}

/// The TAE shape of a document (D3 and D5 `data`).
pub fn document_json(document: &Document) -> Value {
    let first = document.files.first();
    let assinantes: Vec<Value> = document
        .recipients
        .iter()
        .filter(|r| !r.is_pending())
        .map(|r| {
            json!({"email": r.email, "nome": r.name, "data": r.acted_at.map(tae_time), "acao": r.acao})
        })
        .collect();
    let pendentes: Vec<Value> = document
        .recipients
        .iter()
        .filter(|r| r.is_pending())
        .map(|r| json!({"email": r.email, "nome": r.name, "acao": r.acao}))
        .collect();
    json!({
        "id": document.id,
        "nomeDocumento": document.name,
        "status": document.status,
        "nomeArquivo": first.map(|f| f.name.clone()),
        "tamanhoArquivo": first.map(|f| f.size),
        "recCreatedOn": tae_time(document.created_at),
        "recModifiedOn": tae_time(document.modified_at),
        "motivoRejeicao": document.rejection_reason,
        "criadoPor": document.created_by,
        "assinantes": assinantes,
        "pendentes": pendentes,
    })
}

/// The portal's view of a document (`GET /_sim/documents`).
pub fn document_portal_json(document: &Document, company: &str) -> Value {
    let first = document.files.first();
    let recipients: Vec<Value> = document
        .recipients
        .iter()
        .map(|r| {
            json!({
                "email": r.email, "name": r.name, "acao": r.acao, "workflow": r.workflow,
                "role": r.role, "auth_type": r.auth_type, "identification": r.identification,
                "state": r.state, "acted_at": r.acted_at.map(tae_time),
            })
        })
        .collect();
    json!({
        "id": document.id,
        "name": document.name,
        "company": company,
        "status": document.status,
        "status_name": api::status_name(document.status),
        "file_name": first.map(|f| f.name.clone()),
        "file_size": first.map(|f| f.size),
        "sha256": first.map(|f| f.sha256.clone()),
        "files": document.files,
        "recipients": recipients,
        "observers": document.observers,
        "use_workflow": document.use_workflow,
        "motivoRejeicao": document.rejection_reason,
        "rejection_reason": document.rejection_reason,
        "rejected_by": document.rejected_by,
        "createdBy": document.created_by,
        "created_by": document.created_by,
        "created_at": tae_time(document.created_at),
        "modified_at": tae_time(document.modified_at),
    })
}

/// A cheap clone handle on the stand-in's state, for handlers and for tests.
#[derive(Clone)]
pub struct SimState {
    pub(crate) inner: Arc<Mutex<Inner>>,
    pub(crate) shutdown: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimState").finish_non_exhaustive()
    }
}

impl SimState {
    pub(crate) fn new(
        seed: u64,
        faults: FaultConfig,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        SimState {
            inner: Arc::new(Mutex::new(Inner::new(seed, faults))),
            shutdown,
        }
    }

    /// Every document (all companies), in the portal's JSON shape (see `docs/tae-sim.md`).
    pub fn documents(&self) -> Vec<Value> {
        let inner = self.inner.lock();
        inner
            .documents
            .values()
            .map(|d| document_portal_json(d, &company_name(&inner, d.company_id)))
            .collect()
    }

    /// One document in the portal's JSON shape.
    pub fn document(&self, id: u64) -> Option<Value> {
        let inner = self.inner.lock();
        inner
            .documents
            .get(&id)
            .map(|d| document_portal_json(d, &company_name(&inner, d.company_id)))
    }

    /// The status code of a document.
    pub fn document_status(&self, id: u64) -> Option<i64> {
        self.inner.lock().documents.get(&id).map(|d| d.status)
    }

    /// The stored bytes of a document's first file.
    pub fn document_file(&self, id: u64) -> Option<Vec<u8>> {
        let inner = self.inner.lock();
        let document = inner.documents.get(&id)?;
        document.files.first().map(|f| f.bytes.as_ref().clone())
    }

    /// Every user (passwords are never shown).
    pub fn users(&self) -> Vec<User> {
        self.inner.lock().users.clone()
    }

    pub fn user(&self, email: &str) -> Option<User> {
        self.inner.lock().user(email).cloned()
    }

    /// Creates a user (defaults: confirmed, all permissions, the seeded company).
    pub fn create_user(&self, new: NewUser) -> SimResult<User> {
        self.inner.lock().create_user(new)
    }

    /// Confirms a user's e-mail, optionally setting the password (as the portal's link would).
    pub fn confirm_user(&self, email: &str, password: Option<&str>) -> SimResult<User> {
        self.inner
            .lock()
            .confirm_user(email, password.map(str::to_string))
    }

    /// Replaces a user's permissions.
    pub fn set_permissions(&self, email: &str, permissions: Permissions) -> SimResult<User> {
        let mut inner = self.inner.lock();
        let user = inner
            .user_mut(email)
            .ok_or_else(|| SimError::bad_request("Usuário não encontrado."))?;
        user.permissions = permissions;
        Ok(user.clone())
    }

    /// Every e-mail "sent", oldest first.
    pub fn emails(&self) -> Vec<Email> {
        self.inner.lock().emails.clone()
    }

    /// Request counters: `"<METHOD> <route template>"` → count (TAE routes only).
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.inner.lock().counters.clone()
    }

    /// One counter, e.g. `counter("POST", api::UPLOAD)`.
    pub fn counter(&self, method: &str, template: &str) -> u64 {
        self.inner
            .lock()
            .counters
            .get(&format!("{method} {template}"))
            .copied()
            .unwrap_or(0)
    }

    /// The sum of every counter.
    pub fn total_requests(&self) -> u64 {
        self.inner.lock().counters.values().sum()
    }

    pub fn reset_counters(&self) {
        self.inner.lock().counters.clear();
    }

    pub fn faults(&self) -> FaultConfig {
        self.inner.lock().faults.clone()
    }

    /// Replaces the fault configuration (takes effect on the next request).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.inner.lock().faults = faults;
    }

    pub fn features(&self) -> Features {
        self.inner.lock().features
    }

    /// Switches D5 (`documentos-empresa`) on or off.
    pub fn set_many_ids(&self, enabled: bool) {
        self.inner.lock().features.many_ids = enabled;
    }

    /// Requires (or not) a confirmed TAE account of `tipoAutenticacao` 1 recipients to act.
    pub fn set_strict_signers(&self, enabled: bool) {
        self.inner.lock().features.strict_signers = enabled;
    }

    /// A recipient signs, validates or witnesses (by its `acao`); returns the document (portal
    /// JSON). Errors: 400 unknown document, 404 not a recipient, 409 not pending / already
    /// acted / not its turn in the workflow.
    pub fn act(&self, document_id: u64, email: &str) -> SimResult<Value> {
        let mut inner = self.inner.lock();
        let document = inner.act(document_id, email)?;
        Ok(document_portal_json(
            &document,
            &company_name(&inner, document.company_id),
        ))
    }

    /// `act` under the name of the role; the recipient's own `acao` decides what it does.
    pub fn sign(&self, document_id: u64, email: &str) -> SimResult<Value> {
        self.act(document_id, email)
    }

    pub fn validate(&self, document_id: u64, email: &str) -> SimResult<Value> {
        self.act(document_id, email)
    }

    pub fn witness(&self, document_id: u64, email: &str) -> SimResult<Value> {
        self.act(document_id, email)
    }

    /// A recipient rejects the document with a reason (status Rejeitado).
    pub fn reject(&self, document_id: u64, email: &str, reason: &str) -> SimResult<Value> {
        let mut inner = self.inner.lock();
        let document = inner.reject(document_id, email, reason)?;
        Ok(document_portal_json(
            &document,
            &company_name(&inner, document.company_id),
        ))
    }

    /// Makes every token issued so far expired (the next call with it gets 401).
    pub fn expire_tokens(&self) {
        let past = now() - Duration::from_secs(1);
        for token in self.inner.lock().tokens.values_mut() {
            token.expires_at = past;
        }
    }

    /// Back to the seeded state: only the company and its admin, no documents, e-mails,
    /// tokens or counters, no faults, every feature on, the RNG re-seeded.
    pub fn reset(&self) {
        let mut inner = self.inner.lock();
        let seed = inner.seed;
        *inner = Inner::new(seed, FaultConfig::default());
    }

    /// True once the server is shutting down (hangs end early).
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

fn company_name(inner: &Inner, id: u64) -> String {
    inner
        .companies
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.name.clone())
        .unwrap_or_default()
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

//! The store: one `Inner` behind the `SimState` mutex, split by area — users (`users.rs`),
//! documents (`documents.rs`) and recipients (`recipients.rs`); authentication, the clock, the
//! e-mails "sent", the request counters and the fault engine live here.

mod documents;
mod recipients;
mod users;

use crate::api;
use crate::faults::{FaultConfig, FaultDecision, FaultEngine};
use crate::model::*;
use chrono::NaiveDateTime;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

#[derive(Debug, Clone)]
struct Token {
    email: String,
    expires_at: NaiveDateTime,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) seed: u64,
    pub(crate) companies: Vec<Company>,
    pub(crate) users: Vec<User>,
    /// Position in `users` by e-mail (ASCII lower case): lookups stay cheap with thousands of
    /// users (a bench registers one per financial responsible).
    user_index: HashMap<String, usize>,
    pub(crate) documents: BTreeMap<u64, Document>,
    next_document_id: u64,
    pub(crate) emails: Vec<Email>,
    tokens: HashMap<String, Token>,
    token_rng: fastrand::Rng,
    pub(crate) counters: BTreeMap<String, u64>,
    pub(crate) faults: FaultConfig,
    engine: FaultEngine,
    pub(crate) features: Features,
    /// The sim clock's offset from the host's, in seconds (`/_sim/clock`).
    pub(crate) clock_offset_secs: i64,
}

impl Inner {
    /// TAE's clock: the host's UTC plus the sim clock offset. Every timestamp the stand-in
    /// writes (`recCreatedOn`, `dataCriacao`, `expirationDate`, e-mails, acts) and every token
    /// expiry check use it.
    pub(crate) fn now(&self) -> NaiveDateTime {
        now() + chrono::TimeDelta::seconds(self.clock_offset_secs)
    }

    pub(crate) fn new(seed: u64, faults: FaultConfig) -> Self {
        let mut inner = Inner {
            seed,
            companies: Vec::new(),
            users: Vec::new(),
            user_index: HashMap::new(),
            documents: BTreeMap::new(),
            next_document_id: FIRST_DOCUMENT_ID,
            emails: Vec::new(),
            tokens: HashMap::new(),
            token_rng: fastrand::Rng::with_seed(seed ^ 0x5eed_70ce_u64),
            counters: BTreeMap::new(),
            engine: FaultEngine::new(seed),
            faults,
            features: Features::default(),
            clock_offset_secs: 0,
        };
        let company = inner.company_id(COMPANY_NAME);
        let created_at = tae_time(inner.now());
        inner.add_user(User {
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
            created_at,
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

    pub(crate) fn user(&self, email: &str) -> Option<&User> {
        let i = *self.user_index.get(&email.to_ascii_lowercase())?;
        self.users.get(i)
    }

    pub(crate) fn user_mut(&mut self, email: &str) -> Option<&mut User> {
        let i = *self.user_index.get(&email.to_ascii_lowercase())?;
        self.users.get_mut(i)
    }

    /// Adds a user (users are never removed nor change e-mail).
    pub(crate) fn add_user(&mut self, user: User) {
        self.user_index
            .insert(user.email.to_ascii_lowercase(), self.users.len());
        self.users.push(user);
    }

    fn send_email(&mut self, to: &str, kind: &str, subject: String, document_id: Option<u64>) {
        self.emails.push(Email {
            to: to.to_string(),
            kind: kind.to_string(),
            subject,
            document_id,
            at: tae_time(self.now()),
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
        let expires_at = self.now() + Duration::from_secs(ttl);
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
        if entry.expires_at <= self.now() {
            return Err(SimError::unauthorized());
        }
        self.user(&entry.email)
            .cloned()
            .ok_or_else(SimError::unauthorized)
    }

    /// Every token issued so far becomes expired.
    pub(crate) fn expire_tokens(&mut self) {
        let past = self.now() - Duration::from_secs(1);
        for token in self.tokens.values_mut() {
            token.expires_at = past;
        }
    }

    pub(crate) fn require(user: &User, need: Need) -> SimResult<()> {
        if need.granted(&user.permissions) {
            Ok(())
        } else {
            Err(SimError::forbidden(need.action()))
        }
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

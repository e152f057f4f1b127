//! Per-RM-session TAE authentication: the token cache entry, the authentication screen (or the
//! service user for non-interactive hosts), re-authentication after expiry or a 401, the TAE
//! permission check and the RM user's registration in TAE. What one run does with the session
//! (its contracts, records, stop flag) lives in `process::run`; this module knows nothing of it.

use crate::config::Params;
use crate::error::PluginError;
use crate::hostcalls::{CurrentUser, HostApi, Screen};
use crate::state::State;
use crate::tae::{ErrorKind, TaeClient, TaeError, Token};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::Arc;

pub use crate::tae::Permissions;

/// A permission an option needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Send,
    Delete,
    Query,
    CreateUsers,
}

impl Need {
    fn label(self) -> &'static str {
        match self {
            Need::Send => "Enviar documentos",
            Need::Delete => "Excluir documentos",
            Need::Query => "Consultar documentos",
            Need::CreateUsers => "Criar usuários",
        }
    }
    fn granted(self, p: &Permissions) -> bool {
        match self {
            Need::Send => p.send,
            Need::Delete => p.delete,
            Need::Query => p.query,
            Need::CreateUsers => p.create_users,
        }
    }
}

/// One RM session's cached TAE login.
#[derive(Clone, Debug)]
pub struct SessionEntry {
    pub token: Token,
    pub email: String,
    pub api_url: String,
    /// `None` = not read yet; `Some(None)` = the service does not report permissions.
    pub permissions: Option<Option<Permissions>>,
    pub rm_user_checked: bool,
    /// Passwords typed in this session's authentication screens: masked in every log line while
    /// the session lives, forgotten with it.
    pub secrets: Vec<String>,
}

impl SessionEntry {
    /// Forgets the token and the passwords of the session (it ends or is replaced).
    pub fn forget_secrets(&self) {
        crate::redact::forget_secret(&self.token.token);
        for s in &self.secrets {
            crate::redact::forget_secret(s);
        }
    }
}

/// Drops one session's token (`tae_edu_session_end`).
pub fn end_session(session: &str) {
    if let Some(state) = crate::state::existing() {
        if let Some(entry) = state.sessions.lock().remove(session) {
            entry.forget_secrets();
        }
    }
}

const MAX_LOGIN_ATTEMPTS: usize = 3;

/// A successful login: the token, the e-mail used and the passwords typed on the way.
pub struct Login {
    pub token: Token,
    pub email: String,
    pub secrets: Vec<String>,
}

fn tae_unreachable(e: &TaeError) -> PluginError {
    PluginError::tae(
        format!(
            "Não foi possível comunicar com o TOTVS Assinatura Eletrônica: {}.",
            e.user_text()
        ),
        e.to_string(),
    )
}

/// Logs in: the service user when the host has no interactive user, else the authentication
/// screen (up to three tries on wrong credentials).
pub async fn login(
    host: HostApi<'_>,
    client: &TaeClient,
    params: &Params,
    session: &str,
    user: &CurrentUser,
    reason: &str,
) -> Result<Login, PluginError> {
    if !user.interactive {
        let (Some(email), Some(password)) = (&params.service_user, &params.service_password) else {
            return Err(PluginError::auth_failed(
                "Execução sem usuário interativo: configure o usuário de serviço e sua senha em Parâmetros Globais → Integração com TOTVS Sign.",
                "non-interactive host and no service_user/service_password in the global parameters",
            ));
        };
        return match client.login(email, password).await {
            Ok(t) => Ok(Login {
                token: t,
                email: email.clone(),
                secrets: Vec::new(),
            }),
            Err(e) if e.kind.is_unreachable() => Err(tae_unreachable(&e)),
            Err(e) => Err(PluginError::auth_failed(
                "O TOTVS Assinatura Eletrônica recusou o usuário de serviço configurado nos Parâmetros Globais (e-mail ou senha inválidos).",
                e.to_string(),
            )),
        };
    }
    let mut reason = reason.to_string();
    let mut message: Option<String> = None;
    let mut hint = user.email.clone();
    let mut secrets: Vec<String> = Vec::new();
    let forget = |secrets: &[String]| {
        for s in secrets {
            crate::redact::forget_secret(s);
        }
    };
    for _ in 0..MAX_LOGIN_ATTEMPTS {
        let (email, password) = match host.ui_authenticate(
            session,
            hint.as_deref(),
            &reason,
            message.as_deref(),
        )? {
            Screen::Cancelled => {
                forget(&secrets);
                return Err(PluginError::cancelled(
                        "A autenticação no TOTVS Assinatura Eletrônica não foi feita (a tela foi fechada sem confirmar, ou não pôde ser mostrada). Nenhum contrato foi processado.",
                        "ui.authenticate cancelled",
                    ));
            }
            Screen::Confirmed(c) => c,
        };
        if !password.is_empty() {
            secrets.push(password.clone());
        }
        if email.is_empty() || password.is_empty() {
            reason = "retry".into();
            message = Some("Informe o e-mail e a senha do TOTVS Assinatura Eletrônica.".into());
            continue;
        }
        match client.login(&email, &password).await {
            Ok(t) => {
                // Refused passwords are forgotten now; the accepted one lives with the session.
                secrets.retain(|s| s != &password);
                forget(&secrets);
                return Ok(Login {
                    token: t,
                    email,
                    secrets: vec![password],
                });
            }
            Err(e) if e.kind.is_unreachable() => {
                forget(&secrets);
                return Err(tae_unreachable(&e));
            }
            Err(e) => {
                log::info!("TAE login refused for the session: {e}");
                reason = "retry".into();
                message = Some("E-mail ou senha inválidos. Tente novamente.".into());
                hint = Some(email);
            }
        }
    }
    forget(&secrets);
    Err(PluginError::auth_failed(
        "E-mail ou senha do TOTVS Assinatura Eletrônica inválidos. Nenhum contrato foi processado.",
        format!("login refused {MAX_LOGIN_ATTEMPTS} times"),
    ))
}

/// One run's view of the RM session's TAE login: the token (refreshed once on a 401 through the
/// screen or the service user), the permission check and the call wrapper. Lives on the calling
/// thread (not `Send`).
pub struct Session<'h> {
    host: HostApi<'h>,
    pub client: TaeClient,
    params: Params,
    session: String,
    user: CurrentUser,
    state: Arc<State>,
    token: RefCell<Token>,
    generation: Cell<u64>,
    relogin: tokio::sync::Mutex<()>,
    /// Why TAE can no longer be used by this run (authentication lost, permission refused).
    lost: RefCell<Option<String>>,
}

impl<'h> Session<'h> {
    /// Uses the session's cached token, or logs in (reason "first" or "expired").
    pub async fn establish(
        host: HostApi<'h>,
        state: Arc<State>,
        params: Params,
        client: TaeClient,
        session: &str,
        user: CurrentUser,
    ) -> Result<Session<'h>, PluginError> {
        let valid = |e: &SessionEntry| e.api_url == client.api_url() && !e.token.is_expired();
        let cached = state.sessions.lock().get(session).cloned();
        // Two calls of one session at once (two threads) log in once: the second waits for
        // the first and uses its token.
        let login_lock = match &cached {
            Some(e) if valid(e) => None,
            _ => Some(state.session_login_lock(session)),
        };
        let _login_guard = match &login_lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        let cached = state.sessions.lock().get(session).cloned();
        let token = match cached {
            Some(e) if valid(&e) => e.token,
            other => {
                let reason = if other.as_ref().is_some_and(|e| e.token.is_expired()) {
                    "expired"
                } else {
                    "first"
                };
                if let Some(old) = other {
                    old.forget_secrets();
                }
                let l = login(host, &client, &params, session, &user, reason).await?;
                state.sessions.lock().insert(
                    session.to_string(),
                    SessionEntry {
                        token: l.token.clone(),
                        email: l.email,
                        api_url: client.api_url().to_string(),
                        permissions: None,
                        rm_user_checked: false,
                        secrets: l.secrets,
                    },
                );
                l.token
            }
        };
        Ok(Session {
            host,
            client,
            params,
            session: session.to_string(),
            user,
            state,
            token: RefCell::new(token),
            generation: Cell::new(0),
            relogin: tokio::sync::Mutex::new(()),
            lost: RefCell::new(None),
        })
    }

    /// Why this run can no longer use TAE, if it cannot.
    pub fn lost(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    fn entry_update(&self, f: impl FnOnce(&mut SessionEntry)) {
        if let Some(e) = self.state.sessions.lock().get_mut(&self.session) {
            f(e);
        }
    }

    fn entry(&self) -> Option<SessionEntry> {
        self.state.sessions.lock().get(&self.session).cloned()
    }

    /// Logs in again after a 401 seen with token generation `seen`; only the first caller
    /// prompts, the others reuse its token.
    async fn relogin(&self, seen: u64) -> Result<(), TaeError> {
        let _guard = self.relogin.lock().await;
        if self.generation.get() != seen {
            return Ok(());
        }
        if let Some(msg) = self.lost() {
            return Err(TaeError::new(
                ErrorKind::Unauthorized,
                Some(401),
                msg,
                "authentication already lost in this run".into(),
            ));
        }
        match login(
            self.host,
            &self.client,
            &self.params,
            &self.session,
            &self.user,
            "unauthorized",
        )
        .await
        {
            Ok(l) => {
                let old = self.token.replace(l.token.clone());
                crate::redact::forget_secret(&old.token);
                self.generation.set(seen + 1);
                let mut orphan = Some(l.secrets);
                self.entry_update(|e| {
                    e.token = l.token;
                    if !e.email.eq_ignore_ascii_case(&l.email) {
                        // Another TAE user: their permissions are read again next time.
                        e.permissions = None;
                    }
                    e.email = l.email;
                    e.secrets.extend(orphan.take().unwrap_or_default());
                });
                // The session was ended meanwhile: this run keeps the new token; its passwords
                // are not kept.
                for s in orphan.unwrap_or_default() {
                    crate::redact::forget_secret(&s);
                }
                Ok(())
            }
            Err(pe) => {
                *self.lost.borrow_mut() = Some(pe.message.clone());
                if let Some(e) = self.state.sessions.lock().remove(&self.session) {
                    e.forget_secrets();
                }
                Err(TaeError::new(
                    ErrorKind::Unauthorized,
                    Some(401),
                    pe.message,
                    pe.detail,
                ))
            }
        }
    }

    /// Runs one TAE call with the session's token; on a 401 logs in again once and retries.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, TaeError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, TaeError>>,
    {
        let seen = self.generation.get();
        let token = self.token.borrow().token.clone();
        match f(token).await {
            Err(e) if e.kind == ErrorKind::Unauthorized => {
                self.relogin(seen).await?;
                let token = self.token.borrow().token.clone();
                let res = f(token).await;
                if let Err(e) = &res {
                    self.note_forbidden(e);
                }
                res
            }
            Err(e) => {
                self.note_forbidden(&e);
                Err(e)
            }
            ok => ok,
        }
    }

    /// Without permission flags in the profile, a 403 is the permission error of the run.
    fn note_forbidden(&self, e: &TaeError) {
        if e.kind == ErrorKind::PermissionDenied && self.lost.borrow().is_none() {
            let msg = if e.message.is_empty() {
                "O usuário do TOTVS Assinatura Eletrônica não tem permissão para esta operação."
                    .to_string()
            } else {
                e.message.clone()
            };
            *self.lost.borrow_mut() = Some(msg);
        }
    }

    /// Checks once per session that the TAE user has every permission in `needs`.
    pub async fn check_permissions(&self, needs: &[Need]) -> Result<(), PluginError> {
        let perms = match self.entry().and_then(|e| e.permissions) {
            Some(p) => p,
            None => {
                let profile = self
                    .call(|t| async move { self.client.profile(&t).await })
                    .await
                    .map_err(|e| self.run_error(&e))?;
                let p = profile.permissions();
                if p.is_none() {
                    log::warn!("TAE profile has no permission flags; a 403 will stop the run");
                }
                self.entry_update(|e| e.permissions = Some(p));
                p
            }
        };
        let Some(perms) = perms else { return Ok(()) };
        let missing: Vec<&str> = needs
            .iter()
            .filter(|n| !n.granted(&perms))
            .map(|n| n.label())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let who = self.entry().map(|e| e.email).unwrap_or_default();
        Err(PluginError::permission(
            format!(
                "O usuário {who} do TOTVS Assinatura Eletrônica não tem a permissão \"{}\". Peça ao administrador da empresa no TOTVS Assinatura Eletrônica para concedê-la. Nenhum contrato foi processado.",
                missing.join("\", \"")
            ),
            format!("TAE profile lacks: {}", missing.join(", ")),
        ))
    }

    /// The TAE user this run acts as (the session's login e-mail).
    pub fn tae_user(&self) -> Option<String> {
        self.entry().map(|e| e.email)
    }

    /// Converts a TAE failure that stops the whole run into its `PluginError`.
    pub fn run_error(&self, e: &TaeError) -> PluginError {
        match e.kind {
            ErrorKind::Unauthorized => PluginError::auth_failed(
                if e.message.is_empty() {
                    "A autenticação no TOTVS Assinatura Eletrônica foi recusada.".to_string()
                } else {
                    e.message.clone()
                },
                e.to_string(),
            ),
            ErrorKind::PermissionDenied => PluginError::permission(
                format!(
                    "O usuário do TOTVS Assinatura Eletrônica não tem permissão para esta operação{}",
                    if e.message.is_empty() { ".".to_string() } else { format!(": {}", e.message) }
                ),
                e.to_string(),
            ),
            _ => tae_unreachable(e),
        }
    }

    /// The session's checks before any contract: the TAE user's permissions
    /// ([`Self::check_permissions`]) and the RM user's presence in TAE
    /// (`ensure_rm_user`). Their two reads (the profile and the RM user's lookup) are
    /// made together, one round trip instead of two; a missing permission is answered before
    /// any screen asks for a CPF.
    pub async fn check_ready(&self, needs: &[Need]) -> Result<Option<String>, PluginError> {
        let (permissions, lookup) =
            futures_util::future::join(self.check_permissions(needs), self.lookup_rm_user()).await;
        permissions?;
        self.ensure_rm_user(lookup?).await
    }

    /// The RM user's e-mail and whether TAE knows it; `None` when there is nothing to check
    /// (a non-interactive host, or checked earlier in this session).
    async fn lookup_rm_user(&self) -> Result<Option<(String, bool)>, PluginError> {
        if !self.user.interactive || self.entry().is_some_and(|e| e.rm_user_checked) {
            return Ok(None);
        }
        let Some(email) = self
            .user
            .email
            .as_deref()
            .and_then(crate::validate::normalize_email)
        else {
            return Err(PluginError::permission(
                format!(
                    "O usuário {} do RM não tem e-mail cadastrado; o e-mail é necessário para identificá-lo no TOTVS Assinatura Eletrônica.",
                    self.user.who()
                ),
                "user.current answered no valid email",
            ));
        };
        let exists = self
            .call(|t| {
                let email = email.clone();
                async move { self.client.user_exists(&t, &email).await }
            })
            .await
            .map_err(|e| self.run_error(&e))?;
        Ok(Some((email, exists)))
    }

    /// The logged RM user must exist in TAE; if not (as `lookup` answered), asks the CPF and
    /// registers them. Once per session; skipped for non-interactive hosts (the service user
    /// acts). Answers a notice for the end user when a registration happened.
    async fn ensure_rm_user(
        &self,
        lookup: Option<(String, bool)>,
    ) -> Result<Option<String>, PluginError> {
        let Some((email, exists)) = lookup else {
            return Ok(None);
        };
        let mut notice = None;
        if !exists {
            let mut message: Option<String> = Some(format!(
                "O usuário {email} não está cadastrado no TOTVS Assinatura Eletrônica. Informe seu CPF para o cadastro."
            ));
            let mut cpf = None;
            for _ in 0..3 {
                match self.host.ui_ask_cpf(&self.session, &self.user.name, &email, message.as_deref())? {
                    Screen::Cancelled => {
                        return Err(PluginError::cancelled(
                            "Cadastro no TOTVS Assinatura Eletrônica cancelado. Nenhum contrato foi processado.",
                            "ui.ask_cpf cancelled",
                        ))
                    }
                    Screen::Confirmed(c) => match crate::validate::normalize_cpf(&c) {
                        Some(ok) => {
                            cpf = Some(ok);
                            break;
                        }
                        None => message = Some("CPF inválido. Confira os dígitos e tente novamente.".into()),
                    },
                }
            }
            let Some(cpf) = cpf else {
                return Err(PluginError::new(
                    crate::error::Status::AuthFailed,
                    "CPF inválido informado três vezes. O usuário não foi cadastrado no TOTVS Assinatura Eletrônica e nenhum contrato foi processado.",
                    "invalid CPF at ui.ask_cpf (3 times); no request sent",
                ));
            };
            let name = if self.user.name.is_empty() {
                self.user.who()
            } else {
                self.user.name.clone()
            };
            self.call(|t| {
                let (email, name, cpf) = (email.clone(), name.clone(), cpf.clone());
                async move { self.client.register_user(&t, &email, &name, &cpf).await }
            })
            .await
            .map_err(|e| self.run_error(&e))?;
            notice = Some(format!(
                "O usuário {email} foi cadastrado no TOTVS Assinatura Eletrônica; confirme o e-mail enviado pelo TOTVS Assinatura Eletrônica."
            ));
        }
        self.entry_update(|e| e.rm_user_checked = true);
        Ok(notice)
    }
}

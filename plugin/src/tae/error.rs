//! TAE's failures, classified once (here and in the client) into the kinds the core acts on.
//!
//! The kind comes from the HTTP status and the envelope's own fields first. Where only TAE's
//! Portuguese text tells what happened (a business refusal answered as 400 or `success:false`),
//! the phrases sit in [`PHRASES`], one test per entry; nothing else in the plugin reads TAE's
//! message text.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401: the token is missing, invalid or expired.
    Unauthorized,
    /// 403: a permission is missing.
    PermissionDenied,
    /// The document (or route, or recipient) does not exist.
    NotFound,
    /// Publishing a document that is already published.
    AlreadyPublished,
    /// A recipient with that e-mail is already on the document.
    DuplicateRecipient,
    /// Registering a user who already exists.
    AlreadyRegistered,
    /// The document is finalised (signed): it cannot be changed or cancelled.
    Finalised,
    /// The document is already cancelled.
    AlreadyCancelled,
    /// 400 or another business refusal (`success: false`), with TAE's message.
    Rejected,
    /// 429 still answered after the retry budget.
    RateLimited,
    /// 5xx, a dropped connection or an unreadable answer: TAE is failing (or, for a call that
    /// is not idempotent, its outcome is unknown).
    Unavailable,
    /// No answer within the request timeout.
    Timeout,
    /// Nothing listens at the address (connection refused, unknown host).
    ConnectionRefused,
    /// HTTPS spoken to an HTTP server, or the reverse.
    ProtocolMismatch,
    /// An answer the client could not understand.
    Protocol,
    /// The server's TLS certificate is not trusted (or does not match its name).
    Certificate,
    /// Not sent: the run's leases lapsed before the request was written (the write gate,
    /// [`super::gate`]). Nothing reached TAE.
    LeaseLapsed,
}

impl ErrorKind {
    /// A failure of the transport or of TAE's availability (worth retrying idempotent calls;
    /// the outcome of a non-idempotent one is unknown).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::ConnectionRefused
        )
    }

    /// The call may have gone through: the caller reads the remote state before acting again.
    pub fn is_ambiguous(self) -> bool {
        self.is_transient() || self == ErrorKind::Protocol
    }

    /// TAE could not be reached or spoken to at all (for the login: not a refusal of the user).
    pub fn is_unreachable(self) -> bool {
        self.is_transient()
            || matches!(
                self,
                ErrorKind::Protocol | ErrorKind::Certificate | ErrorKind::ProtocolMismatch
            )
    }
}

/// TAE's phrases for refusals whose kind only the text tells: every word of an entry must
/// appear (case-insensitive). Checked in order; the first match wins.
pub const PHRASES: &[(&[&str], ErrorKind)] = &[
    (&["não encontrad"], ErrorKind::NotFound),
    (&["nao encontrad"], ErrorKind::NotFound),
    (&["not found"], ErrorKind::NotFound),
    (&["já", "publicad"], ErrorKind::AlreadyPublished),
    (&["repetido"], ErrorKind::DuplicateRecipient),
    (&["já", "cadastr"], ErrorKind::AlreadyRegistered),
    (&["já", "existe"], ErrorKind::AlreadyRegistered),
    (&["já", "registr"], ErrorKind::AlreadyRegistered),
    (&["finalizado"], ErrorKind::Finalised),
    (&["já", "cancelad"], ErrorKind::AlreadyCancelled),
];

/// The kind of a business refusal from TAE's message (`Rejected` when no phrase matches).
pub fn kind_from_message(message: &str) -> ErrorKind {
    let m = message.to_lowercase();
    PHRASES
        .iter()
        .find(|(words, _)| words.iter().all(|w| m.contains(w)))
        .map_or(ErrorKind::Rejected, |(_, k)| *k)
}

/// What was wrong with an answer TAE (or something between the plugin and TAE) sent, for the
/// per-contract message: the client refuses these answers instead of trusting or buffering them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadAnswer {
    /// An HTML page where JSON was expected (a proxy's or a web server's error page).
    Html,
    /// JSON cut short.
    Truncated,
    /// Neither JSON nor HTML.
    NotJson,
    /// A field the client needs is absent (`data`, or one under it: `status`, `id`, …).
    MissingField(String),
    /// A field of another JSON type than TAE's contract (`found` in Portuguese).
    WrongType { field: String, found: String },
    /// The answer grew past the client's limit (read no further).
    TooLarge { limit_mb: u64 },
    /// A compressed answer (`Content-Encoding`) the client never asked for.
    Compressed(String),
    /// A redirect (3xx); `host` is the target's host when it names another one.
    Redirect { host: Option<String> },
}

impl BadAnswer {
    /// The phrase after "o TOTVS Assinatura Eletrônica".
    fn phrase(&self) -> String {
        match self {
            BadAnswer::Html => "respondeu com uma página HTML em vez de JSON".into(),
            BadAnswer::Truncated => "enviou uma resposta truncada (JSON incompleto)".into(),
            BadAnswer::NotJson => "enviou uma resposta que não é JSON".into(),
            BadAnswer::MissingField(f) => format!("respondeu sem o campo {f} (campo {f} ausente)"),
            BadAnswer::WrongType { field, found } => {
                format!("respondeu com o campo {field} de tipo inesperado ({found})")
            }
            BadAnswer::TooLarge { limit_mb } => {
                format!("enviou uma resposta maior que o limite de {limit_mb} MB (recusada)")
            }
            BadAnswer::Compressed(enc) => {
                format!("enviou uma resposta compactada ({enc}) que não foi pedida (recusada)")
            }
            BadAnswer::Redirect { host: Some(h) } => {
                format!("pediu um redirecionamento para outro endereço ({h}), recusado")
            }
            BadAnswer::Redirect { host: None } => "pediu um redirecionamento, recusado".into(),
        }
    }
}

/// A failed TAE call. `message` is TAE's own text (Portuguese) when it sent one.
#[derive(Clone, Debug)]
pub struct TaeError {
    pub kind: ErrorKind,
    pub http_status: Option<u16>,
    pub message: String,
    pub detail: String,
    /// The `Retry-After` TAE answered with the last attempt: the least time to wait before
    /// trying this route again.
    pub retry_after: Option<Duration>,
    /// What was wrong with TAE's answer, when the call failed on the answer itself.
    pub answer: Option<BadAnswer>,
}

impl std::fmt::Display for TaeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.kind)?;
        if let Some(s) = self.http_status {
            write!(f, " (HTTP {s})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if !self.detail.is_empty() {
            write!(f, " [{}]", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for TaeError {}

impl TaeError {
    pub fn new(kind: ErrorKind, status: Option<u16>, message: String, detail: String) -> Self {
        TaeError {
            kind,
            http_status: status,
            message,
            detail: crate::redact::redact(&detail),
            retry_after: None,
            answer: None,
        }
    }

    /// A failure on the answer itself (see [`BadAnswer`]).
    pub fn bad_answer(
        kind: ErrorKind,
        status: Option<u16>,
        answer: BadAnswer,
        detail: String,
    ) -> Self {
        let mut e = TaeError::new(kind, status, String::new(), detail);
        e.answer = Some(answer);
        e
    }

    /// The least wait before this call may be tried again: TAE's `Retry-After` when it sent
    /// one, else `fallback`.
    pub fn wait_at_least(&self, fallback: Duration) -> Duration {
        self.retry_after.map_or(fallback, |r| r.max(fallback))
    }

    /// A short Portuguese text for a per-contract message.
    pub fn user_text(&self) -> String {
        if let Some(a) = &self.answer {
            return format!("o TOTVS Assinatura Eletrônica {}", a.phrase());
        }
        match self.kind {
            ErrorKind::ConnectionRefused => {
                "conexão recusada — nada responde nesse endereço e porta; confira a URL nos Parâmetros Globais e se o serviço está no ar".into()
            }
            ErrorKind::Timeout => {
                "o TOTVS Assinatura Eletrônica não respondeu dentro do tempo limite".into()
            }
            ErrorKind::ProtocolMismatch => {
                "o endereço configurado não fala o protocolo esperado (https:// para um servidor http://, ou o contrário); confira a URL nos Parâmetros Globais".into()
            }
            ErrorKind::RateLimited | ErrorKind::Unavailable => format!(
                "o TOTVS Assinatura Eletrônica não respondeu a tempo ou está indisponível{}",
                self.suffix()
            ),
            ErrorKind::Unauthorized => "a sessão no TOTVS Assinatura Eletrônica expirou".into(),
            ErrorKind::PermissionDenied if self.message.is_empty() => {
                "o usuário do TOTVS Assinatura Eletrônica não tem permissão para esta operação"
                    .into()
            }
            ErrorKind::Certificate => {
                "o certificado de segurança (TLS) do servidor não é confiável; confira o endereço ou informe o arquivo de certificados da autoridade certificadora (ca_file) nos Parâmetros Globais".into()
            }
            ErrorKind::Protocol => {
                "o TOTVS Assinatura Eletrônica respondeu de forma inesperada".into()
            }
            ErrorKind::LeaseLapsed => {
                "a reserva deste contrato venceu antes do envio (esta execução ficou parada por mais tempo que a reserva); nada foi enviado ao TOTVS Assinatura Eletrônica, e outra execução pode assumir o contrato".into()
            }
            _ if self.message.is_empty() => {
                "o TOTVS Assinatura Eletrônica recusou a operação".into()
            }
            _ => format!(
                "o TOTVS Assinatura Eletrônica recusou a operação: {}",
                self.message.trim_end_matches('.')
            ),
        }
    }

    fn suffix(&self) -> String {
        if self.message.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One case per entry of [`PHRASES`], in order, with TAE's (or tae-sim's) wording.
    #[test]
    fn each_phrase_entry() {
        let cases: &[(&str, ErrorKind)] = &[
            ("Documento não encontrado.", ErrorKind::NotFound),
            ("Documento nao encontrado", ErrorKind::NotFound),
            ("Document not found", ErrorKind::NotFound),
            ("Documento já publicado.", ErrorKind::AlreadyPublished),
            (
                "Existe destinatário repetido",
                ErrorKind::DuplicateRecipient,
            ),
            (
                "Já existe um usuário cadastrado com este e-mail.",
                ErrorKind::AlreadyRegistered,
            ),
            ("Usuário já existe", ErrorKind::AlreadyRegistered),
            ("E-mail já registrado", ErrorKind::AlreadyRegistered),
            (
                "Documento finalizado não pode ser cancelado.",
                ErrorKind::Finalised,
            ),
            ("Documento já cancelado.", ErrorKind::AlreadyCancelled),
        ];
        assert_eq!(cases.len(), PHRASES.len(), "one case per entry");
        for (i, (text, kind)) in cases.iter().enumerate() {
            assert_eq!(kind_from_message(text), *kind, "{text}");
            let (words, entry_kind) = PHRASES[i];
            assert_eq!(entry_kind, *kind, "entry {i} {words:?}");
            assert!(
                words.iter().all(|w| text.to_lowercase().contains(w)),
                "entry {i} matches its own case"
            );
        }
        assert_eq!(kind_from_message("Senha inválida"), ErrorKind::Rejected);
        assert_eq!(kind_from_message(""), ErrorKind::Rejected);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut e = TaeError::new(
            ErrorKind::RateLimited,
            Some(429),
            String::new(),
            String::new(),
        );
        assert_eq!(
            e.wait_at_least(Duration::from_millis(300)),
            Duration::from_millis(300)
        );
        e.retry_after = Some(Duration::from_secs(1));
        assert_eq!(
            e.wait_at_least(Duration::from_millis(300)),
            Duration::from_secs(1)
        );
        assert_eq!(
            e.wait_at_least(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
    }
}

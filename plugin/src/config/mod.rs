//! The global parameters ("Parâmetros Globais → Integração com TOTVS Sign"): description of the
//! tab's fields, validation and normalisation (`docs/abi.md`, "Global parameters").

use crate::error::{PluginError, Status};
use crate::validate::{normalize_cpf, normalize_email};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub mod connection;

/// A validator, witness or extra signer named in the parameters or in the process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub name: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpf: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientAuthType {
    Login,
    EmailCode,
}

/// The normalised global parameters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Params {
    pub auth_url: String,
    pub api_url: String,
    pub web_login_url: Option<String>,
    pub service_user: Option<String>,
    #[serde(skip_serializing)]
    pub service_password: Option<String>,
    pub request_timeout_secs: u64,
    pub max_concurrency: usize,
    pub extra_signers: Vec<Person>,
    pub witness_count: usize,
    pub witnesses: Vec<Person>,
    pub validators: Vec<Person>,
    pub recipient_auth_type: RecipientAuthType,
    pub reminder_interval_days: u32,
    pub expiry_days: u32,
    pub document_name_template: String,
    pub refresh_status_on_view: bool,
    pub max_file_mb: u64,
    pub ca_file: Option<String>,
    pub lease_ttl_secs: u64,
}

impl Params {
    /// How recipients without an account authenticate, as TAE takes it.
    pub fn recipient_auth(&self) -> crate::tae::RecipientAuth {
        match self.recipient_auth_type {
            RecipientAuthType::Login => crate::tae::RecipientAuth::Login,
            RecipientAuthType::EmailCode => crate::tae::RecipientAuth::EmailCode,
        }
    }
}

pub const DEFAULT_TEMPLATE: &str = "Contrato {codcontrato} - {aluno}";
pub const PLACEHOLDERS: &[&str] = &[
    "codcontrato",
    "aluno",
    "ra",
    "curso",
    "periodo",
    "responsavel",
    "coligada",
    "filial",
];

/// How a field is typed, checked and defaulted.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// An `https://` URL (`http://` for loopback only).
    Url {
        required: bool,
    },
    /// The service user's e-mail.
    Email,
    /// A secret, never echoed.
    Password,
    /// An integer in `min..=max`.
    Int {
        default: u64,
        min: u64,
        max: u64,
    },
    /// A list of people; `cpf_required` for signers.
    People {
        cpf_required: bool,
    },
    /// One of `options` (value, label).
    Choice {
        default: &'static str,
        options: &'static [(&'static str, &'static str)],
    },
    /// The document name template.
    Template,
    Bool {
        default: bool,
    },
    /// The path of an existing file.
    File,
}

/// One field of the tab: the one place its name, label, help, type, range and default are
/// written. [`describe`], [`parse`] and the defaults of [`Params`] all read this table.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

pub const AUTH_TYPES: &[(&str, &str)] = &[
    ("login", "Login no TOTVS Assinatura Eletrônica"),
    ("email_code", "Código enviado por e-mail"),
];

/// The fields of "Parâmetros Globais → Integração com TOTVS Sign", in the tab's order.
pub const FIELDS: &[Field] = &[
    Field { name: "auth_url", label: "URL de autenticação", kind: Kind::Url { required: true },
        help: "Endereço do serviço de identidade do TOTVS Assinatura Eletrônica, por exemplo https://totvssign.totvs.app/identityintegration." },
    Field { name: "api_url", label: "URL da API de integração", kind: Kind::Url { required: true },
        help: "Endereço da API do TOTVS Assinatura Eletrônica, por exemplo https://totvssign.totvs.app." },
    Field { name: "web_login_url", label: "URL de login via formulário web", kind: Kind::Url { required: false },
        help: "Página de login do portal, por exemplo https://totvssign.totvs.app/webapptotvssign/#/auth/login?external=true." },
    Field { name: "service_user", label: "Usuário de serviço", kind: Kind::Email,
        help: "E-mail do usuário do TOTVS Assinatura Eletrônica usado em execuções sem usuário interativo (jobs agendados) e no teste de conexão." },
    Field { name: "service_password", label: "Senha do usuário de serviço", kind: Kind::Password,
        help: "Senha do usuário de serviço. Nunca é exibida nem registrada em log." },
    Field { name: "request_timeout_secs", label: "Tempo limite das requisições (segundos)", kind: Kind::Int { default: 30, min: 1, max: 300 },
        help: "Tempo máximo de espera por cada chamada ao TOTVS Assinatura Eletrônica." },
    Field { name: "max_concurrency", label: "Máximo de requisições simultâneas", kind: Kind::Int { default: 8, min: 1, max: 64 },
        help: "Quantos contratos são processados ao mesmo tempo." },
    Field { name: "extra_signers", label: "Assinantes além do responsável financeiro", kind: Kind::People { cpf_required: true },
        help: "Pessoas (nome, e-mail, CPF) que assinam todos os contratos além do responsável financeiro." },
    Field { name: "witness_count", label: "Quantidade de testemunhas", kind: Kind::Int { default: 0, min: 0, max: 4 },
        help: "Número de testemunhas exigidas em cada contrato." },
    Field { name: "witnesses", label: "Testemunhas", kind: Kind::People { cpf_required: false },
        help: "Testemunhas padrão (nome, e-mail, CPF opcional)." },
    Field { name: "validators", label: "Validadores", kind: Kind::People { cpf_required: false },
        help: "Pessoas que validam o documento antes da assinatura (nome, e-mail, CPF opcional)." },
    Field { name: "recipient_auth_type", label: "Autenticação de destinatários sem conta", kind: Kind::Choice { default: "login", options: AUTH_TYPES },
        help: "Como o responsável financeiro se autentica para assinar." },
    Field { name: "reminder_interval_days", label: "Intervalo de lembretes (dias)", kind: Kind::Int { default: 0, min: 0, max: 30 },
        help: "A cada quantos dias o TOTVS Assinatura Eletrônica lembra os destinatários pendentes (0 = sem lembretes)." },
    Field { name: "expiry_days", label: "Validade do documento (dias)", kind: Kind::Int { default: 0, min: 0, max: 365 },
        help: "Após quantos dias o documento expira (0 = não expira)." },
    Field { name: "document_name_template", label: "Modelo do nome do documento", kind: Kind::Template,
        help: "Campos disponíveis: {codcontrato} {aluno} {ra} {curso} {periodo} {responsavel} {coligada} {filial}." },
    Field { name: "refresh_status_on_view", label: "Atualizar situação ao carregar visão", kind: Kind::Bool { default: false },
        help: "Consulta a situação dos documentos no TOTVS Assinatura Eletrônica ao abrir a visão de contratos." },
    Field { name: "max_file_mb", label: "Tamanho máximo do arquivo (MB)", kind: Kind::Int { default: 10, min: 1, max: 100 },
        help: "Tamanho máximo do PDF enviado." },
    Field { name: "ca_file", label: "Certificados de autoridade adicionais (arquivo PEM)", kind: Kind::File,
        help: "Caminho de um arquivo PEM com certificados confiáveis adicionais (proxy corporativo, ambiente de homologação)." },
    Field { name: "lease_ttl_secs", label: "Validade da reserva de contratos (segundos)", kind: Kind::Int { default: 300, min: 10, max: 3600 },
        help: "Por quanto tempo uma execução reserva os contratos que processa, renovando enquanto trabalha; se o servidor parar, outra execução os assume depois desse tempo." },
];

/// `configure describe`: the tab's fields, from [`FIELDS`].
pub fn describe() -> Value {
    let fields: Vec<Value> = FIELDS
        .iter()
        .map(|f| {
            let (ty, default) = match f.kind {
                Kind::Url { .. } => ("url", Value::Null),
                Kind::Email | Kind::File => ("text", Value::Null),
                Kind::Password => ("password", Value::Null),
                Kind::Int { default, .. } => ("int", json!(default)),
                Kind::People { .. } => ("recipients", json!([])),
                Kind::Choice { default, .. } => ("enum", json!(default)),
                Kind::Template => ("text", json!(DEFAULT_TEMPLATE)),
                Kind::Bool { default } => ("bool", json!(default)),
            };
            let mut m = Map::new();
            m.insert("name".into(), json!(f.name));
            m.insert("label".into(), json!(f.label));
            m.insert("type".into(), json!(ty));
            m.insert("default".into(), default);
            if let Kind::Int { min, max, .. } = f.kind {
                m.insert("min".into(), json!(min));
                m.insert("max".into(), json!(max));
            }
            if let Kind::Choice { options, .. } = f.kind {
                m.insert(
                    "options".into(),
                    options
                        .iter()
                        .map(|(value, label)| json!({"value": value, "label": label}))
                        .collect(),
                );
            }
            m.insert("help".into(), json!(f.help));
            Value::Object(m)
        })
        .collect();
    json!({"ok": true, "fields": fields})
}

fn field(name: &str) -> &'static Field {
    FIELDS
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} is not in config::FIELDS"))
}

/// Why one value is invalid: the Portuguese message shown beside its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

impl From<String> for Invalid {
    fn from(s: String) -> Self {
        Invalid(s)
    }
}

impl From<&str> for Invalid {
    fn from(s: &str) -> Self {
        Invalid(s.to_string())
    }
}

/// Per-field errors (field → Portuguese message).
pub type FieldErrors = Map<String, Value>;

/// Checks a URL: parses, `https` (or `http` on a loopback host only), no credentials.
pub fn check_url(raw: &str) -> Result<String, Invalid> {
    let trimmed = raw.trim();
    let url = url::Url::parse(trimmed).map_err(|_| "Endereço inválido.".to_string())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("O endereço não pode conter usuário ou senha.".into());
    }
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if !loopback {
                return Err(
                    "Use https://; http:// só é aceito para o próprio computador (localhost)."
                        .into(),
                );
            }
        }
        _ => return Err("O endereço deve começar com https://.".into()),
    }
    if url.host().is_none() {
        return Err("Endereço sem servidor.".into());
    }
    Ok(trimmed.trim_end_matches('/').to_string())
}

/// Checks a document name template: only known placeholders, balanced braces, not empty.
pub fn check_template(template: &str) -> Result<String, Invalid> {
    let t = template.trim();
    if t.is_empty() {
        return Err("Informe o modelo do nome do documento.".into());
    }
    let mut rest = t;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("Chave '}' sem a '{' correspondente.".into());
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| "Chave '{' sem a '}' correspondente.".to_string())?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "Campo {{{name}}} desconhecido. Campos disponíveis: {}.",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
            .into());
        }
        rest = &after[close + 1..];
    }
    Ok(t.to_string())
}

/// Checks a list of people; `cpf_required` for signers.
pub fn check_people(value: &Value, cpf_required: bool) -> Result<Vec<Person>, Invalid> {
    let people: Vec<Person> = serde_json::from_value(value.clone()).map_err(|_| {
        "Informe uma lista de pessoas com nome, e-mail e CPF (campos name, email, cpf).".to_string()
    })?;
    check_persons(people, cpf_required)
}

/// Checks and normalises people already typed; `cpf_required` for signers.
pub fn check_persons(people: Vec<Person>, cpf_required: bool) -> Result<Vec<Person>, Invalid> {
    let mut out = Vec::with_capacity(people.len());
    for (i, p) in people.into_iter().enumerate() {
        let n = i + 1;
        let name = p.name.trim().to_string();
        if name.is_empty() {
            return Err(format!("Pessoa {n}: informe o nome.").into());
        }
        let email = normalize_email(&p.email)
            .ok_or_else(|| format!("Pessoa {n} ({name}): e-mail inválido."))?;
        let cpf = match p.cpf.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => Some(
                normalize_cpf(c).ok_or_else(|| format!("Pessoa {n} ({name}): CPF inválido."))?,
            ),
            None if cpf_required => {
                return Err(format!("Pessoa {n} ({name}): informe o CPF.").into())
            }
            None => None,
        };
        out.push(Person { name, email, cpf });
    }
    Ok(out)
}

/// One field's value after its kind's checks.
enum Parsed {
    Text(Option<String>),
    Int(u64),
    People(Vec<Person>),
    Bool(bool),
}

fn opt_str(value: Option<&Value>) -> Result<Option<String>, Invalid> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err("Informe um texto.".into()),
    }
}

/// Checks one field's value against its kind; `None` when absent (the default applies).
fn parse_field(f: &Field, value: Option<&Value>) -> Result<Option<Parsed>, Invalid> {
    Ok(Some(match f.kind {
        Kind::Url { required } => match opt_str(value)? {
            None if required => return Err("Campo obrigatório.".into()),
            None => Parsed::Text(None),
            Some(s) => Parsed::Text(Some(check_url(&s)?)),
        },
        Kind::Email => match opt_str(value)? {
            None => Parsed::Text(None),
            Some(s) => {
                Parsed::Text(Some(normalize_email(&s).ok_or_else(|| {
                    "Informe o e-mail do usuário de serviço.".to_string()
                })?))
            }
        },
        Kind::Password => match value {
            Some(Value::String(s)) if !s.is_empty() => {
                crate::redact::register_secret(s);
                Parsed::Text(Some(s.clone()))
            }
            None | Some(Value::Null) | Some(Value::String(_)) => Parsed::Text(None),
            Some(_) => return Err("Informe um texto.".into()),
        },
        Kind::Int { min, max, .. } => match value {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse::<u64>().ok()))
            {
                Some(n) if (min..=max).contains(&n) => Parsed::Int(n),
                _ => return Err(format!("Informe um número inteiro entre {min} e {max}.").into()),
            },
        },
        Kind::People { cpf_required } => match value {
            None | Some(Value::Null) => Parsed::People(Vec::new()),
            Some(v) => Parsed::People(check_people(v, cpf_required)?),
        },
        Kind::Choice { options, .. } => match value {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) if options.iter().any(|(o, _)| o == s) => {
                Parsed::Text(Some(s.clone()))
            }
            Some(_) => {
                let names: Vec<String> = options.iter().map(|(o, _)| format!("\"{o}\"")).collect();
                return Err(format!("Escolha {}.", names.join(" ou ")).into());
            }
        },
        Kind::Template => match opt_str(value)? {
            None => return Ok(None),
            Some(t) => Parsed::Text(Some(check_template(&t)?)),
        },
        Kind::Bool { .. } => match value {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Bool(b)) => Parsed::Bool(*b),
            Some(_) => return Err("Informe verdadeiro ou falso.".into()),
        },
        Kind::File => match opt_str(value)? {
            None => Parsed::Text(None),
            Some(path) if std::path::Path::new(&path).is_file() => Parsed::Text(Some(path)),
            Some(_) => return Err("Arquivo de certificados não encontrado.".into()),
        },
    }))
}

/// The checked values by field name; absent ones answer the table's default.
struct Values(std::collections::HashMap<&'static str, Parsed>);

impl Values {
    fn text(&self, name: &str) -> Option<String> {
        match self.0.get(name) {
            Some(Parsed::Text(t)) => t.clone(),
            _ => match field(name).kind {
                Kind::Choice { default, .. } => Some(default.to_string()),
                Kind::Template => Some(DEFAULT_TEMPLATE.to_string()),
                _ => None,
            },
        }
    }

    fn int(&self, name: &str) -> u64 {
        match (self.0.get(name), field(name).kind) {
            (Some(Parsed::Int(n)), _) => *n,
            (_, Kind::Int { default, .. }) => default,
            _ => 0,
        }
    }

    fn people(&self, name: &str) -> Vec<Person> {
        match self.0.get(name) {
            Some(Parsed::People(p)) => p.clone(),
            _ => Vec::new(),
        }
    }

    fn bool(&self, name: &str) -> bool {
        match (self.0.get(name), field(name).kind) {
            (Some(Parsed::Bool(b)), _) => *b,
            (_, Kind::Bool { default }) => default,
            _ => false,
        }
    }
}

/// Validates and normalises the parameters. `strict` refuses unknown fields (the tab's
/// `validate`); the values a host stores are read leniently.
pub fn parse(values: &Value, strict: bool) -> Result<Params, FieldErrors> {
    let empty = Map::new();
    let values = match values {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => {
            let mut e = FieldErrors::new();
            e.insert(
                "values".into(),
                Value::String("Os parâmetros devem ser um objeto JSON.".into()),
            );
            return Err(e);
        }
    };
    let mut errors = FieldErrors::new();
    if strict {
        for key in values.keys() {
            if !FIELDS.iter().any(|f| f.name == key) {
                errors.insert(key.clone(), Value::String("Campo desconhecido.".into()));
            }
        }
    }
    let mut parsed = std::collections::HashMap::new();
    for f in FIELDS {
        match parse_field(f, values.get(f.name)) {
            Ok(Some(p)) => {
                parsed.insert(f.name, p);
            }
            Ok(None) => {}
            Err(m) => {
                errors.insert(f.name.into(), Value::String(m.0));
            }
        }
    }
    let v = Values(parsed);
    let mut fail = |name: &str, m: String| {
        if !errors.contains_key(name) {
            errors.insert(name.into(), Value::String(m));
        }
    };
    // Rules across fields.
    let service_user = v.text("service_user");
    let service_password = v.text("service_password");
    if service_user.is_some() && service_password.is_none() {
        fail(
            "service_password",
            "Informe a senha do usuário de serviço.".into(),
        );
    }
    let witness_count = v.int("witness_count") as usize;
    let witnesses = v.people("witnesses");
    let validators = v.people("validators");
    if witnesses.len() < witness_count {
        fail(
            "witnesses",
            format!(
                "São exigidas {witness_count} testemunhas, mas {} foram informadas.",
                witnesses.len()
            ),
        );
    }
    let recipient_auth_type = match v.text("recipient_auth_type").as_deref() {
        Some("email_code") => RecipientAuthType::EmailCode,
        _ => RecipientAuthType::Login,
    };
    if recipient_auth_type == RecipientAuthType::EmailCode {
        for (name, list) in [("witnesses", &witnesses), ("validators", &validators)] {
            if let Some(p) = list.iter().find(|p| p.cpf.is_none()) {
                fail(name, email_code_needs_cpf(&p.name));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Params {
        auth_url: v.text("auth_url").unwrap_or_default(),
        api_url: v.text("api_url").unwrap_or_default(),
        web_login_url: v.text("web_login_url"),
        service_user,
        service_password,
        request_timeout_secs: v.int("request_timeout_secs"),
        max_concurrency: v.int("max_concurrency") as usize,
        extra_signers: v.people("extra_signers"),
        witness_count,
        witnesses,
        validators,
        recipient_auth_type,
        reminder_interval_days: v.int("reminder_interval_days") as u32,
        expiry_days: v.int("expiry_days") as u32,
        document_name_template: v.text("document_name_template").unwrap_or_default(),
        refresh_status_on_view: v.bool("refresh_status_on_view"),
        max_file_mb: v.int("max_file_mb"),
        ca_file: v.text("ca_file"),
        lease_ttl_secs: v.int("lease_ttl_secs"),
    })
}

/// With e-mail code authentication TAE needs every recipient's name and CPF.
pub fn email_code_needs_cpf(name: &str) -> String {
    format!(
        "{name}: com autenticação por código enviado por e-mail, o CPF de cada destinatário é obrigatório."
    )
}

/// The status-12 error for invalid parameters.
pub fn invalid_config(fields: FieldErrors) -> PluginError {
    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
    let mut e = PluginError::new(
        Status::InvalidConfig,
        "Os parâmetros da integração com o TOTVS Assinatura Eletrônica estão inválidos. Corrija os campos indicados em Parâmetros Globais → Integração com TOTVS Sign.",
        format!("invalid global parameters: {}", names.join(", ")),
    );
    e.fields = Some(fields);
    e
}

/// Fills a document name template.
pub fn render_template(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        json!({"auth_url": "https://totvssign.totvs.app/identityintegration/", "api_url": "https://totvssign.totvs.app"})
    }

    #[test]
    fn defaults_and_normalisation() {
        let p = parse(&base(), true).unwrap();
        assert_eq!(
            p.auth_url,
            "https://totvssign.totvs.app/identityintegration"
        );
        assert_eq!(p.max_concurrency, 8);
        assert_eq!(p.request_timeout_secs, 30);
        assert_eq!(p.document_name_template, DEFAULT_TEMPLATE);
        assert_eq!(p.recipient_auth_type, RecipientAuthType::Login);
        let v = serde_json::to_value(&p).unwrap();
        assert!(v.get("service_password").is_none());
    }

    #[test]
    fn per_field_errors() {
        let mut v = base();
        let m = v.as_object_mut().unwrap();
        m.insert("api_url".into(), json!("http://example.com"));
        m.insert("max_concurrency".into(), json!(0));
        m.insert("document_name_template".into(), json!("Contrato {numero}"));
        m.insert("witness_count".into(), json!(2));
        m.insert(
            "extra_signers".into(),
            json!([{"name": "X", "email": "x@y.com", "cpf": "111.111.111-11"}]),
        );
        m.insert("typo".into(), json!(1));
        m.insert("service_user".into(), json!("svc@escola.edu.br"));
        let e = parse(&v, true).unwrap_err();
        for f in [
            "api_url",
            "max_concurrency",
            "document_name_template",
            "witnesses",
            "extra_signers",
            "typo",
            "service_password",
        ] {
            assert!(e.contains_key(f), "missing error for {f}: {e:?}");
        }
        assert!(!e.contains_key("auth_url"));
        // Lenient read ignores unknown fields.
        let mut v = base();
        v.as_object_mut().unwrap().insert("typo".into(), json!(1));
        assert!(parse(&v, false).is_ok());
    }

    /// Every field of the table: a valid value is accepted and normalised, an invalid one is
    /// named in the errors, its default applies when absent, and describe shows it.
    #[test]
    fn every_field_is_checked_defaulted_and_described() {
        let ca = std::env::temp_dir().join("tae-edu-config-test-ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let ca = ca.to_string_lossy().to_string();
        // (field, valid value, its normalised value in `validate`, an invalid value)
        let cases: Vec<(&str, Value, Value, Value)> = vec![
            (
                "auth_url",
                json!("https://a.example/id/"),
                json!("https://a.example/id"),
                json!("ftp://a"),
            ),
            (
                "api_url",
                json!(" https://a.example "),
                json!("https://a.example"),
                json!(5),
            ),
            (
                "web_login_url",
                json!("http://localhost:9/x"),
                json!("http://localhost:9/x"),
                json!("http://10.1.1.1"),
            ),
            (
                "service_user",
                json!("Svc@Escola.EDU.br"),
                json!("Svc@escola.edu.br"),
                json!("svc"),
            ),
            (
                "service_password",
                json!("s3nha-forte"),
                Value::Null,
                json!(12),
            ),
            ("request_timeout_secs", json!("45"), json!(45), json!(0)),
            ("max_concurrency", json!(64), json!(64), json!(65)),
            (
                "extra_signers",
                json!([{"name": " X ", "email": "x@y.com", "cpf": "529.982.247-25"}]),
                json!([{"name": "X", "email": "x@y.com", "cpf": "52998224725"}]),
                json!([{"name": "X", "email": "x@y.com"}]),
            ),
            ("witness_count", json!(1), json!(1), json!(5)),
            (
                "witnesses",
                json!([{"name": "W", "email": "w@y.com"}]),
                json!([{"name": "W", "email": "w@y.com"}]),
                json!([{"name": "W"}]),
            ),
            (
                "validators",
                json!([{"name": "V", "email": "v@y.com"}]),
                json!([{"name": "V", "email": "v@y.com"}]),
                json!("V"),
            ),
            (
                "recipient_auth_type",
                json!("email_code"),
                json!("email_code"),
                json!("telepatia"),
            ),
            ("reminder_interval_days", json!(30), json!(30), json!(31)),
            ("expiry_days", json!(365), json!(365), json!(-1)),
            (
                "document_name_template",
                json!(" {aluno} "),
                json!("{aluno}"),
                json!("{x}"),
            ),
            (
                "refresh_status_on_view",
                json!(true),
                json!(true),
                json!("sim"),
            ),
            ("max_file_mb", json!(1), json!(1), json!(101)),
            ("ca_file", json!(ca), json!(ca), json!("/nao/existe.pem")),
            ("lease_ttl_secs", json!(10), json!(10), json!(9)),
        ];
        let names: Vec<&str> = cases.iter().map(|c| c.0).collect();
        assert_eq!(
            names,
            FIELDS.iter().map(|f| f.name).collect::<Vec<_>>(),
            "one case per field, in the table's order"
        );
        let described = describe();
        let defaults = serde_json::to_value(parse(&base(), true).unwrap()).unwrap();
        for (name, valid, normalised, invalid) in &cases {
            let f = field(name);
            let d = described["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["name"] == *name)
                .unwrap_or_else(|| panic!("{name} not described"));
            assert_eq!(d["label"], f.label);
            match f.kind {
                Kind::Int { default, min, max } => {
                    assert_eq!(
                        (d["default"].clone(), d["min"].clone(), d["max"].clone()),
                        (json!(default), json!(min), json!(max))
                    );
                    assert_eq!(defaults[*name], json!(default), "{name}");
                }
                Kind::Bool { default } => assert_eq!(defaults[*name], json!(default)),
                Kind::Choice { default, .. } => assert_eq!(defaults[*name], json!(default)),
                _ => {}
            }
            let mut v = base();
            v[*name] = valid.clone();
            if *name == "service_user" {
                v["service_password"] = json!("s3nha-forte");
            }
            if *name == "witness_count" {
                v["witnesses"] = json!([{"name": "W", "email": "w@y.com"}]);
            }
            if *name == "recipient_auth_type" {
                v["witnesses"] = json!([]);
            }
            let p = parse(&v, true).unwrap_or_else(|e| panic!("{name} = {valid}: {e:?}"));
            let out = serde_json::to_value(&p).unwrap();
            if *name == "service_password" {
                assert_eq!(p.service_password.as_deref(), Some("s3nha-forte"));
                assert!(out.get("service_password").is_none(), "never echoed");
            } else {
                assert_eq!(out[*name], *normalised, "{name}");
            }
            let mut v = base();
            v[*name] = invalid.clone();
            let e = parse(&v, true).unwrap_err();
            assert!(e.contains_key(*name), "{name} = {invalid}: {e:?}");
        }
        crate::redact::forget_secret("s3nha-forte");
        let _ = std::fs::remove_file(&ca);
    }

    #[test]
    fn urls() {
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        assert!(check_url("http://localhost:1/x").is_ok());
        assert!(check_url("http://[::1]:1/").is_ok());
        assert!(check_url("http://10.0.0.1").is_err());
        assert!(check_url("ftp://x.com").is_err());
        assert!(check_url("https://u:p@x.com").is_err());
        assert!(check_url("not a url").is_err());
    }

    #[test]
    fn templates() {
        assert!(check_template("Contrato {codcontrato} - {aluno} ({periodo})").is_ok());
        assert!(check_template("Contrato {x}").is_err());
        assert!(check_template("Contrato {aluno").is_err());
        assert!(check_template("Contrato aluno}").is_err());
        assert!(check_template("  ").is_err());
        assert_eq!(
            render_template(
                "Contrato {codcontrato} - {aluno}",
                &[("codcontrato", "145".into()), ("aluno", "João".into())]
            ),
            "Contrato 145 - João"
        );
    }
}

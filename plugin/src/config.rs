//! The global parameters ("Parâmetros Globais → Integração com TOTVS Sign"): description of the
//! tab's fields, validation and normalisation (`docs/abi.md`, "Global parameters").

use crate::error::{PluginError, Status};
use crate::validate::{normalize_cpf, normalize_email};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

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

const FIELDS: &[&str] = &[
    "auth_url",
    "api_url",
    "web_login_url",
    "service_user",
    "service_password",
    "request_timeout_secs",
    "max_concurrency",
    "extra_signers",
    "witness_count",
    "witnesses",
    "validators",
    "recipient_auth_type",
    "reminder_interval_days",
    "expiry_days",
    "document_name_template",
    "refresh_status_on_view",
    "max_file_mb",
    "ca_file",
];

/// `configure describe`: the tab's fields.
pub fn describe() -> Value {
    json!({
        "ok": true,
        "fields": [
            {"name": "auth_url", "label": "URL de autenticação", "type": "url", "default": Value::Null,
             "help": "Endereço do serviço de identidade do TOTVS Assinatura Eletrônica, por exemplo https://totvssign.totvs.app/identityintegration."},
            {"name": "api_url", "label": "URL da API de integração", "type": "url", "default": Value::Null,
             "help": "Endereço da API do TOTVS Assinatura Eletrônica, por exemplo https://totvssign.totvs.app."},
            {"name": "web_login_url", "label": "URL de login via formulário web", "type": "url", "default": Value::Null,
             "help": "Página de login do portal, por exemplo https://totvssign.totvs.app/webapptotvssign/#/auth/login?external=true."},
            {"name": "service_user", "label": "Usuário de serviço", "type": "text", "default": Value::Null,
             "help": "E-mail do usuário do TOTVS Assinatura Eletrônica usado em execuções sem usuário interativo (jobs agendados) e no teste de conexão."},
            {"name": "service_password", "label": "Senha do usuário de serviço", "type": "password", "default": Value::Null,
             "help": "Senha do usuário de serviço. Nunca é exibida nem registrada em log."},
            {"name": "request_timeout_secs", "label": "Tempo limite das requisições (segundos)", "type": "int", "default": 30, "min": 1, "max": 300,
             "help": "Tempo máximo de espera por cada chamada ao TOTVS Assinatura Eletrônica."},
            {"name": "max_concurrency", "label": "Máximo de requisições simultâneas", "type": "int", "default": 8, "min": 1, "max": 64,
             "help": "Quantos contratos são processados ao mesmo tempo."},
            {"name": "extra_signers", "label": "Assinantes além do responsável financeiro", "type": "recipients", "default": [],
             "help": "Pessoas (nome, e-mail, CPF) que assinam todos os contratos além do responsável financeiro."},
            {"name": "witness_count", "label": "Quantidade de testemunhas", "type": "int", "default": 0, "min": 0, "max": 4,
             "help": "Número de testemunhas exigidas em cada contrato."},
            {"name": "witnesses", "label": "Testemunhas", "type": "recipients", "default": [],
             "help": "Testemunhas padrão (nome, e-mail, CPF opcional)."},
            {"name": "validators", "label": "Validadores", "type": "recipients", "default": [],
             "help": "Pessoas que validam o documento antes da assinatura (nome, e-mail, CPF opcional)."},
            {"name": "recipient_auth_type", "label": "Autenticação de destinatários sem conta", "type": "enum", "default": "login",
             "options": [{"value": "login", "label": "Login no TOTVS Assinatura Eletrônica"}, {"value": "email_code", "label": "Código enviado por e-mail"}],
             "help": "Como o responsável financeiro se autentica para assinar."},
            {"name": "reminder_interval_days", "label": "Intervalo de lembretes (dias)", "type": "int", "default": 0, "min": 0, "max": 30,
             "help": "A cada quantos dias o TOTVS Assinatura Eletrônica lembra os destinatários pendentes (0 = sem lembretes)."},
            {"name": "expiry_days", "label": "Validade do documento (dias)", "type": "int", "default": 0, "min": 0, "max": 365,
             "help": "Após quantos dias o documento expira (0 = não expira)."},
            {"name": "document_name_template", "label": "Modelo do nome do documento", "type": "text", "default": DEFAULT_TEMPLATE,
             "help": "Campos disponíveis: {codcontrato} {aluno} {ra} {curso} {periodo} {responsavel} {coligada} {filial}."},
            {"name": "refresh_status_on_view", "label": "Atualizar situação ao carregar visão", "type": "bool", "default": false,
             "help": "Consulta a situação dos documentos no TOTVS Assinatura Eletrônica ao abrir a visão de contratos."},
            {"name": "max_file_mb", "label": "Tamanho máximo do arquivo (MB)", "type": "int", "default": 10, "min": 1, "max": 100,
             "help": "Tamanho máximo do PDF enviado."},
            {"name": "ca_file", "label": "Certificados de autoridade adicionais (arquivo PEM)", "type": "text", "default": Value::Null,
             "help": "Caminho de um arquivo PEM com certificados confiáveis adicionais (proxy corporativo, ambiente de homologação)."}
        ]
    })
}

/// Per-field errors (field → Portuguese message).
pub type FieldErrors = Map<String, Value>;

/// Checks a URL: parses, `https` (or `http` on a loopback host only), no credentials.
pub fn check_url(raw: &str) -> Result<String, String> {
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
pub fn check_template(template: &str) -> Result<String, String> {
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
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(t.to_string())
}

/// Checks a list of people; `cpf_required` for signers.
pub fn check_people(value: &Value, cpf_required: bool) -> Result<Vec<Person>, String> {
    let people: Vec<Person> = serde_json::from_value(value.clone()).map_err(|_| {
        "Informe uma lista de pessoas com nome, e-mail e CPF (campos name, email, cpf).".to_string()
    })?;
    let mut out = Vec::with_capacity(people.len());
    for (i, p) in people.into_iter().enumerate() {
        let n = i + 1;
        let name = p.name.trim().to_string();
        if name.is_empty() {
            return Err(format!("Pessoa {n}: informe o nome."));
        }
        let email = normalize_email(&p.email)
            .ok_or_else(|| format!("Pessoa {n} ({name}): e-mail inválido."))?;
        let cpf = match p.cpf.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => Some(
                normalize_cpf(c).ok_or_else(|| format!("Pessoa {n} ({name}): CPF inválido."))?,
            ),
            None if cpf_required => return Err(format!("Pessoa {n} ({name}): informe o CPF.")),
            None => None,
        };
        out.push(Person { name, email, cpf });
    }
    Ok(out)
}

fn int_field(
    values: &Map<String, Value>,
    name: &str,
    default: u64,
    min: u64,
    max: u64,
    errors: &mut FieldErrors,
) -> u64 {
    match values.get(name) {
        None | Some(Value::Null) => default,
        Some(v) => {
            let n = v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse::<u64>().ok()));
            match n {
                Some(n) if (min..=max).contains(&n) => n,
                _ => {
                    errors.insert(
                        name.into(),
                        Value::String(format!("Informe um número inteiro entre {min} e {max}.")),
                    );
                    default
                }
            }
        }
    }
}

fn opt_str(values: &Map<String, Value>, name: &str, errors: &mut FieldErrors) -> Option<String> {
    match values.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(_) => {
            errors.insert(name.into(), Value::String("Informe um texto.".into()));
            None
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
            if !FIELDS.contains(&key.as_str()) {
                errors.insert(key.clone(), Value::String("Campo desconhecido.".into()));
            }
        }
    }
    let url_field = |name: &str, required: bool, errors: &mut FieldErrors| -> Option<String> {
        match opt_str(values, name, errors) {
            None => {
                if required && !errors.contains_key(name) {
                    errors.insert(name.into(), Value::String("Campo obrigatório.".into()));
                }
                None
            }
            Some(s) => match check_url(&s) {
                Ok(u) => Some(u),
                Err(m) => {
                    errors.insert(name.into(), Value::String(m));
                    None
                }
            },
        }
    };
    let auth_url = url_field("auth_url", true, &mut errors);
    let api_url = url_field("api_url", true, &mut errors);
    let web_login_url = url_field("web_login_url", false, &mut errors);
    let service_user = match opt_str(values, "service_user", &mut errors) {
        None => None,
        Some(s) => match normalize_email(&s) {
            Some(e) => Some(e),
            None => {
                errors.insert(
                    "service_user".into(),
                    Value::String("Informe o e-mail do usuário de serviço.".into()),
                );
                None
            }
        },
    };
    let service_password = match values.get("service_password") {
        Some(Value::String(s)) if !s.is_empty() => {
            crate::redact::register_secret(s);
            Some(s.clone())
        }
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(_) => {
            errors.insert(
                "service_password".into(),
                Value::String("Informe um texto.".into()),
            );
            None
        }
    };
    if service_user.is_some()
        && service_password.is_none()
        && !errors.contains_key("service_password")
    {
        errors.insert(
            "service_password".into(),
            Value::String("Informe a senha do usuário de serviço.".into()),
        );
    }
    let request_timeout_secs = int_field(values, "request_timeout_secs", 30, 1, 300, &mut errors);
    let max_concurrency = int_field(values, "max_concurrency", 8, 1, 64, &mut errors) as usize;
    let witness_count = int_field(values, "witness_count", 0, 0, 4, &mut errors) as usize;
    let reminder_interval_days =
        int_field(values, "reminder_interval_days", 0, 0, 30, &mut errors) as u32;
    let expiry_days = int_field(values, "expiry_days", 0, 0, 365, &mut errors) as u32;
    let max_file_mb = int_field(values, "max_file_mb", 10, 1, 100, &mut errors);
    let people = |name: &str, cpf_required: bool, errors: &mut FieldErrors| -> Vec<Person> {
        match values.get(name) {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => check_people(v, cpf_required).unwrap_or_else(|m| {
                errors.insert(name.into(), Value::String(m));
                Vec::new()
            }),
        }
    };
    let extra_signers = people("extra_signers", true, &mut errors);
    let witnesses = people("witnesses", false, &mut errors);
    let validators = people("validators", false, &mut errors);
    if witnesses.len() < witness_count && !errors.contains_key("witnesses") {
        errors.insert(
            "witnesses".into(),
            Value::String(format!(
                "São exigidas {witness_count} testemunhas, mas {} foram informadas.",
                witnesses.len()
            )),
        );
    }
    let recipient_auth_type = match values.get("recipient_auth_type") {
        None | Some(Value::Null) => RecipientAuthType::Login,
        Some(Value::String(s)) if s == "login" => RecipientAuthType::Login,
        Some(Value::String(s)) if s == "email_code" => RecipientAuthType::EmailCode,
        Some(_) => {
            errors.insert(
                "recipient_auth_type".into(),
                Value::String("Escolha \"login\" ou \"email_code\".".into()),
            );
            RecipientAuthType::Login
        }
    };
    if recipient_auth_type == RecipientAuthType::EmailCode {
        for (name, list) in [("witnesses", &witnesses), ("validators", &validators)] {
            if let Some(p) = list.iter().find(|p| p.cpf.is_none()) {
                errors
                    .entry(name.to_string())
                    .or_insert_with(|| Value::String(email_code_needs_cpf(&p.name)));
            }
        }
    }
    let document_name_template = match opt_str(values, "document_name_template", &mut errors) {
        None => DEFAULT_TEMPLATE.to_string(),
        Some(t) => check_template(&t).unwrap_or_else(|m| {
            errors.insert("document_name_template".into(), Value::String(m));
            DEFAULT_TEMPLATE.to_string()
        }),
    };
    let refresh_status_on_view = match values.get("refresh_status_on_view") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.insert(
                "refresh_status_on_view".into(),
                Value::String("Informe verdadeiro ou falso.".into()),
            );
            false
        }
    };
    let ca_file = opt_str(values, "ca_file", &mut errors);
    if let Some(path) = &ca_file {
        if !std::path::Path::new(path).is_file() {
            errors.insert(
                "ca_file".into(),
                Value::String("Arquivo de certificados não encontrado.".into()),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Params {
        auth_url: auth_url.unwrap_or_default(),
        api_url: api_url.unwrap_or_default(),
        web_login_url,
        service_user,
        service_password,
        request_timeout_secs,
        max_concurrency,
        extra_signers,
        witness_count,
        witnesses,
        validators,
        recipient_auth_type,
        reminder_interval_days,
        expiry_days,
        document_name_template,
        refresh_status_on_view,
        max_file_mb,
        ca_file,
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

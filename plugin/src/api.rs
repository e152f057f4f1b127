//! The safe entry points behind the C exports. `ffi` checks pointers, UTF-8, size, re-entry and
//! the host table, parses the request as JSON, and calls one of these; the value answered
//! becomes the response JSON (status 0), a `PluginError` becomes its status and error JSON.
//!
//! Request and response shapes: `docs/abi.md`.

use crate::config;
use crate::error::PluginError;
use crate::host::Host;
use crate::hostcalls::HostApi;
use crate::session::Permissions;
use crate::tae::{ErrorKind, TaeClient};
use serde_json::{json, Value};
use std::time::Instant;

/// `tae_edu_configure`: describe / validate / test the global parameters.
pub fn configure(host: &dyn Host, request: Value) -> Result<Value, PluginError> {
    let obj = request
        .as_object()
        .ok_or_else(|| PluginError::invalid_request("configure request must be a JSON object"))?;
    for k in obj.keys() {
        if k != "action" && k != "values" {
            return Err(PluginError::invalid_request(format!("unknown field {k}")));
        }
    }
    match obj.get("action").and_then(Value::as_str) {
        Some("describe") => Ok(config::describe()),
        Some("validate") => {
            let values = obj.get("values").cloned().unwrap_or(Value::Null);
            let params = config::parse(&values, true).map_err(config::invalid_config)?;
            Ok(json!({"ok": true, "values": params}))
        }
        Some("test") => {
            let params = match obj.get("values") {
                Some(v) => config::parse(v, true),
                None => config::parse(&HostApi::new(host).params()?, false),
            }
            .map_err(config::invalid_config)?;
            test_connection(params)
        }
        _ => Err(PluginError::invalid_request(
            "configure action must be \"describe\", \"validate\" or \"test\"",
        )),
    }
}

fn test_connection(params: config::Params) -> Result<Value, PluginError> {
    let (Some(user), Some(password)) =
        (params.service_user.clone(), params.service_password.clone())
    else {
        let mut fields = serde_json::Map::new();
        fields.insert(
            "service_user".into(),
            json!("Informe o usuário de serviço e sua senha para testar a conexão."),
        );
        return Err(config::invalid_config(fields));
    };
    let state = crate::state::get()?;
    let http = state.http(params.request_timeout_secs, params.ca_file.as_deref())?;
    let client = TaeClient::new(http, &params.auth_url, &params.api_url);
    state.block_on(async move {
        let started = Instant::now();
        let login = client.login(&user, &password).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let token = match login {
            Ok(t) => t,
            Err(e) => {
                let message = match e.kind {
                    ErrorKind::Transient
                    | ErrorKind::Protocol
                    | ErrorKind::NotFound
                    | ErrorKind::Certificate => format!(
                        "Não foi possível conectar ao TOTVS Assinatura Eletrônica em {}: {}.",
                        params.auth_url,
                        e.user_text()
                    ),
                    _ => "O TOTVS Assinatura Eletrônica recusou o usuário de serviço (e-mail ou senha inválidos).".into(),
                };
                return Ok(json!({"ok": true, "login_ok": false, "latency_ms": latency_ms,
                                 "message": message, "detail": e.to_string()}));
            }
        };
        let profile = client.profile(&token.token).await;
        crate::redact::forget_secret(&token.token);
        let profile = match profile {
            Ok(p) => p,
            Err(e) => {
                return Ok(json!({"ok": true, "login_ok": true, "latency_ms": latency_ms,
                    "user": {"email": user, "name": Value::Null},
                    "message": format!("Login realizado, mas o perfil do usuário não pôde ser lido: {}.", e.user_text())}))
            }
        };
        let perms = Permissions::from_profile(&profile);
        let p = perms.unwrap_or(Permissions { send: true, delete: true, query: true, create_users: true });
        let mut missing = Vec::new();
        for (ok, label) in [(p.send, "enviar documentos"), (p.delete, "excluir documentos"), (p.query, "consultar documentos"), (p.create_users, "criar usuários")] {
            if !ok {
                missing.push(label);
            }
        }
        let message = if perms.is_none() {
            "Conexão realizada. O serviço não informa as permissões do usuário; elas serão verificadas em cada operação.".to_string()
        } else if missing.is_empty() {
            format!("Conexão realizada com sucesso em {latency_ms} ms. O usuário pode enviar, excluir e consultar documentos e criar usuários.")
        } else {
            format!("Conexão realizada, mas o usuário não tem permissão para: {}.", missing.join(", "))
        };
        Ok(json!({
            "ok": true,
            "login_ok": true,
            "latency_ms": latency_ms,
            "user": {"email": profile.get("email").and_then(Value::as_str).unwrap_or(&user),
                     "name": profile.get("fullName").cloned().unwrap_or(Value::Null)},
            "permissions": {"send": p.send, "delete": p.delete, "query": p.query, "create_users": p.create_users},
            "permissions_reported": perms.is_some(),
            "message": message,
        }))
    })?
}

/// `tae_edu_execute`: one option over many contracts (or integration records).
pub fn execute(host: &dyn Host, request: Value) -> Result<Value, PluginError> {
    crate::process::execute(host, request)
}

/// `tae_edu_attachment_list`: the integration records, filtered and paged.
pub fn attachment_list(host: &dyn Host, request: Value) -> Result<Value, PluginError> {
    crate::attachments::list(host, request)
}

/// `tae_edu_session_end`: drops one RM session's cached TAE token. Unknown ids are a no-op.
pub fn session_end(session_id: &str) {
    crate::session::end_session(session_id);
}

/// `tae_edu_shutdown`: drops the runtime, the HTTP client and every cached token. Idempotent;
/// the next call recreates the state.
pub fn shutdown() {
    crate::state::shutdown();
}

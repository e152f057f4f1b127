//! `configure test`: logs in with the service user, reads its profile and permissions, and
//! names the lease methods the host lacks (`docs/abi.md`, "configure").

use super::{invalid_config, Params};
use crate::error::PluginError;
use crate::host::Host;
use crate::tae::{Permissions, TaeClient};
use serde::Serialize;
use std::time::Instant;

#[derive(Serialize)]
struct User {
    email: String,
    name: Option<String>,
}

#[derive(Serialize)]
struct PermissionsOut {
    send: bool,
    delete: bool,
    query: bool,
    create_users: bool,
}

/// The answer of `configure test` (status 0 even when the login failed).
#[derive(Serialize)]
pub struct TestReport {
    ok: bool,
    login_ok: bool,
    latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<PermissionsOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions_reported: Option<bool>,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// Lease methods (`docs/abi.md`, "Leases") the host does not offer: runs in other
    /// processes are then not coordinated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    host_missing_methods: Vec<&'static str>,
}

/// Tests the connection with the service user of `params`.
pub fn test_connection(host: &dyn Host, params: Params) -> Result<TestReport, PluginError> {
    let (Some(user), Some(password)) =
        (params.service_user.clone(), params.service_password.clone())
    else {
        let mut fields = serde_json::Map::new();
        fields.insert(
            "service_user".into(),
            "Informe o usuário de serviço e sua senha para testar a conexão.".into(),
        );
        return Err(invalid_config(fields));
    };
    let missing = crate::process::claims::probe_host(host);
    let state = crate::state::get()?;
    let http = state.http(params.request_timeout_secs, params.ca_file.as_deref())?;
    let client = TaeClient::new(http, &params.auth_url, &params.api_url);
    let mut report = state.block_on(async move {
        let started = Instant::now();
        let login = client.login(&user, &password).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let mut report = TestReport {
            ok: true,
            login_ok: false,
            latency_ms,
            user: None,
            permissions: None,
            permissions_reported: None,
            message: String::new(),
            detail: None,
            host_missing_methods: Vec::new(),
        };
        let token = match login {
            Ok(t) => t,
            Err(e) => {
                report.message = if e.kind.is_unreachable() || e.kind == crate::tae::ErrorKind::NotFound {
                    format!(
                        "Não foi possível conectar ao TOTVS Assinatura Eletrônica em {}: {}.",
                        params.auth_url,
                        e.user_text()
                    )
                } else {
                    "O TOTVS Assinatura Eletrônica recusou o usuário de serviço (e-mail ou senha inválidos).".into()
                };
                report.detail = Some(e.to_string());
                return report;
            }
        };
        report.login_ok = true;
        let profile = client.profile(&token.token).await;
        crate::redact::forget_secret(&token.token);
        let profile = match profile {
            Ok(p) => p,
            Err(e) => {
                report.user = Some(User { email: user, name: None });
                report.message = format!(
                    "Login realizado, mas o perfil do usuário não pôde ser lido: {}.",
                    e.user_text()
                );
                return report;
            }
        };
        let perms = profile.permissions();
        let p = perms.unwrap_or(Permissions {
            send: true,
            delete: true,
            query: true,
            create_users: true,
        });
        let missing: Vec<&str> = [
            (p.send, "enviar documentos"),
            (p.delete, "excluir documentos"),
            (p.query, "consultar documentos"),
            (p.create_users, "criar usuários"),
        ]
        .into_iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, label)| label)
        .collect();
        report.message = if perms.is_none() {
            "Conexão realizada. O serviço não informa as permissões do usuário; elas serão verificadas em cada operação.".to_string()
        } else if missing.is_empty() {
            format!("Conexão realizada com sucesso em {latency_ms} ms. O usuário pode enviar, excluir e consultar documentos e criar usuários.")
        } else {
            format!(
                "Conexão realizada, mas o usuário não tem permissão para: {}.",
                missing.join(", ")
            )
        };
        report.user = Some(User {
            email: profile.email.clone().unwrap_or(user),
            name: profile.full_name.clone(),
        });
        report.permissions = Some(PermissionsOut {
            send: p.send,
            delete: p.delete,
            query: p.query,
            create_users: p.create_users,
        });
        report.permissions_reported = Some(perms.is_some());
        report
    })?;
    if !missing.is_empty() {
        report.message.push_str(&format!(
            " O sistema hospedeiro não oferece {}: execuções em outros servidores de aplicação não são coordenadas com esta (só as deste processo).",
            missing.join(", ")
        ));
        report.host_missing_methods = missing;
    }
    Ok(report)
}

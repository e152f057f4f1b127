//! "RM's own way": what a school runs without tae-edu, emulated as a small sequential client
//! against the same tae-sim. Per contract, one after the other, the requests RM's own TAE
//! integration makes: look the financial responsible up by e-mail, register them when TAE
//! does not know them, upload the PDF, publish it to them; then, to check, one read of each
//! document's status. One login for the whole run and one kept-alive connection (both in RM's
//! favour: nothing is written to a database, no report is rendered).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tae_sim::api;

/// One contract to send: who signs it.
#[derive(Clone, Debug)]
pub struct Signer {
    pub contract_key: String,
    pub name: String,
    pub email: String,
    pub cpf: String,
}

/// What RM's way measured.
#[derive(Clone, Debug, Default)]
pub struct RmWayReport {
    pub send_ms: f64,
    pub check_ms: f64,
    pub sent: u64,
    pub checked: u64,
    /// Requests by tae-sim's counter key, for the send and for the check.
    pub send_counters: BTreeMap<String, u64>,
    pub check_counters: BTreeMap<String, u64>,
}

fn envelope_data(what: &str, r: reqwest::blocking::Response) -> Result<Value, String> {
    let status = r.status();
    let body: Value = r
        .json()
        .map_err(|e| format!("{what}: unreadable answer: {e}"))?;
    let ok = body
        .get("success")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || body
            .get("succeeded")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    if !status.is_success() || !ok {
        return Err(format!("{what}: {status} {body}"));
    }
    Ok(body.get("data").cloned().unwrap_or(Value::Null))
}

fn counters(http: &reqwest::blocking::Client, base: &str) -> Result<BTreeMap<String, u64>, String> {
    http.get(format!("{base}/_sim/counters"))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json())
        .map_err(|e| format!("cannot read tae-sim's counters: {e}"))
}

fn diff(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// Percent-encodes a query value (everything but unreserved characters).
fn query_escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends every contract and then reads each document's status, one request at a time.
pub fn run(base: &str, signers: &[Signer], pdf: &[u8]) -> Result<RmWayReport, String> {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let url = |path: &str| format!("{base}{path}");
    let mut report = RmWayReport::default();
    let c0 = counters(&http, base)?;

    let started = Instant::now();
    let login = http
        .post(url(api::LOGIN_V3))
        .json(&json!({"userName": tae_sim::ADMIN_EMAIL, "password": tae_sim::ADMIN_PASSWORD}))
        .send()
        .map_err(|e| format!("login: {e}"))?;
    let token = envelope_data("login", login)?
        .get("token")
        .and_then(Value::as_str)
        .ok_or("login: no token")?
        .to_string();
    let mut ids = Vec::with_capacity(signers.len());
    for s in signers {
        let found = http
            .get(format!(
                "{}?{}={}&{}=10",
                url(api::USER_EMAIL_LIST),
                api::Q_FILTER,
                query_escape(&s.email),
                api::Q_TAKE
            ))
            .bearer_auth(&token)
            .send()
            .map_err(|e| format!("user lookup: {e}"))?;
        let users = envelope_data("user lookup", found)?;
        let known = users.as_array().is_some_and(|list| {
            list.iter().any(|u| {
                u.get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.eq_ignore_ascii_case(&s.email))
            })
        });
        if !known {
            let r = http
                .post(url(api::REGISTER))
                .bearer_auth(&token)
                .json(
                    &json!({"email": s.email, "password": "Rm#Senha12345", "fullName": s.name,
                              "cpf": s.cpf, "userType": 2, "changePassword": true,
                              "acceptedTerm": false}),
                )
                .send()
                .map_err(|e| format!("register: {e}"))?;
            envelope_data("register", r)?;
        }
        let part = reqwest::blocking::multipart::Part::bytes(pdf.to_vec())
            .file_name("contrato.pdf")
            .mime_str("application/pdf")
            .map_err(|e| e.to_string())?;
        let form = reqwest::blocking::multipart::Form::new()
            .text(
                api::FIELD_ENVELOPE_NAME,
                format!("Contrato {}", s.contract_key),
            )
            .part(api::FIELD_ENVELOPE_FILE, part);
        let r = http
            .post(url(api::UPLOAD))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .map_err(|e| format!("upload: {e}"))?;
        let id = envelope_data("upload", r)?
            .as_u64()
            .ok_or("upload: no document id")?;
        let publication = json!({
            "idDocumento": id, "utilizaWorkflow": false, "responsavelAssinaDocumento": false,
            "destinatarios": [{"email": s.email, "acao": api::ACAO_SIGN, "workflow": 0,
                "papelAssinante": "Responsável financeiro", "nomeCompleto": s.name,
                "tipoAutenticacao": 1, "tipoIdentificacao": 1, "identificacao": s.cpf,
                "notificaEnvio": true, "tipoEnvioDocumento": 1}],
            "observadores": [],
            "publicacaoOpcoes": {"dataExpiracao": null, "assuntoMensagem": "Contrato para assinatura",
                "corpoMensagem": "Contrato de prestação de serviços educacionais",
                "permiteRejeitarDocumento": true, "intervaloLembrete": 0,
                "solicitaAssinaturaManuscrita": false}
        });
        let r = http
            .post(url(api::PUBLISH_V1))
            .bearer_auth(&token)
            .json(&publication)
            .send()
            .map_err(|e| format!("publish: {e}"))?;
        envelope_data("publish", r)?;
        ids.push(id);
    }
    report.send_ms = started.elapsed().as_secs_f64() * 1000.0;
    report.sent = ids.len() as u64;
    let c1 = counters(&http, base)?;

    let started = Instant::now();
    for id in &ids {
        let r = http
            .get(url(&api::READ_V2.replace("{id}", &id.to_string())))
            .bearer_auth(&token)
            .send()
            .map_err(|e| format!("read: {e}"))?;
        let doc = envelope_data("read", r)?;
        if doc.get("status").and_then(Value::as_i64).is_none() {
            return Err(format!("read {id}: no status in {doc}"));
        }
        report.checked += 1;
    }
    report.check_ms = started.elapsed().as_secs_f64() * 1000.0;
    let c2 = counters(&http, base)?;
    report.send_counters = diff(&c1, &c0);
    report.check_counters = diff(&c2, &c1);
    Ok(report)
}

//! The target of the route tests: an in-process `SimServer` ([`Target::new`]), or a live TAE
//! service ([`Target::live`], from `TAE_LIVE_URL`, `TAE_LIVE_USER` and `TAE_LIVE_PASSWORD`; the
//! live tests are `#[ignore]`d and run only with `--ignored`).
#![allow(dead_code)]

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tae_sim::{SimOptions, SimServer, SimState};

pub struct Target {
    pub base: String,
    pub user: String,
    pub password: String,
    pub sim: Option<SimServer>,
    pub client: reqwest::Client,
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn client(timeout: Duration) -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

impl Target {
    /// A fresh in-process stand-in.
    pub fn new() -> Target {
        Self::with_options(SimOptions::default())
    }

    pub fn with_options(options: SimOptions) -> Target {
        let sim = SimServer::start(options).expect("start tae-sim");
        Target {
            base: sim.base_url(),
            user: tae_sim::ADMIN_EMAIL.to_string(),
            password: tae_sim::ADMIN_PASSWORD.to_string(),
            sim: Some(sim),
            client: client(Duration::from_secs(30)),
        }
    }

    /// The live service of `TAE_LIVE_URL`, `TAE_LIVE_USER`, `TAE_LIVE_PASSWORD`. Panics when they
    /// are not set: a live test run without them must fail, not pass.
    pub fn live() -> Target {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: the live tests need TAE_LIVE_URL, TAE_LIVE_USER and TAE_LIVE_PASSWORD")
            })
        };
        Target {
            base: var("TAE_LIVE_URL").trim_end_matches('/').to_string(),
            user: var("TAE_LIVE_USER"),
            password: var("TAE_LIVE_PASSWORD"),
            sim: None,
            client: client(Duration::from_secs(30)),
        }
    }

    pub fn state(&self) -> SimState {
        self.sim
            .as_ref()
            .expect("portal side needs the stand-in")
            .state()
    }

    pub fn is_live(&self) -> bool {
        self.sim.is_none()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn login_as(&self, user: &str, password: &str) -> (StatusCode, Value) {
        self.send(
            Method::POST,
            tae_sim::api::LOGIN_V3,
            None,
            Some(json!({"userName": user, "password": password})),
        )
        .await
    }

    /// A token of the configured user.
    pub async fn token(&self) -> String {
        let (status, body) = self.login_as(&self.user, &self.password).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]["token"].as_str().expect("token").to_string()
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn upload_bytes(
        &self,
        token: &str,
        name: &str,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> (StatusCode, Value) {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_string())
            .mime_str("application/pdf")
            .expect("mime");
        let form = reqwest::multipart::Form::new()
            .text("NomeEnvelope", name.to_string())
            .part("Envelope", part);
        let response = self
            .client
            .post(self.url(tae_sim::api::UPLOAD))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("upload");
        let status = response.status();
        let value = response.json().await.unwrap_or(Value::Null);
        (status, value)
    }

    /// Uploads a small real PDF and returns its id.
    pub async fn upload(&self, token: &str, name: &str) -> u64 {
        let (status, body) = self
            .upload_bytes(token, name, "contrato.pdf", sample_pdf(name))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["success"], true, "{body}");
        body["data"].as_u64().expect("integer idDocumento")
    }

    /// Uploads and publishes to the given `(email, acao)` recipients.
    pub async fn publish(&self, token: &str, name: &str, recipients: &[(&str, i64)]) -> u64 {
        let id = self.upload(token, name).await;
        let (status, body) = self
            .post(tae_sim::api::PUBLISH_V1, token, publication(id, recipients))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["success"], true, "{body}");
        id
    }

    pub async fn read(&self, token: &str, id: u64) -> Value {
        let (status, body) = self
            .get(&format!("/documents/v2/publicacoes/{id}"), token)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].clone()
    }

    /// Portal: POST /_sim/<path>.
    pub async fn portal(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.send(method, path, None, body).await
    }
}

pub fn sample_pdf(title: &str) -> Vec<u8> {
    tae_sim::sample_pdf(
        title,
        &[
            "Contrato de prestação de serviços educacionais",
            "Página de teste",
        ],
    )
}

/// A unique e-mail for tests that create things (safe against a live service too).
pub fn unique_email(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("tae-sim-{tag}-{nanos}@example.com")
}

pub fn publication(id: u64, recipients: &[(&str, i64)]) -> Value {
    let destinatarios: Vec<Value> = recipients
        .iter()
        .map(|(email, acao)| {
            json!({
                "email": email, "acao": acao, "workflow": 0, "papelAssinante": "Responsável financeiro",
                "nomeCompleto": "Maria da Conceição", "tipoAutenticacao": 1, "tipoIdentificacao": 1,
                "identificacao": "12345678909", "notificaEnvio": true, "tipoEnvioDocumento": 1
            })
        })
        .collect();
    json!({
        "idDocumento": id,
        "utilizaWorkflow": false,
        "responsavelAssinaDocumento": false,
        "destinatarios": destinatarios,
        "observadores": [{"email": "secretaria@example.com"}],
        "publicacaoOpcoes": {"dataExpiracao": null, "assuntoMensagem": "Contrato para assinatura",
            "corpoMensagem": "Olá", "permiteRejeitarDocumento": true, "intervaloLembrete": 0,
            "solicitaAssinaturaManuscrita": false}
    })
}

pub fn errors_text(body: &Value) -> String {
    body["errors"].to_string()
}

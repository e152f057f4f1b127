//! TLS: tae-sim over HTTPS with a self-signed CA is refused by default with a clear error, and
//! accepted when the CA file is configured (`ca_file`); `http://` to a non-loopback host is
//! refused at `configure` (and never contacted by `execute`).

#[path = "reliability_support.rs"]
mod support;

use serde_json::{json, Value};
use support::*;
use tae_sim::{SimOptions, SimServer};

fn tls_world(n: usize) -> (World, SimServer) {
    let w = World::new(n, SimOptions::default());
    let tls = SimServer::start(SimOptions {
        tls: true,
        seed: 5,
        cert_dir: Some(w.dir.path().join("certs")),
        ..SimOptions::default()
    })
    .expect("start tae-sim with TLS");
    assert!(tls.base_url().starts_with("https://"));
    configure_db(w.host.db(), &tls);
    (w, tls)
}

fn message(v: &Value) -> String {
    format!(
        "{} {}",
        v["error"]["message"].as_str().unwrap_or(""),
        v["error"]["detail"].as_str().unwrap_or("")
    )
}

#[test]
fn self_signed_refused_by_default_accepted_with_ca_file() {
    let (w, tls) = tls_world(3);
    let p = w.plugin;
    // configure test: refused, saying it is the certificate.
    let (s, v) = p.configure(&w.host, &json!({"action": "test"}));
    let m = message(&v);
    let login_refused = s != 0 || v["login_ok"] == false;
    assert!(login_refused, "an untrusted certificate was accepted: {v}");
    let text = if s != 0 {
        m.clone()
    } else {
        v["message"].to_string()
    };
    // Unclear messages are collected and reported at the end, so the rest still runs.
    let mut unclear = Vec::new();
    if !text.to_lowercase().contains("certificado") {
        unclear.push(format!("configure test: {v}"));
    }
    // execute: refused before any contract, nothing reached the sim's document routes.
    let (s, v) = w.execute(
        "send",
        json!({"kind": "contract_view", "contract_keys": w.keys}),
        report_source(),
    );
    assert_ne!(s, 0, "send over an untrusted certificate: {v}");
    if !message(&v).to_lowercase().contains("certificado") {
        unclear.push(format!("execute send: {v}"));
    }
    assert!(tls.state().documents().is_empty());
    assert_eq!(tls.state().total_requests(), 0, "a request got through TLS");

    // With the CA file: accepted.
    let ca = tls.ca_cert_path().expect("ca.pem");
    w.host.db().set_param("ca_file", &json!(ca)).unwrap();
    let (s, v) = p.configure(&w.host, &json!({"action": "test"}));
    assert_eq!(s, 0, "{v}");
    assert_eq!(v["login_ok"], true, "{v}");
    let resp = w.send(&w.keys);
    assert_eq!(outcome_counts(&resp).get("sent"), Some(&3), "{resp}");
    assert_eq!(tls.state().documents().len(), 3);

    // A CA file that is not the signer of the server: refused again.
    let other = SimServer::start(SimOptions {
        tls: true,
        cert_dir: Some(w.dir.path().join("other-certs")),
        ..SimOptions::default()
    })
    .unwrap();
    let (s, v) = p.configure(
        &w.host,
        &json!({"action": "test", "values": {
            "auth_url": format!("{}/identityintegration", tls.base_url()), "api_url": tls.base_url(),
            "service_user": tae_sim::ADMIN_EMAIL, "service_password": tae_sim::ADMIN_PASSWORD,
            "ca_file": other.ca_cert_path().unwrap(), "request_timeout_secs": 2}}),
    );
    assert!(
        s != 0 || v["login_ok"] == false,
        "a foreign CA was trusted: {v}"
    );
    assert!(
        unclear.is_empty(),
        "an untrusted certificate is refused, but the error does not say the certificate is the \
         problem (it must not look like an outage):\n{}",
        unclear.join("\n")
    );
}

#[test]
fn plain_http_only_for_loopback() {
    let w = World::new(1, SimOptions::default());
    let p = w.plugin;
    let validate = |api: &str| {
        p.configure(
            &w.host,
            &json!({"action": "validate", "values": {
                "auth_url": format!("{api}/identityintegration"), "api_url": api,
                "service_user": "u@example.com", "service_password": "x"}}),
        )
    };
    for url in [
        "http://example.com",
        "http://10.0.0.7:8080",
        "http://192.168.0.10",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "http://[2001:db8::1]",
    ] {
        let (s, v) = validate(url);
        assert_eq!(s, 12, "{url} accepted: {v}");
        let fields = v["error"]["fields"].as_object().expect("fields");
        assert!(fields.contains_key("api_url"), "{url}: {v}");
        let m = fields["api_url"].as_str().unwrap_or("");
        assert!(
            m.contains("https") || m.contains("HTTPS"),
            "{url}: unclear: {m}"
        );
    }
    for url in [
        "http://127.0.0.1:9",
        "http://127.8.9.10:9",
        "http://localhost:9",
        "http://[::1]:9",
        "https://totvssign.totvs.app",
    ] {
        let (s, v) = validate(url);
        assert_eq!(s, 0, "{url} refused: {v}");
    }
    // A missing CA file is refused at configure, naming the field.
    let (s, v) = p.configure(
        &w.host,
        &json!({"action": "validate", "values": {
            "auth_url": "https://totvssign.totvs.app/identityintegration", "api_url": "https://totvssign.totvs.app",
            "ca_file": "/nao/existe/ca.pem"}}),
    );
    assert_eq!(s, 12, "{v}");
    assert!(v["error"]["fields"]["ca_file"].is_string(), "{v}");
    // Global parameters that point at plain http elsewhere: execute refuses before contacting it.
    w.host
        .db()
        .set_params(&json!({"auth_url": "http://example.com/identityintegration", "api_url": "http://example.com"}))
        .unwrap();
    let (s, v) = w.execute(
        "check",
        json!({"kind": "contract_view", "contract_keys": w.keys}),
        json!({}),
    );
    assert_eq!(s, 12, "{v}");
    assert!(
        w.host.ui_requests().is_empty(),
        "asked for a password for an insecure URL"
    );
}

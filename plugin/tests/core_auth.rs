//! Parameters, per-session authentication, permissions and the RM user's registration,
//! through `api::*` with an in-memory host against an in-process tae-sim.

mod common;

use common::*;
use serde_json::{json, Value};
use tae_edu::api;
use tae_edu::error::Status;

fn one_contract(host: &MockHost) -> Vec<String> {
    host.add_contracts(1);
    host.keys()
}

#[test]
fn configure_describe_validate_and_test() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    let d = api::configure(&host, json!({"action": "describe"})).unwrap();
    let names: Vec<&str> = d["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for n in [
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
    ] {
        assert!(names.contains(&n), "describe lacks {n}");
    }
    assert_eq!(d["fields"][0]["label"], "URL de autenticação");

    let e = api::configure(&host, json!({"action": "validate", "values": {"auth_url": "http://tae.example.com", "api_url": "x"}})).unwrap_err();
    assert_eq!(e.status, Status::InvalidConfig);
    let f = e.fields.unwrap();
    assert!(f["auth_url"].as_str().unwrap().contains("https"));
    assert!(f.contains_key("api_url"));

    let mut values = host.params.borrow().clone();
    values["service_user"] = json!(tae_sim::ADMIN_EMAIL);
    values["service_password"] = json!(tae_sim::ADMIN_PASSWORD);
    let v = api::configure(
        &host,
        json!({"action": "validate", "values": values.clone()}),
    )
    .unwrap();
    assert_eq!(v["values"]["max_concurrency"], 8);
    assert!(
        v["values"].get("service_password").is_none(),
        "password echoed"
    );

    let t = api::configure(&host, json!({"action": "test", "values": values.clone()})).unwrap();
    assert_eq!(t["login_ok"], true, "{t}");
    assert_eq!(
        t["permissions"],
        json!({"send": true, "delete": true, "query": true, "create_users": true})
    );
    assert!(t["latency_ms"].as_u64().is_some());
    assert!(!t.to_string().contains(tae_sim::ADMIN_PASSWORD));

    values["service_password"] = json!("wrong-password");
    let t = api::configure(&host, json!({"action": "test", "values": values})).unwrap();
    assert_eq!(t["login_ok"], false);
    assert!(t["message"].as_str().unwrap().contains("recusou"));
    sim.shutdown();
}

#[test]
fn first_call_prompts_once_same_session_reuses_new_session_prompts() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    let keys = one_contract(&host);
    let s1 = session("a");
    let r = api::execute(&host, option_request(&s1, "check", &keys)).unwrap();
    assert_eq!(outcomes(&r), ["skipped"]);
    assert_eq!(host.auth_prompts.borrow().len(), 1);
    assert_eq!(host.auth_prompts.borrow()[0]["reason"], "first");
    api::execute(&host, option_request(&s1, "check", &keys)).unwrap();
    assert_eq!(
        host.auth_prompts.borrow().len(),
        1,
        "same session must not prompt again"
    );
    let s2 = session("b");
    api::execute(&host, option_request(&s2, "check", &keys)).unwrap();
    assert_eq!(host.auth_prompts.borrow().len(), 2, "a new session prompts");
    // session_end drops the token: the next call in s1 prompts again.
    api::session_end(&s1);
    api::execute(&host, option_request(&s1, "check", &keys)).unwrap();
    assert_eq!(host.auth_prompts.borrow().len(), 3);
    assert_eq!(host.auth_prompts.borrow()[2]["reason"], "first");
    sim.shutdown();
}

#[test]
fn expiry_and_401_reprompt_once() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    let keys = one_contract(&host);
    let s = session("exp");
    // Tokens that live 30 s: within the plugin's one-minute margin, so the next call re-logs in.
    sim.state().set_faults(tae_sim::FaultConfig {
        token_ttl_secs: Some(30),
        ..Default::default()
    });
    api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    let prompts = host.auth_prompts.borrow().clone();
    assert_eq!(prompts.len(), 2);
    assert_eq!(prompts[1]["reason"], "expired");
    sim.state().set_faults(tae_sim::FaultConfig::default());
    api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    assert_eq!(host.auth_prompts.borrow().len(), 3);
    api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    assert_eq!(
        host.auth_prompts.borrow().len(),
        3,
        "a 12-hour token is reused"
    );

    // The service invalidates the token: a 401 mid-run re-prompts exactly once, even with
    // several contracts in flight.
    host.contracts.borrow_mut().clear();
    host.add_contracts(4);
    let keys = host.keys();
    sim.state().expire_tokens();
    let r = api::execute(&host, send_request(&s, &keys)).unwrap();
    assert_eq!(outcomes(&r), ["sent"; 4], "{r}");
    let prompts = host.auth_prompts.borrow().clone();
    assert_eq!(prompts.len(), 4, "one re-prompt after the 401");
    assert_eq!(prompts[3]["reason"], "unauthorized");
    sim.shutdown();
}

#[test]
fn two_concurrent_sessions_stay_isolated() {
    let sim = sim();
    let base = sim.base_url();
    let st = sim.state();
    for (email, cpf_n) in [("ana@escola.example", 11u64), ("bia@escola.example", 12)] {
        st.create_user(tae_sim::NewUser {
            email: email.into(),
            password: Some("Senha@123".into()),
            name: email.into(),
            cpf: cpf(cpf_n),
            ..Default::default()
        })
        .unwrap();
    }
    let handles: Vec<_> = ["ana@escola.example", "bia@escola.example"]
        .into_iter()
        .enumerate()
        .map(|(i, email)| {
            let base = base.clone();
            std::thread::spawn(move || {
                let host = MockHost::new(&base);
                *host.user.borrow_mut() =
                    json!({"login": email, "name": email, "email": email, "interactive": true});
                *host.default_credentials.borrow_mut() =
                    json!({"cancelled": false, "email": email, "password": "Senha@123"});
                host.contracts.borrow_mut().push(contract(
                    500 + i as u32,
                    "Aluno",
                    "Resp",
                    Some(&cpf(600 + i as u64)),
                    Some(&format!("r{i}@familia.example")),
                ));
                let s = session(email);
                let mut ids = Vec::new();
                for _ in 0..3 {
                    let r = api::execute(&host, option_request(&s, "check", &host.keys())).unwrap();
                    assert_eq!(r["ok"], true);
                }
                let r = api::execute(&host, send_request(&s, &host.keys())).unwrap();
                ids.push(r["results"][0]["document_id"].as_u64().unwrap());
                let n = host.auth_prompts.borrow().len();
                (n, ids, email)
            })
        })
        .collect();
    for h in handles {
        let (prompts, ids, email) = h.join().unwrap();
        assert_eq!(prompts, 1, "{email} prompted once");
        let doc = st.document(ids[0]).unwrap();
        assert!(
            doc.to_string().contains(email),
            "document {} created by {email}: {doc}",
            ids[0]
        );
    }
    sim.shutdown();
}

#[test]
fn unregistered_rm_user_is_registered_after_the_cpf_screen() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    let keys = one_contract(&host);
    *host.user.borrow_mut() = json!({"login": "joao", "name": "João Secretário", "email": "joao.secretario@escola.example", "interactive": true});
    host.cpf_script
        .borrow_mut()
        .push_back(json!({"cancelled": false, "cpf": "529.982.247-25"}));
    let r = api::execute(&host, option_request(&session("cpf"), "check", &keys)).unwrap();
    assert_eq!(host.cpf_prompts.borrow().len(), 1);
    let u = sim
        .state()
        .user("joao.secretario@escola.example")
        .expect("registered in TAE");
    assert_eq!(
        u.cpf
            .chars()
            .filter(|c| c.is_ascii_digit())
            .collect::<String>(),
        "52998224725"
    );
    assert!(r["notices"][0].as_str().unwrap().contains("cadastrado"));
    assert!(sim
        .state()
        .emails()
        .iter()
        .any(|e| e.to == "joao.secretario@escola.example"));
    sim.shutdown();
}

#[test]
fn invalid_cpf_is_refused_without_any_request() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    let keys = one_contract(&host);
    *host.user.borrow_mut() = json!({"login": "joao", "name": "João", "email": "joao2@escola.example", "interactive": true});
    for c in ["111.111.111-11", "123.456.789-00", "abc"] {
        host.cpf_script
            .borrow_mut()
            .push_back(json!({"cancelled": false, "cpf": c}));
    }
    let e = api::execute(&host, option_request(&session("badcpf"), "check", &keys)).unwrap_err();
    assert_eq!(e.status, Status::AuthFailed);
    assert_eq!(host.cpf_prompts.borrow().len(), 3);
    assert!(host.cpf_prompts.borrow()[1]["message"]
        .as_str()
        .unwrap()
        .contains("CPF inválido"));
    assert_eq!(
        sim.state().counter("POST", tae_sim::api::REGISTER),
        0,
        "no registration request"
    );
    assert!(sim.state().user("joao2@escola.example").is_none());
    // Cancelling the CPF screen ends cleanly too.
    let e = api::execute(&host, option_request(&session("cancelcpf"), "check", &keys)).unwrap_err();
    assert_eq!(e.status, Status::Cancelled);
    sim.shutdown();
}

#[test]
fn cancel_wrong_password_non_interactive_and_permissions() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    let keys = one_contract(&host);
    // Cancelled screen: nothing touched.
    host.auth_script
        .borrow_mut()
        .push_back(json!({"cancelled": true}));
    let e = api::execute(&host, send_request(&session("c"), &keys)).unwrap_err();
    assert_eq!(e.status, Status::Cancelled);
    assert!(host.all_records().is_empty());
    // Wrong password, then right: prompted again with reason "retry".
    host.auth_script.borrow_mut().push_back(
        json!({"cancelled": false, "email": tae_sim::ADMIN_EMAIL, "password": "errada"}),
    );
    let s = session("retry");
    api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    let p = host.auth_prompts.borrow().clone();
    assert_eq!(p.last().unwrap()["reason"], "retry");
    assert!(p.last().unwrap()["message"]
        .as_str()
        .unwrap()
        .contains("inválidos"));
    // Non-interactive without a service user.
    host.user.borrow_mut()["interactive"] = json!(false);
    let before = host.auth_prompts.borrow().len();
    let e = api::execute(&host, option_request(&session("job"), "check", &keys)).unwrap_err();
    assert_eq!(e.status, Status::AuthFailed);
    assert!(e.message.contains("usuário de serviço"));
    host.set_param("service_user", json!(tae_sim::ADMIN_EMAIL));
    host.set_param("service_password", json!(tae_sim::ADMIN_PASSWORD));
    let r = api::execute(&host, option_request(&session("job"), "check", &keys)).unwrap();
    assert_eq!(r["ok"], true);
    assert_eq!(
        host.auth_prompts.borrow().len(),
        before,
        "no screen for a scheduled job"
    );
    host.user.borrow_mut()["interactive"] = json!(true);
    // RM profile without the process.
    host.granted.set(false);
    let e = api::execute(&host, option_request(&session("p"), "check", &keys)).unwrap_err();
    assert_eq!(e.status, Status::PermissionDenied);
    assert!(e
        .message
        .contains("Integração com TOTVS Assinatura Digital"));
    host.granted.set(true);
    // TAE user without "excluir documentos": one clear error naming it, nothing touched.
    sim.state()
        .create_user(tae_sim::NewUser {
            email: "limitado@escola.example".into(),
            password: Some("Senha@123".into()),
            name: "Limitado".into(),
            cpf: cpf(77),
            permissions: Some(tae_sim::Permissions {
                publish: true,
                delete: false,
                query: true,
                create_users: true,
            }),
            ..Default::default()
        })
        .unwrap();
    *host.default_credentials.borrow_mut() =
        json!({"cancelled": false, "email": "limitado@escola.example", "password": "Senha@123"});
    let s = session("limited");
    let e = api::execute(&host, option_request(&s, "delete", &keys)).unwrap_err();
    assert_eq!(e.status, Status::PermissionDenied);
    assert!(e.message.contains("Excluir documentos"), "{}", e.message);
    sim.shutdown();
}

#[test]
fn no_secret_in_logs_responses_or_records() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(2);
    let keys = host.keys();
    let s = session("secret");
    let mut texts: Vec<String> = Vec::new();
    let r = api::execute(&host, send_request(&s, &keys)).unwrap();
    texts.push(r.to_string());
    sim.state().expire_tokens();
    let r = api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    texts.push(r.to_string());
    let mut values = host.params.borrow().clone();
    values["service_user"] = json!(tae_sim::ADMIN_EMAIL);
    values["service_password"] = json!(tae_sim::ADMIN_PASSWORD);
    texts.push(
        api::configure(
            &host,
            json!({"action": "validate", "values": values.clone()}),
        )
        .unwrap()
        .to_string(),
    );
    texts.push(
        api::configure(&host, json!({"action": "test", "values": values}))
            .unwrap()
            .to_string(),
    );
    texts.extend(
        host.transcript
            .borrow()
            .iter()
            .filter(|t| !t.contains("\"password\"") || !t.contains("cancelled"))
            .cloned(),
    );
    texts.extend(host.logs.borrow().iter().cloned());
    texts.extend(host.all_records().iter().map(Value::to_string));
    let all = texts.join("\n");
    assert!(!all.contains(tae_sim::ADMIN_PASSWORD), "password leaked");
    // Every token and password the plugin learned is registered for redaction: none of them
    // may appear in any captured text.
    assert_eq!(
        tae_edu::redact::redact(&all),
        all,
        "a registered secret (token or password) leaked"
    );
    // Tokens the sim issued never appear (they are long random strings: check none of the
    // logged/response text contains a bearer-looking value).
    assert!(!all.to_lowercase().contains("bearer "), "token leaked");
    sim.shutdown();
}

#[test]
fn https_is_verified_and_ca_file_is_trusted() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = tae_sim::SimServer::start(tae_sim::SimOptions {
        tls: true,
        ..Default::default()
    })
    .unwrap();
    assert!(sim.base_url().starts_with("https://"));
    let host = MockHost::new(&sim.base_url());
    host.set_param("service_user", json!(tae_sim::ADMIN_EMAIL));
    host.set_param("service_password", json!(tae_sim::ADMIN_PASSWORD));
    // The sim's self-signed CA is not trusted by default: the login fails, nothing else.
    let t = api::configure(&host, json!({"action": "test"})).unwrap();
    assert_eq!(t["login_ok"], false, "{t}");
    assert!(
        t["message"].as_str().unwrap().contains("certificado"),
        "{t}"
    );
    assert_eq!(sim.state().total_requests(), 0, "nothing got through TLS");
    let keys = one_contract(&host);
    let e = api::execute(&host, send_request(&session("tls0"), &keys)).unwrap_err();
    assert_eq!(e.status, Status::TaeError);
    assert!(e.message.contains("certificado"), "{e}");
    // With ca_file it is.
    host.set_param(
        "ca_file",
        json!(sim.ca_cert_path().unwrap().to_string_lossy()),
    );
    let t = api::configure(&host, json!({"action": "test"})).unwrap();
    assert_eq!(t["login_ok"], true, "{t}");
    let r = api::execute(&host, send_request(&session("tls"), &keys)).unwrap();
    assert_eq!(outcomes(&r), ["sent"], "{r}");
    sim.shutdown();
}

#[test]
fn two_threads_of_one_session_log_in_once() {
    let sim = sim();
    let base = sim.base_url();
    let s = session("shared");
    let prompts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (base, s, prompts) = (base.clone(), s.clone(), prompts.clone());
            std::thread::spawn(move || {
                let host = MockHost::new(&base);
                host.add_contracts(1);
                let r = api::execute(&host, option_request(&s, "check", &host.keys())).unwrap();
                assert_eq!(r["ok"], true);
                let n = host.auth_prompts.borrow().len();
                prompts.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(prompts.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(sim.state().counter("POST", tae_sim::api::LOGIN_V3), 1);
    sim.shutdown();
}

#[test]
fn screen_passwords_leave_the_redaction_registry_when_their_session_ends() {
    let sim = sim();
    let email = "senha.unica@escola.example";
    let password = "Senha-Unica-Desta-Sessao-7";
    let wrong = "Senha-Errada-Desta-Sessao-3";
    sim.state()
        .create_user(tae_sim::state::NewUser {
            email: email.into(),
            password: Some(password.into()),
            name: "Senha Única".into(),
            cpf: cpf(77),
            confirmed: Some(true),
            permissions: None,
            administrator: false,
            company: None,
        })
        .unwrap();
    let host = MockHost::new(&sim.base_url());
    host.user.borrow_mut()["email"] = json!(email);
    host.auth_script.borrow_mut().extend([
        json!({"cancelled": false, "email": email, "password": wrong}),
        json!({"cancelled": false, "email": email, "password": password}),
    ]);
    let keys = one_contract(&host);
    let s = session("passwords");
    api::execute(&host, option_request(&s, "check", &keys)).unwrap();
    assert_eq!(host.auth_prompts.borrow().len(), 2);
    // The refused password is forgotten at once; the accepted one is masked while the session
    // lives, and forgotten when it ends.
    assert_eq!(tae_edu::redact::redact(wrong), wrong);
    assert_eq!(tae_edu::redact::redact(password), "***");
    api::session_end(&s);
    assert_eq!(tae_edu::redact::redact(password), password);
    sim.shutdown();
}

//! Secrets: a full run (configure, a wrong password then the right one, send, portal signatures,
//! token expiry and re-authentication, check, update e-mails, download, delete, attachment list,
//! session end) with every log line, every response, every request the plugin made to the host,
//! every record and every file written captured; none holds a password or any token that TAE
//! issued. The tokens are taken from the wire by a recording proxy between the plugin and
//! tae-sim, so the test does not depend on how tae-sim makes them.

#[path = "reliability_support.rs"]
mod support;

use host_sim::seed::{DEMO_RM_USER, DEMO_RM_USER_CPF};
use host_sim::{Export, UiScript};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tae_sim::{FaultConfig, SimOptions, SimServer};

const WRONG_PASSWORD: &str = "Senha-Errada#4471";
const SERVICE_PASSWORD: &str = "Servico#Secreto-9182";
const SERVICE_USER: &str = "servico.rm@escola.example";

/// A byte-level TCP proxy that records everything the server answers.
struct Recorder {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<u8>>>,
}

fn start_recorder(upstream: std::net::SocketAddr) -> Recorder {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(upstream) else {
                continue;
            };
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_read, mut c_write) = (server, client);
            let seen = seen2.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match s_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            seen.lock().unwrap().extend_from_slice(&buf[..n]);
                            if c_write.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = c_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    Recorder { addr, seen }
}

/// Every `"token":"…"` value TAE answered.
fn tokens_on_the_wire(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for (i, _) in text.match_indices("\"token\":\"") {
        let rest = &text[i + 9..];
        if let Some(end) = rest.find('"') {
            out.push(rest[..end].to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Polls tae-sim directly (not through the recording proxy) until it answers 401 to every one of
/// `tokens` — their lifetime ran out on the simulator's own clock. Fails after 10 s.
fn wait_until_refused(base: &str, tokens: &[String]) {
    let client = reqwest::blocking::Client::new();
    let url = format!("{base}{}", tae_sim::api::PROFILE);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let accepted: Vec<&String> = tokens
            .iter()
            .filter(|token| {
                client
                    .get(&url)
                    .bearer_auth(token)
                    .send()
                    .map_or(true, |r| r.status() != reqwest::StatusCode::UNAUTHORIZED)
            })
            .collect();
        if accepted.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} token(s) still accepted after 10 s",
            accepted.len(),
            tokens.len()
        );
        // The interval between two polls of the condition, not a guess of how long it takes.
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn no_password_or_token_anywhere_after_a_full_run() {
    let sim = SimServer::start(SimOptions {
        seed: 99,
        ..SimOptions::default()
    })
    .unwrap();
    sim.state()
        .create_user(tae_sim::NewUser {
            email: SERVICE_USER.into(),
            password: Some(SERVICE_PASSWORD.into()),
            name: "Serviço RM".into(),
            cpf: "39053344705".into(),
            ..Default::default()
        })
        .unwrap();
    let proxy = start_recorder(sim.addr());
    let base = format!("http://{}", proxy.addr);
    let mut w = World::new(6, SimOptions::default());
    // Point the world at the proxy in front of *this* sim (the world's own sim stays unused).
    w.sim = sim;
    w.host
        .db()
        .configure_tae(&base, SERVICE_USER, SERVICE_PASSWORD)
        .unwrap();
    w.host.set_ui(
        UiScript::with_credentials(tae_sim::ADMIN_EMAIL, WRONG_PASSWORD)
            .then_credentials(tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
            .then_cpf(DEMO_RM_USER_CPF),
    );
    // Capture every request the plugin makes to the host (then serve it normally).
    let host_requests: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    for m in [
        "user.current",
        "user.has_permission",
        "params.get",
        "contracts.get",
        "contracts.find",
        "contracts.set_status",
        "file.read",
        "report.render",
        "ui.authenticate",
        "ui.ask_cpf",
        "records.get",
        "records.query",
        "records.put",
        "records.store_file",
    ] {
        let log = host_requests.clone();
        w.host.set_override(
            m,
            Box::new(move |req| {
                log.lock()
                    .unwrap()
                    .push(format!("{m} {}", String::from_utf8_lossy(req)));
                None
            }),
        );
    }
    let mut responses: Vec<Value> = Vec::new();
    let mut step = |name: &str, (s, v): (i32, Value)| -> Value {
        println!("{name}: status {s}");
        responses.push(v.clone());
        v
    };
    let keys = w.keys.clone();
    let cv = json!({"kind": "contract_view", "contract_keys": keys});
    let p = w.plugin;
    step(
        "describe",
        p.configure(&w.host, &json!({"action": "describe"})),
    );
    let params = Value::Object(w.host.db().params().unwrap());
    step(
        "validate",
        p.configure(&w.host, &json!({"action": "validate", "values": params})),
    );
    let t = step("test", p.configure(&w.host, &json!({"action": "test"})));
    assert_eq!(t["ok"], true, "{t}");
    let mut bad = params.clone();
    bad["service_password"] = json!(WRONG_PASSWORD);
    step(
        "test wrong password",
        p.configure(&w.host, &json!({"action": "test", "values": bad})),
    );
    let sent = step("send", w.execute("send", cv.clone(), report_source()));
    assert_eq!(outcome_counts(&sent).get("sent"), Some(&6), "{sent}");
    // The first screen answered a wrong password: the plugin asked again.
    assert!(
        w.host
            .ui_requests()
            .iter()
            .filter(|(m, _)| m == "ui.authenticate")
            .count()
            >= 2
    );
    // Sign two in the portal; expire every token; check (re-authenticates).
    let by = results_by_key(&sent);
    let state = w.sim.state();
    for k in &keys[..2] {
        let id = by[k]["document_id"].as_u64().unwrap();
        for r in state.document(id).unwrap()["recipients"]
            .as_array()
            .unwrap()
        {
            state.act(id, r["email"].as_str().unwrap()).unwrap();
        }
    }
    state.expire_tokens();
    step("check", w.execute("check", cv.clone(), json!({})));
    state.set_faults(FaultConfig {
        token_ttl_secs: Some(1),
        ..FaultConfig::default()
    });
    state.expire_tokens();
    let fr = w
        .host
        .db()
        .contract(&keys[2])
        .unwrap()
        .unwrap()
        .financial_responsible
        .unwrap();
    w.host
        .db()
        .set_responsible_email(&fr.code, Some("trocado@example.com"))
        .unwrap();
    step("update", w.execute("update_emails", cv.clone(), json!({})));
    // The download must find its token expired by the 1 s lifetime (not by expire_tokens):
    // wait until tae-sim refuses every token it has issued.
    let issued = tokens_on_the_wire(&proxy.seen.lock().unwrap());
    wait_until_refused(&w.sim.base_url(), &issued);
    w.host.set_files_dir(Some(w.dir.path().join("baixados")));
    step(
        "download",
        w.execute("download", cv.clone(), json!({"kind": 2})),
    );
    step(
        "delete",
        w.execute(
            "delete",
            json!({"kind": "contract_view", "contract_keys": [keys[4]]}),
            json!({}),
        ),
    );
    let list = step(
        "list",
        p.attachment_list(&w.host, &json!({"page": 1, "page_size": 50})),
    );
    let ids: Vec<Value> = list["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    step(
        "attachment check",
        w.execute(
            "check",
            json!({"kind": "attachment", "record_ids": ids}),
            json!({}),
        ),
    );
    // Non-interactive: the service user logs in.
    w.host.set_default_user(host_sim::seed::DEMO_RM_USER_JOB);
    let job_session = unique_session("job");
    step(
        "job check",
        p.execute(
            &w.host,
            &json!({"session": job_session, "invoked_from": cv, "option": "check", "params": {}}),
        ),
    );
    w.host.set_default_user(DEMO_RM_USER);
    // Reconcile from the menu (every record of the database read, the TAE user's documents
    // listed), a dry run and a fix.
    for fix in [false, true] {
        let v = step(
            "reconcile",
            w.execute(
                "reconcile",
                json!({"kind": "menu", "filter": {"codcoligada": 1}}),
                json!({"fix": fix}),
            ),
        );
        assert_eq!(v["ok"], true, "reconcile (fix {fix}): {v}");
    }
    // Raw error paths too.
    let (s, raw) = p.call_bytes(
        Export::Execute,
        &w.host,
        b"{\"session\": \"x\", \"senha\": \"Admin@123\"}",
    );
    assert_ne!(s, 0);
    responses.push(serde_json::from_slice(&raw).unwrap_or(Value::Null));
    assert_eq!(p.session_end(&w.session), 0);

    // ---- what must not appear
    let wire = proxy.seen.lock().unwrap().clone();
    let tokens = tokens_on_the_wire(&wire);
    assert!(tokens.len() >= 3, "the proxy saw {} tokens", tokens.len());
    let mut secrets: Vec<String> = vec![
        tae_sim::ADMIN_PASSWORD.into(),
        WRONG_PASSWORD.into(),
        SERVICE_PASSWORD.into(),
    ];
    secrets.extend(tokens.iter().cloned());

    // ---- where
    let mut haystacks: Vec<(String, String)> = Vec::new();
    for (i, l) in w.host.logs().iter().enumerate() {
        haystacks.push((
            format!("log line {i} (level {})", l.level),
            l.message.clone(),
        ));
    }
    for (i, r) in responses.iter().enumerate() {
        haystacks.push((format!("response {i}"), r.to_string()));
    }
    for (i, r) in host_requests.lock().unwrap().iter().enumerate() {
        // params.get's answer carries the service password from the host to the plugin; the
        // requests themselves must carry nothing.
        haystacks.push((format!("host request {i}"), r.clone()));
    }
    for (i, r) in w.host.ui_requests().iter().enumerate() {
        haystacks.push((format!("screen request {i}"), r.1.to_string()));
    }
    for r in w.records() {
        haystacks.push((format!("record {}", r["id"]), r.to_string()));
    }
    for (id, name, _) in w.host.db().record_files().unwrap() {
        haystacks.push((format!("stored file {id}/{name}"), String::new()));
    }
    // The plugin's files: what it stored on records (downloads) and any file under the world's
    // directory except the school database itself (its global_params table holds the service
    // password, written by the host, not by the plugin).
    let mut files = Vec::new();
    files_under(w.dir.path(), &mut files);
    let mut scanned_files = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("escola.db") {
            continue;
        }
        let bytes = std::fs::read(f).unwrap();
        haystacks.push((
            format!("file {}", f.display()),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
        scanned_files += 1;
    }
    // Records in the database, raw: the integration tables only.
    let conn = w.host.db().conn();
    let mut stmt = conn
        .prepare("SELECT body FROM integration_records UNION ALL SELECT detail FROM record_events UNION ALL SELECT CAST(content AS TEXT) FROM record_files")
        .unwrap();
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get::<_, Option<String>>(0))
        .unwrap()
        .filter_map(|r| r.ok().flatten())
        .collect();
    for (i, r) in rows.iter().enumerate() {
        haystacks.push((format!("db row {i}"), r.clone()));
    }
    // Process environment: the plugin must not export secrets into it.
    for (k, v) in std::env::vars() {
        haystacks.push((format!("env {k}"), v));
    }

    let mut leaks = Vec::new();
    for (where_, text) in &haystacks {
        for s in &secrets {
            if text.contains(s.as_str()) {
                let kind = if s.len() == 48 { "token" } else { "password" };
                leaks.push(format!("{kind} in {where_}"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked: {leaks:#?}");
    figures(&format!(
        "secrets haystacks={} log_lines={} responses={} records={} files={scanned_files} tokens_checked={} passwords_checked=3 leaks=0",
        haystacks.len(),
        w.host.logs().len(),
        responses.len(),
        w.records().len(),
        tokens.len()
    ));
}

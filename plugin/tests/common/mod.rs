//! An in-memory RM host for the core's integration tests: contracts, integration records,
//! global parameters, scripted screens, captured logs/progress, all checked to be called on
//! the thread that created it; plus helpers around an in-process tae-sim.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::thread::ThreadId;
use tae_edu::host::{Host, HostCallError, LogLevel};

pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

pub struct MockHost {
    thread: ThreadId,
    pub params: RefCell<Value>,
    pub user: RefCell<Value>,
    pub granted: Cell<bool>,
    pub contracts: RefCell<Vec<Value>>,
    pub records: RefCell<BTreeMap<String, Value>>,
    pub files: RefCell<HashMap<String, Vec<u8>>>,
    /// Answers of `ui.authenticate`, in order; when empty, the default credentials.
    pub auth_script: RefCell<VecDeque<Value>>,
    pub default_credentials: RefCell<Value>,
    pub auth_prompts: RefCell<Vec<Value>>,
    pub cpf_script: RefCell<VecDeque<Value>>,
    pub cpf_prompts: RefCell<Vec<Value>>,
    pub set_status: RefCell<Vec<String>>,
    pub stored_files: RefCell<Vec<(String, String, usize)>>,
    pub renders: Cell<u32>,
    pub logs: RefCell<Vec<String>>,
    pub progress: RefCell<Vec<(u32, u32, String)>>,
    /// Ask to cancel once `done` reaches this.
    pub cancel_at: Cell<Option<u32>>,
    pub puts: Cell<u32>,
    /// Fail `records.put` for records of this contract key.
    pub fail_put_for: RefCell<Option<String>>,
    /// Fail every `records.put` from the N-th (1-based) on, as a crash would.
    pub fail_puts_from: Cell<Option<u32>>,
    /// Every response and request seen (to assert no secret leaks).
    pub transcript: RefCell<Vec<String>>,
    /// `records.get` calls answered so far.
    pub record_gets: Cell<u32>,
    /// Fail every `records.get` from the N-th (1-based) on.
    pub fail_record_gets_from: Cell<Option<u32>>,
    /// A records store shared with other hosts (two RM users of one host, on two threads):
    /// `records.put` writes through to it and `records.get` reads it first.
    pub shared_records: RefCell<Option<SharedRecords>>,
    /// The DataServer this host answers for its contracts: unique per host, so that tests
    /// running in parallel in one process never hold each other's contracts (runs over the
    /// same DataServer and keys exclude each other, as two RM users of one host do). Tests of
    /// that exclusion give two hosts the same one.
    pub data_server: RefCell<String>,
    /// Refuse every `records.put` as a host does when the run's leases were lost
    /// (`docs/abi.md`, "Leases": code `lease_lost`).
    pub lease_lost: Cell<bool>,
    /// Called on every progress report, on the plugin's calling thread (tests use it to pause
    /// a run at a known point).
    pub progress_hook: RefCell<Option<ProgressHook>>,
}

static NEXT_HOST: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

pub type ProgressHook = Box<dyn Fn(u32)>;

pub type SharedRecords = std::sync::Arc<std::sync::Mutex<BTreeMap<String, Value>>>;

pub fn contract(
    code: u32,
    student: &str,
    fr_name: &str,
    cpf: Option<&str>,
    email: Option<&str>,
) -> Value {
    json!({
        "key": format!("1;2026{code:03};{code}"), "data_server": "EduContratoData",
        "codcoligada": 1, "codfilial": 1, "codcontrato": code.to_string(), "ra": format!("2026{code:03}"),
        "student_name": student, "course": "Enfermagem", "period": "2026/1", "status": "Ativo",
        "financial_responsible": {"code": format!("R{code}"), "name": fr_name, "cpf": cpf, "email": email}
    })
}

/// A valid CPF from a number (check digits computed).
pub fn cpf(n: u64) -> String {
    let base = format!("{:09}", 100_000_000 + n % 800_000_000);
    let mut d: Vec<u32> = base.chars().map(|c| c.to_digit(10).unwrap()).collect();
    for len in [9usize, 10] {
        let sum: u32 = d
            .iter()
            .enumerate()
            .map(|(i, x)| x * (len as u32 + 1 - i as u32))
            .sum();
        let r = (sum * 10) % 11;
        d.push(if r == 10 { 0 } else { r });
    }
    d.iter()
        .map(|x| char::from_digit(*x, 10).unwrap())
        .collect()
}

impl MockHost {
    pub fn new(base_url: &str) -> MockHost {
        MockHost {
            thread: std::thread::current().id(),
            params: RefCell::new(json!({
                "auth_url": format!("{base_url}/identityintegration"),
                "api_url": base_url,
                "max_concurrency": 8,
                "request_timeout_secs": 10,
            })),
            user: RefCell::new(
                json!({"login": "secretaria", "name": "Ana Secretária", "email": tae_sim::ADMIN_EMAIL, "interactive": true}),
            ),
            granted: Cell::new(true),
            contracts: RefCell::new(Vec::new()),
            records: RefCell::new(BTreeMap::new()),
            files: RefCell::new(HashMap::from([(
                "/x/contrato.pdf".to_string(),
                PDF.to_vec(),
            )])),
            auth_script: RefCell::new(VecDeque::new()),
            default_credentials: RefCell::new(
                json!({"cancelled": false, "email": tae_sim::ADMIN_EMAIL, "password": tae_sim::ADMIN_PASSWORD}),
            ),
            auth_prompts: RefCell::new(Vec::new()),
            cpf_script: RefCell::new(VecDeque::new()),
            cpf_prompts: RefCell::new(Vec::new()),
            set_status: RefCell::new(Vec::new()),
            stored_files: RefCell::new(Vec::new()),
            renders: Cell::new(0),
            logs: RefCell::new(Vec::new()),
            progress: RefCell::new(Vec::new()),
            cancel_at: Cell::new(None),
            puts: Cell::new(0),
            fail_put_for: RefCell::new(None),
            fail_puts_from: Cell::new(None),
            transcript: RefCell::new(Vec::new()),
            record_gets: Cell::new(0),
            fail_record_gets_from: Cell::new(None),
            shared_records: RefCell::new(None),
            progress_hook: RefCell::new(None),
            lease_lost: Cell::new(false),
            data_server: RefCell::new(format!(
                "EduContratoData#{}",
                NEXT_HOST.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            )),
        }
    }

    pub fn set_param(&self, name: &str, v: Value) {
        self.params.borrow_mut()[name] = v;
    }

    pub fn add_contracts(&self, n: u32) {
        for i in 1..=n {
            self.contracts.borrow_mut().push(contract(
                100 + i,
                &format!("Aluno {i}"),
                &format!("Responsável {i}"),
                Some(&cpf(i as u64)),
                Some(&format!("resp{i}@familia.example")),
            ));
        }
    }

    /// A contract as this host answers it: with the host's DataServer.
    fn with_data_server(&self, c: &Value) -> Value {
        let mut c = c.clone();
        c["data_server"] = json!(*self.data_server.borrow());
        c
    }

    pub fn keys(&self) -> Vec<String> {
        self.contracts
            .borrow()
            .iter()
            .map(|c| c["key"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn records_of(&self, key: &str) -> Vec<Value> {
        self.records
            .borrow()
            .values()
            .filter(|r| r["record_key"] == key)
            .cloned()
            .collect()
    }

    pub fn all_records(&self) -> Vec<Value> {
        self.records.borrow().values().cloned().collect()
    }

    fn answer(&self, v: Value) -> Result<Vec<u8>, HostCallError> {
        let s = v.to_string();
        self.transcript.borrow_mut().push(s.clone());
        Ok(s.into_bytes())
    }

    fn fail(&self, method: &str, msg: &str) -> Result<Vec<u8>, HostCallError> {
        Err(HostCallError {
            method: method.into(),
            status: 1,
            message: msg.into(),
        })
    }

    fn query(&self, filter: &Value) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .records
            .borrow()
            .values()
            .filter(|r| {
                if let Some(ids) = filter.get("record_ids").and_then(Value::as_array) {
                    if !ids.contains(&r["id"]) {
                        return false;
                    }
                }
                if let Some(k) = filter.get("contract_key").and_then(Value::as_str) {
                    if r["record_key"] != k {
                        return false;
                    }
                }
                if let Some(s) = filter.get("status").and_then(Value::as_str) {
                    if r["status"] != s {
                        return false;
                    }
                }
                if let Some(b) = filter.get("sent_by").and_then(Value::as_str) {
                    if r["sent_by"] != b {
                        return false;
                    }
                }
                let sent = r["sent_at"].as_str().unwrap_or("");
                if let Some(f) = filter.get("sent_from").and_then(Value::as_str) {
                    if sent.is_empty() || sent < f {
                        return false;
                    }
                }
                if let Some(t) = filter.get("sent_to").and_then(Value::as_str) {
                    if sent.is_empty() || sent[..t.len().min(sent.len())] > *t {
                        return false;
                    }
                }
                true
            })
            .cloned()
            .collect();
        let key = |r: &Value| {
            r["sent_at"]
                .as_str()
                .or(r["created_at"].as_str())
                .unwrap_or("")
                .to_string()
        };
        out.sort_by_key(|r| std::cmp::Reverse(key(r)));
        out
    }
}

impl Host for MockHost {
    fn call(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, HostCallError> {
        assert_eq!(
            std::thread::current().id(),
            self.thread,
            "host called from another thread ({method})"
        );
        let text = String::from_utf8(request.to_vec()).expect("utf-8 request");
        self.transcript.borrow_mut().push(text.clone());
        let req: Value = serde_json::from_str(&text).expect("JSON request");
        match method {
            "user.current" => self.answer(self.user.borrow().clone()),
            "user.has_permission" => {
                assert_eq!(req["permission"], "Integração com TOTVS Assinatura Digital");
                self.answer(json!({"granted": self.granted.get()}))
            }
            "params.get" => self.answer(json!({"values": self.params.borrow().clone()})),
            "contracts.get" => {
                let keys: Vec<String> = serde_json::from_value(req["keys"].clone()).unwrap();
                let all = self.contracts.borrow();
                let found: Vec<Value> = all
                    .iter()
                    .filter(|c| keys.iter().any(|k| c["key"] == k.as_str()))
                    .map(|c| self.with_data_server(c))
                    .collect();
                let missing: Vec<&String> = keys
                    .iter()
                    .filter(|k| !all.iter().any(|c| c["key"] == k.as_str()))
                    .collect();
                self.answer(json!({"contracts": found, "missing": missing}))
            }
            "contracts.find" => {
                let f = &req["filter"];
                let found: Vec<Value> = self
                    .contracts
                    .borrow()
                    .iter()
                    .filter(|c| {
                        ["period", "course", "status"]
                            .iter()
                            .all(|k| f.get(*k).is_none_or(|v| &c[*k] == v))
                    })
                    .map(|c| self.with_data_server(c))
                    .collect();
                self.answer(json!({"contracts": found}))
            }
            "contracts.set_status" => {
                self.set_status
                    .borrow_mut()
                    .push(req["key"].as_str().unwrap().to_string());
                self.answer(json!({}))
            }
            "file.read" => match self.files.borrow().get(req["path"].as_str().unwrap()) {
                Some(b) => Ok(b.clone()),
                None => self.fail(method, "arquivo não encontrado"),
            },
            "report.render" => {
                self.renders.set(self.renders.get() + 1);
                Ok(PDF.to_vec())
            }
            "ui.authenticate" => {
                self.auth_prompts.borrow_mut().push(req.clone());
                let next = self.auth_script.borrow_mut().pop_front();
                self.answer(next.unwrap_or_else(|| self.default_credentials.borrow().clone()))
            }
            "ui.ask_cpf" => {
                self.cpf_prompts.borrow_mut().push(req.clone());
                let next = self.cpf_script.borrow_mut().pop_front();
                self.answer(next.unwrap_or(json!({"cancelled": true})))
            }
            "records.get" => {
                self.record_gets.set(self.record_gets.get() + 1);
                if self
                    .fail_record_gets_from
                    .get()
                    .is_some_and(|n| self.record_gets.get() >= n)
                {
                    return self.fail(method, "banco de dados indisponível");
                }
                if let Some(shared) = self.shared_records.borrow().as_ref() {
                    let shared = shared.lock().unwrap();
                    let mut own = self.records.borrow_mut();
                    for (id, r) in shared.iter() {
                        own.insert(id.clone(), r.clone());
                    }
                }
                let keys: Vec<String> = serde_json::from_value(req["keys"].clone()).unwrap();
                let recs: Vec<Value> = self
                    .records
                    .borrow()
                    .values()
                    .filter(|r| {
                        r["data_server"] == req["data_server"]
                            && keys.iter().any(|k| r["record_key"] == k.as_str())
                    })
                    .cloned()
                    .collect();
                self.answer(json!({"records": recs}))
            }
            "records.query" => {
                let all = self.query(&req["filter"]);
                let offset = req["offset"].as_u64().unwrap() as usize;
                let limit = req["limit"].as_u64().unwrap() as usize;
                let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
                self.answer(json!({"total": all.len(), "records": page}))
            }
            "records.put" => {
                if self.lease_lost.get() {
                    let refs: Vec<Value> = req["records"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| json!({"data_server": r["data_server"], "key": r["record_key"]}))
                        .collect();
                    return self.fail(
                        method,
                        &json!({"message": "lease lost", "code": "lease_lost", "contracts": refs})
                            .to_string(),
                    );
                }
                if self
                    .fail_puts_from
                    .get()
                    .is_some_and(|n| self.puts.get() + 1 >= n)
                {
                    return self.fail(method, "falha de gravação simulada");
                }
                for r in req["records"].as_array().unwrap() {
                    if let Some(k) = self.fail_put_for.borrow().as_deref() {
                        if r["record_key"] == k {
                            return self.fail(method, "falha de gravação simulada");
                        }
                    }
                    self.records
                        .borrow_mut()
                        .insert(r["id"].as_str().unwrap().to_string(), r.clone());
                    if let Some(shared) = self.shared_records.borrow().as_ref() {
                        shared
                            .lock()
                            .unwrap()
                            .insert(r["id"].as_str().unwrap().to_string(), r.clone());
                    }
                }
                self.puts.set(self.puts.get() + 1);
                self.answer(json!({}))
            }
            "records.store_file" => {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(req["content_base64"].as_str().unwrap())
                    .unwrap();
                self.stored_files.borrow_mut().push((
                    req["record_id"].as_str().unwrap().into(),
                    req["file_name"].as_str().unwrap().into(),
                    bytes.len(),
                ));
                self.answer(json!({"path": "/anexos/x.pdf"}))
            }
            _ => self.fail(method, "unknown method"),
        }
    }

    fn log(&self, _level: LogLevel, message: &str) {
        self.logs.borrow_mut().push(message.to_string());
    }

    fn progress(&self, done: u32, total: u32, detail_json: &str) -> bool {
        assert_eq!(std::thread::current().id(), self.thread);
        self.progress
            .borrow_mut()
            .push((done, total, detail_json.to_string()));
        if let Some(hook) = self.progress_hook.borrow().as_ref() {
            hook(done);
        }
        self.cancel_at.get().is_some_and(|c| done >= c)
    }
}

pub fn sim() -> tae_sim::SimServer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tae_edu::tae::client::set_retry_policy(tae_edu::tae::RetryPolicy {
        attempts: 6,
        budget: std::time::Duration::from_secs(8),
        base_delay: std::time::Duration::from_millis(10),
    });
    tae_sim::SimServer::start(tae_sim::SimOptions::default()).expect("tae-sim starts")
}

/// A unique RM session id.
pub fn session(name: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}

pub fn send_request(session: &str, keys: &[String]) -> Value {
    json!({"session": session, "invoked_from": {"kind": "contract_view", "contract_keys": keys},
           "option": "send", "params": {"source": {"kind": "file", "path": "/x/contrato.pdf"}}})
}

pub fn option_request(session: &str, option: &str, keys: &[String]) -> Value {
    json!({"session": session, "invoked_from": {"kind": "contract_view", "contract_keys": keys},
           "option": option, "params": {}})
}

pub fn outcomes(resp: &Value) -> Vec<String> {
    resp["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap().to_string())
        .collect()
}

/// HTTP to the sim's portal side.
pub fn portal(sim: &tae_sim::SimServer, method: &str, path: &str, body: Option<Value>) -> Value {
    let url = format!("{}{path}", sim.base_url());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let c = reqwest::Client::new();
        let rb = match method {
            "GET" => c.get(&url),
            "PUT" => c.put(&url),
            _ => c.post(&url),
        };
        let rb = match body {
            Some(b) => rb.json(&b),
            None => rb,
        };
        let resp = rb.send().await.unwrap();
        resp.json::<Value>().await.unwrap_or(Value::Null)
    })
}

/// A TAE document's name without the send attempt's identity tag (`name [id]`): the name of
/// the contract's document, equal for two attempts of one contract.
pub fn contract_name(tae_name: &str) -> String {
    match tae_name.rsplit_once(" [") {
        Some((base, tag)) if tag.len() == 17 && tag.ends_with(']') => base.to_string(),
        _ => tae_name.to_string(),
    }
}

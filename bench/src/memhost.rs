//! A host that answers from memory (`run-one --host memory`): the C host table of
//! `docs/abi.md` over data loaded before the measured call — the contracts `seed_bulk`
//! generated (read once from the seeded database, then kept as JSON), the global parameters,
//! the RM user, the PDF bytes, and the integration records in a `HashMap`; leases are always
//! granted. Nothing touches SQLite or the disk during the call, so the host process's CPU with
//! this host is (almost) the plugin's own; the difference with host-sim's `RmHost` is
//! host-sim's share.
//!
//! It serves what a send with the `file` source calls (`user.current`, `user.has_permission`,
//! `params.get`, `contracts.find`, `contracts.get`, `file.read`, `ui.authenticate`,
//! `ui.ask_cpf`, `records.get`, `records.put`, `leases.*`); any other method answers a failure
//! naming it, so a run that needs more fails visibly instead of measuring something else.

use host_sim::{SchoolDb, TaeEduHost, UiScript};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// The in-memory host. Lives on the thread that calls the plugin.
pub struct MemoryHost {
    user: Value,
    params: Vec<u8>,
    /// The filter the bench's menu call uses, and its answer (serialised once).
    filter: Value,
    find_answer: Vec<u8>,
    contracts: HashMap<String, Value>,
    file_path: String,
    pdf: Vec<u8>,
    ui: RefCell<UiScript>,
    /// Records by id, and the ids of each contract key.
    records: RefCell<HashMap<String, Value>>,
    by_key: RefCell<HashMap<String, Vec<String>>>,
    leases: RefCell<u64>,
    counts: RefCell<BTreeMap<String, u64>>,
}

impl MemoryHost {
    /// Loads what the call will need from the seeded database (before the measurement).
    pub fn load(
        db: &SchoolDb,
        login: &str,
        filter: &Value,
        file_path: &str,
        ui: UiScript,
    ) -> Result<MemoryHost, String> {
        let user = db
            .user(login)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("RM user {login} not in the database"))?;
        let user = json!({"login": user.login, "name": user.name, "email": user.email,
                          "interactive": user.interactive});
        let params =
            serde_json::to_vec(&json!({"values": db.params().map_err(|e| e.to_string())?}))
                .map_err(|e| e.to_string())?;
        let parsed: host_sim::db::ContractFilter =
            host_sim::db::ContractFilter::from_json(filter).map_err(|e| e.to_string())?;
        let found = db.find_contracts(&parsed).map_err(|e| e.to_string())?;
        let list: Vec<Value> = found.iter().map(|c| c.to_json()).collect();
        let contracts = list
            .iter()
            .filter_map(|c| Some((c.get("key")?.as_str()?.to_string(), c.clone())))
            .collect();
        let find_answer =
            serde_json::to_vec(&json!({ "contracts": list })).map_err(|e| e.to_string())?;
        let pdf = std::fs::read(file_path).map_err(|e| format!("{file_path}: {e}"))?;
        Ok(MemoryHost {
            user,
            params,
            filter: filter.clone(),
            find_answer,
            contracts,
            file_path: file_path.to_string(),
            pdf,
            ui: RefCell::new(ui),
            records: RefCell::new(HashMap::new()),
            by_key: RefCell::new(HashMap::new()),
            leases: RefCell::new(0),
            counts: RefCell::new(BTreeMap::new()),
        })
    }

    /// Host methods called so far, by name.
    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        self.counts.borrow().clone()
    }

    /// Contracts loaded.
    pub fn contract_count(&self) -> usize {
        self.contracts.len()
    }

    /// Records held (for a sanity check after the call).
    pub fn record_count(&self) -> usize {
        self.records.borrow().len()
    }

    /// The callback table (host-sim's trampolines); `ctx` points at `self`, which must outlive
    /// the call.
    pub fn table(&self) -> TaeEduHost {
        host_sim::host::table_for(self)
    }

    fn handle(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        *self
            .counts
            .borrow_mut()
            .entry(method.to_string())
            .or_insert(0) += 1;
        let req: Value = serde_json::from_slice(request)
            .map_err(|e| format!("invalid JSON request for {method}: {e}"))?;
        let json_ok = |v: Value| serde_json::to_vec(&v).map_err(|e| e.to_string());
        let keys = |name: &str| -> Result<Vec<String>, String> {
            req.get(name)
                .and_then(Value::as_array)
                .ok_or_else(|| format!("{method}: missing array field `{name}`"))?
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{method}: `{name}` must hold strings"))
                })
                .collect()
        };
        match method {
            "user.current" => json_ok(self.user.clone()),
            // The bench's RM user holds every permission in the seed.
            "user.has_permission" => json_ok(json!({"granted": true})),
            "params.get" => Ok(self.params.clone()),
            "contracts.find" => {
                if req.get("filter") != Some(&self.filter) {
                    return Err(format!(
                        "memory host: only the bench's filter {} is loaded",
                        self.filter
                    ));
                }
                Ok(self.find_answer.clone())
            }
            "contracts.get" => {
                let (mut found, mut missing) = (Vec::new(), Vec::new());
                for k in keys("keys")? {
                    match self.contracts.get(&k) {
                        Some(c) => found.push(c.clone()),
                        None => missing.push(k),
                    }
                }
                json_ok(json!({"contracts": found, "missing": missing}))
            }
            "file.read" => {
                let path = req.get("path").and_then(Value::as_str).unwrap_or("");
                if path != self.file_path {
                    return Err(format!("memory host: no file {path}"));
                }
                Ok(self.pdf.clone())
            }
            "ui.authenticate" => json_ok(self.ui.borrow_mut().authenticate(&req)),
            "ui.ask_cpf" => json_ok(self.ui.borrow_mut().ask_cpf(&req)),
            "records.get" => {
                let records = self.records.borrow();
                let by_key = self.by_key.borrow();
                let mut out = Vec::new();
                for k in keys("keys")? {
                    for id in by_key.get(&k).into_iter().flatten() {
                        if let Some(r) = records.get(id) {
                            out.push(r.clone());
                        }
                    }
                }
                json_ok(json!({ "records": out }))
            }
            "records.put" => {
                let list = req
                    .get("records")
                    .and_then(Value::as_array)
                    .ok_or("records.put: missing array field `records`")?;
                let mut records = self.records.borrow_mut();
                let mut by_key = self.by_key.borrow_mut();
                for r in list {
                    let id = r
                        .get("id")
                        .and_then(Value::as_str)
                        .ok_or("records.put: a record without `id`")?
                        .to_string();
                    let key = r
                        .get("record_key")
                        .and_then(Value::as_str)
                        .ok_or("records.put: a record without `record_key`")?
                        .to_string();
                    if records.insert(id.clone(), r.clone()).is_none() {
                        by_key.entry(key).or_default().push(id);
                    }
                }
                json_ok(json!({}))
            }
            "leases.acquire" => {
                let mut n = self.leases.borrow_mut();
                *n += 1;
                let contracts = req.get("contracts").cloned().unwrap_or(json!([]));
                json_ok(
                    json!({"token": format!("mem-lease-{n}"), "granted": contracts, "held": []}),
                )
            }
            "leases.renew" => {
                let contracts = req.get("contracts").cloned().unwrap_or(json!([]));
                json_ok(json!({"renewed": contracts, "lost": []}))
            }
            "leases.release" => json_ok(json!({})),
            other => Err(format!("memory host: method {other} not served")),
        }
    }
}

/// Served through host-sim's C trampolines; logs and progress are dropped, no cancel.
impl host_sim::host::CHost for MemoryHost {
    fn handle(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, host_sim::MethodError> {
        MemoryHost::handle(self, method, request).map_err(host_sim::MethodError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use host_sim::seed::{DEMO_PERIOD, DEMO_RM_USER};

    fn call(host: &MemoryHost, method: &str, req: &Value) -> (i32, Vec<u8>) {
        let t = host.table();
        let req = serde_json::to_vec(req).unwrap();
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: the table's ctx is `host`, alive here; pointers are to locals.
        let status = unsafe {
            (t.call.unwrap())(
                t.ctx,
                method.as_ptr(),
                method.len(),
                req.as_ptr(),
                req.len(),
                &mut out,
                &mut len,
            )
        };
        // SAFETY: the buffer the host just gave, freed once.
        let bytes = unsafe { std::slice::from_raw_parts(out, len) }.to_vec();
        unsafe { (t.free_buffer.unwrap())(t.ctx, out, len) };
        (status, bytes)
    }

    #[test]
    fn serves_the_send_from_memory() {
        let db = SchoolDb::in_memory().unwrap();
        host_sim::seed_bulk(&db, 20).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pdf = dir.path().join("c.pdf");
        std::fs::write(&pdf, b"%PDF-1.4 x").unwrap();
        let filter = json!({"codcoligada": 1, "period": DEMO_PERIOD});
        let path = pdf.display().to_string();
        let host =
            MemoryHost::load(&db, DEMO_RM_USER, &filter, &path, UiScript::cancel_all()).unwrap();
        assert_eq!(host.contract_count(), 20);
        let (s, b) = call(&host, "contracts.find", &json!({ "filter": filter }));
        assert_eq!(s, 0);
        let found: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(found["contracts"].as_array().unwrap().len(), 20);
        let key = found["contracts"][0]["key"].as_str().unwrap().to_string();
        let (s, b) = call(
            &host,
            "contracts.find",
            &json!({"filter": {"codcoligada": 2}}),
        );
        assert_eq!(s, 1, "{}", String::from_utf8_lossy(&b));
        let (s, b) = call(&host, "file.read", &json!({ "path": path }));
        assert_eq!((s, b.as_slice()), (0, &b"%PDF-1.4 x"[..]));
        let record = json!({"id": "r-1", "data_server": "EduContratoData", "record_key": key,
                            "status": "enviando"});
        let (s, _) = call(&host, "records.put", &json!({ "records": [record] }));
        assert_eq!(s, 0);
        let newer = json!({"id": "r-1", "data_server": "EduContratoData", "record_key": key,
                           "status": "pendente"});
        call(&host, "records.put", &json!({ "records": [newer] }));
        let (_, b) = call(
            &host,
            "records.get",
            &json!({"data_server": "EduContratoData",
                                                        "keys": [key, "1;x;0"]}),
        );
        let got: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(got["records"], json!([newer]));
        assert_eq!(host.record_count(), 1);
        let (s, _) = call(&host, "report.render", &json!({}));
        assert_eq!(s, 1);
        assert_eq!(host.call_counts()["records.put"], 2);
    }
}

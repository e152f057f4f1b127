//! Typed wrappers over the host's `call` methods (`docs/abi.md`, "Host methods").

use crate::error::PluginError;
use crate::host::{Host, HostBytes, HostCallError};
use crate::records::{Contract, Record};
use serde::Deserialize;
use serde_json::{json, Value};

pub const PROCESS_PERMISSION: &str = "Integração com TOTVS Assinatura Digital";

#[derive(Clone, Debug, Deserialize)]
pub struct CurrentUser {
    #[serde(default)]
    pub login: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default = "yes")]
    pub interactive: bool,
}

fn yes() -> bool {
    true
}

impl CurrentUser {
    /// Who did it, in records and events.
    pub fn who(&self) -> String {
        if self.login.is_empty() {
            self.name.clone()
        } else {
            self.login.clone()
        }
    }
}

/// The host's answer to `ui.authenticate` / `ui.ask_cpf`.
pub enum Screen<T> {
    Cancelled,
    Confirmed(T),
}

#[derive(Clone, Copy)]
pub struct HostApi<'h> {
    pub host: &'h dyn Host,
}

fn host_err(e: HostCallError) -> PluginError {
    PluginError::host(e.to_string())
}

impl<'h> HostApi<'h> {
    pub fn new(host: &'h dyn Host) -> Self {
        HostApi { host }
    }

    pub fn raw(&self, method: &str, request: &Value) -> Result<Vec<u8>, HostCallError> {
        self.host.call(method, request.to_string().as_bytes())
    }

    pub fn json(&self, method: &str, request: &Value) -> Result<Value, PluginError> {
        let bytes = self.raw(method, request).map_err(host_err)?;
        if bytes.is_empty() {
            return Err(PluginError::host(format!(
                "host method {method} answered success with no response"
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            PluginError::host(format!("host method {method}: invalid JSON answer: {e}"))
        })
    }

    /// Calls `method` and parses its answer straight into `T` (no JSON tree in between: a
    /// batch's contracts and records are the largest answers a run reads).
    fn typed<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        request: &Value,
    ) -> Result<T, PluginError> {
        let bytes = self.raw(method, request).map_err(host_err)?;
        if bytes.is_empty() {
            return Err(PluginError::host(format!(
                "host method {method} answered success with no response"
            )));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| PluginError::host(format!("host method {method}: unexpected answer: {e}")))
    }

    pub fn user_current(&self, session: &str) -> Result<CurrentUser, PluginError> {
        let v = self.json("user.current", &json!({"session": session}))?;
        serde_json::from_value(v)
            .map_err(|e| PluginError::host(format!("host method user.current: {e}")))
    }

    pub fn has_permission(&self, session: &str) -> Result<bool, PluginError> {
        let v = self.json(
            "user.has_permission",
            &json!({"session": session, "permission": PROCESS_PERMISSION}),
        )?;
        Ok(v.get("granted").and_then(Value::as_bool).unwrap_or(false))
    }

    pub fn params(&self) -> Result<Value, PluginError> {
        let v = self.json("params.get", &json!({}))?;
        match v.get("values") {
            Some(values @ Value::Object(_)) => Ok(values.clone()),
            _ => Err(PluginError::host(
                "host method params.get: no \"values\" object in the answer",
            )),
        }
    }

    pub fn contracts_get(
        &self,
        keys: &[String],
    ) -> Result<(Vec<Contract>, Vec<String>), PluginError> {
        if keys.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        #[derive(Deserialize)]
        struct Answer {
            contracts: Vec<Contract>,
            #[serde(default)]
            missing: Option<Vec<String>>,
        }
        let a: Answer = self.typed("contracts.get", &json!({"keys": keys}))?;
        Ok((a.contracts, a.missing.unwrap_or_default()))
    }

    /// One page of `contracts.find` (`docs/abi.md`): at most `limit` contracts after `cursor`,
    /// and the cursor of the next page when the host says more follow (a host that does not
    /// page answers every contract and no cursor).
    pub fn contracts_find_page(
        &self,
        filter: &Value,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<Contract>, Option<String>), PluginError> {
        #[derive(Deserialize)]
        struct Answer {
            contracts: Vec<Contract>,
            #[serde(default)]
            next_cursor: Option<String>,
        }
        let a: Answer = self.typed(
            "contracts.find",
            &json!({"filter": filter, "limit": limit, "cursor": cursor}),
        )?;
        Ok((a.contracts, a.next_cursor.filter(|c| !c.is_empty())))
    }

    pub fn set_contract_signed(&self, key: &str, by: &str) -> Result<(), PluginError> {
        self.json(
            "contracts.set_status",
            &json!({"key": key, "status": "Assinado", "by": by}),
        )
        .map(|_| ())
    }

    /// `file.read`: the file read in place from the host's buffer, kept until the export returns.
    pub fn file_read(&self, path: &str) -> Result<HostBytes, HostCallError> {
        self.host
            .call_kept("file.read", json!({"path": path}).to_string().as_bytes())
    }

    pub fn report_render(
        &self,
        report_code: &str,
        contract_key: &str,
    ) -> Result<Vec<u8>, HostCallError> {
        self.raw(
            "report.render",
            &json!({"report_code": report_code, "contract_key": contract_key}),
        )
    }

    /// `ui.authenticate`: `(email, password)` or cancelled.
    pub fn ui_authenticate(
        &self,
        session: &str,
        email_hint: Option<&str>,
        reason: &str,
        message: Option<&str>,
    ) -> Result<Screen<(String, String)>, PluginError> {
        let v = self.json(
            "ui.authenticate",
            &json!({"session": session, "email_hint": email_hint, "reason": reason, "message": message}),
        )?;
        if v.get("cancelled").and_then(Value::as_bool).unwrap_or(false) {
            return Ok(Screen::Cancelled);
        }
        let email = v
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string();
        let password = v
            .get("password")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        crate::redact::register_secret(&password);
        Ok(Screen::Confirmed((email, password)))
    }

    pub fn ui_ask_cpf(
        &self,
        session: &str,
        name: &str,
        email: &str,
        message: Option<&str>,
    ) -> Result<Screen<String>, PluginError> {
        let v = self.json(
            "ui.ask_cpf",
            &json!({"session": session, "name": name, "email": email, "message": message}),
        )?;
        if v.get("cancelled").and_then(Value::as_bool).unwrap_or(false) {
            return Ok(Screen::Cancelled);
        }
        Ok(Screen::Confirmed(
            v.get("cpf")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ))
    }

    pub fn records_get(
        &self,
        data_server: &str,
        keys: &[String],
    ) -> Result<Vec<Record>, PluginError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        #[derive(Deserialize)]
        struct Answer {
            records: Vec<Record>,
        }
        let a: Answer = self.typed(
            "records.get",
            &json!({"data_server": data_server, "keys": keys}),
        )?;
        Ok(a.records)
    }

    pub fn records_query(
        &self,
        filter: &Value,
        offset: usize,
        limit: usize,
    ) -> Result<(u64, Vec<Record>), PluginError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            total: Option<u64>,
            records: Vec<Record>,
        }
        let a: Answer = self.typed(
            "records.query",
            &json!({"filter": filter, "offset": offset, "limit": limit}),
        )?;
        Ok((a.total.unwrap_or(a.records.len() as u64), a.records))
    }

    /// `records.put`, with the run's lease token when the host granted leases (the host then
    /// refuses the whole write if any of its contracts' leases was lost).
    pub fn records_put(
        &self,
        records: &[&Record],
        lease_token: Option<&str>,
    ) -> Result<(), PluginError> {
        if records.is_empty() {
            return Ok(());
        }
        // Serialised straight to bytes (no JSON tree of the records on the way).
        #[derive(serde::Serialize)]
        struct Put<'a> {
            records: &'a [&'a Record],
            #[serde(skip_serializing_if = "Option::is_none")]
            lease_token: Option<&'a str>,
        }
        let request = serde_json::to_vec(&Put {
            records,
            lease_token,
        })
        .map_err(|e| PluginError::internal(format!("records.put: cannot serialise: {e}")))?;
        let answer = self.host.call("records.put", &request).map_err(host_err)?;
        Self::check_json_answer("records.put", &answer)
    }

    /// An answer whose content is not used must still be a JSON answer (checked without
    /// building it).
    fn check_json_answer(method: &str, bytes: &[u8]) -> Result<(), PluginError> {
        if bytes.is_empty() {
            return Err(PluginError::host(format!(
                "host method {method} answered success with no response"
            )));
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            .map(|_| ())
            .map_err(|e| {
                PluginError::host(format!("host method {method}: invalid JSON answer: {e}"))
            })
    }

    pub fn records_store_file(
        &self,
        record_id: &str,
        file_name: &str,
        content: &[u8],
    ) -> Result<Option<String>, PluginError> {
        use base64::Engine;
        let v = self.json(
            "records.store_file",
            &json!({"record_id": record_id, "file_name": file_name,
                    "content_base64": base64::engine::general_purpose::STANDARD.encode(content)}),
        )?;
        Ok(v.get("path").and_then(Value::as_str).map(str::to_string))
    }
}

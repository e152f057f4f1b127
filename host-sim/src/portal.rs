//! The TAE portal's side, as the responsibles would use it, over tae-sim's `/_sim/` HTTP routes
//! (sign/validate/witness, reject, confirm a user) plus its inspection routes (documents,
//! e-mails, counters). Works against the embedded tae-sim or one running elsewhere.

use serde_json::{json, Value};
use std::time::Duration;

/// A client of tae-sim's portal routes.
pub struct Portal {
    base: String,
    http: reqwest::blocking::Client,
}

impl Portal {
    /// `base_url` is tae-sim's base (e.g. `http://127.0.0.1:40123`).
    pub fn new(base_url: &str) -> Result<Portal, String> {
        crate::install_crypto_provider();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("não foi possível criar o cliente HTTP ({e})"))?;
        Ok(Portal {
            base: base_url.trim_end_matches('/').to_string(),
            http,
        })
    }

    fn answer(
        path: &str,
        resp: reqwest::Result<reqwest::blocking::Response>,
    ) -> Result<Value, String> {
        let resp = resp.map_err(|e| format!("{path}: {e}"))?;
        let status = resp.status();
        let text = resp.text().map_err(|e| format!("{path}: {e}"))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let msg = body
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| body.to_string());
            return Err(format!("{path}: HTTP {status}: {msg}"));
        }
        Ok(body)
    }

    pub fn get(&self, path: &str) -> Result<Value, String> {
        Self::answer(path, self.http.get(format!("{}{path}", self.base)).send())
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        Self::answer(
            path,
            self.http
                .post(format!("{}{path}", self.base))
                .json(body)
                .send(),
        )
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<Value, String> {
        Self::answer(
            path,
            self.http
                .put(format!("{}{path}", self.base))
                .json(body)
                .send(),
        )
    }

    /// Every document, in the portal's JSON shape.
    pub fn documents(&self) -> Result<Vec<Value>, String> {
        let v = self.get("/_sim/documents")?;
        v.as_array()
            .cloned()
            .ok_or_else(|| format!("/_sim/documents respondeu {v}"))
    }

    pub fn document(&self, id: i64) -> Result<Value, String> {
        self.get(&format!("/_sim/documents/{id}"))
    }

    /// The recipient `email` signs / validates / witnesses (its role decides).
    pub fn act(&self, id: i64, email: &str) -> Result<Value, String> {
        self.post(
            &format!("/_sim/documents/{id}/act"),
            &json!({ "email": email }),
        )
    }

    /// The recipient `email` rejects the document.
    pub fn reject(&self, id: i64, email: &str, reason: &str) -> Result<Value, String> {
        self.post(
            &format!("/_sim/documents/{id}/reject"),
            &json!({ "email": email, "reason": reason }),
        )
    }

    /// Every still-pending recipient acts, in workflow order: the document ends "Finalizado".
    pub fn act_all(&self, id: i64) -> Result<Value, String> {
        let doc = self.document(id)?;
        let mut pending: Vec<(i64, String)> = doc
            .get("recipients")
            .and_then(Value::as_array)
            .map(|rs| {
                rs.iter()
                    .filter(|r| r.get("state").and_then(Value::as_str) == Some("pending"))
                    .filter_map(|r| {
                        Some((
                            r.get("workflow").and_then(Value::as_i64).unwrap_or(0),
                            r.get("email")?.as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        pending.sort();
        let mut last = doc;
        for (_, email) in pending {
            last = self.act(id, &email)?;
        }
        Ok(last)
    }

    /// Like the responsibles do: each pending recipient first confirms their TAE account (the
    /// e-mail TAE sent when the plugin registered them), then acts. A recipient that is not a
    /// TAE user (e.g. e-mail-code authentication) just acts.
    pub fn confirm_and_act_all(&self, id: i64) -> Result<Value, String> {
        let doc = self.document(id)?;
        let emails: Vec<String> = doc
            .get("recipients")
            .and_then(Value::as_array)
            .map(|rs| {
                rs.iter()
                    .filter(|r| r.get("state").and_then(Value::as_str) == Some("pending"))
                    .filter_map(|r| Some(r.get("email")?.as_str()?.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut confirm_errors = Vec::new();
        for email in &emails {
            if let Err(e) = self.confirm_user(email) {
                confirm_errors.push(e);
            }
        }
        self.act_all(id).map_err(|e| {
            if confirm_errors.is_empty() {
                e
            } else {
                format!("{e} (confirmação: {})", confirm_errors.join("; "))
            }
        })
    }

    /// The user confirms their e-mail (and sets a password, when given).
    pub fn confirm_user(&self, email: &str) -> Result<Value, String> {
        self.post("/_sim/users/confirm", &json!({ "email": email }))
    }

    pub fn users(&self) -> Result<Vec<Value>, String> {
        let v = self.get("/_sim/users")?;
        v.as_array()
            .cloned()
            .ok_or_else(|| format!("/_sim/users respondeu {v}"))
    }

    pub fn emails(&self) -> Result<Vec<Value>, String> {
        let v = self.get("/_sim/emails")?;
        v.as_array()
            .cloned()
            .ok_or_else(|| format!("/_sim/emails respondeu {v}"))
    }

    /// Request counters (`"<METHOD> <route>"` → count).
    pub fn counters(&self) -> Result<Value, String> {
        self.get("/_sim/counters")
    }

    /// Replaces the fault configuration.
    pub fn set_faults(&self, faults: &Value) -> Result<Value, String> {
        self.put("/_sim/faults", faults)
    }
}

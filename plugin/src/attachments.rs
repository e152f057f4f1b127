//! `attachment_list`: the integration records, filtered and paged through `records.query`.

use crate::error::PluginError;
use crate::host::Host;
use crate::hostcalls::HostApi;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RecordFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record_ids: Option<Vec<String>>,
    #[serde(default)]
    contract_key: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    sent_from: Option<String>,
    #[serde(default)]
    sent_to: Option<String>,
    #[serde(default)]
    sent_by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListRequest {
    #[serde(default)]
    filter: Option<RecordFilter>,
    #[serde(default = "one")]
    page: u64,
    #[serde(default = "fifty")]
    page_size: u64,
}

fn one() -> u64 {
    1
}
fn fifty() -> u64 {
    50
}

const STATUSES: &[&str] = &[
    "enviando",
    "rascunho",
    "pendente",
    "assinado_parcialmente",
    "finalizado",
    "rejeitado",
    "cancelado",
    "falhou",
];

fn valid_time(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
        || chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

pub fn list(host: &dyn Host, request: Value) -> Result<Value, PluginError> {
    let req: ListRequest = serde_json::from_value(request)
        .map_err(|e| PluginError::invalid_request(format!("attachment-list request: {e}")))?;
    if req.page == 0 {
        return Err(PluginError::invalid_request("page starts at 1"));
    }
    if !(1..=500).contains(&req.page_size) {
        return Err(PluginError::invalid_request(
            "page_size must be between 1 and 500",
        ));
    }
    let f = req.filter.unwrap_or_default();
    let mut filter = serde_json::Map::new();
    if let Some(ids) = f.record_ids {
        filter.insert("record_ids".into(), json!(ids));
    }
    if let Some(k) = f.contract_key.filter(|k| !k.is_empty()) {
        filter.insert("contract_key".into(), json!(k));
    }
    if let Some(s) = f.status.filter(|s| !s.is_empty()) {
        if !STATUSES.contains(&s.as_str()) {
            return Err(PluginError::invalid_request(format!(
                "unknown status filter {s:?}"
            )));
        }
        filter.insert("status".into(), json!(s));
    }
    for (name, v) in [("sent_from", f.sent_from), ("sent_to", f.sent_to)] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            if !valid_time(&v) {
                return Err(PluginError::invalid_request(format!(
                    "{name} must be an RFC 3339 timestamp or a YYYY-MM-DD date"
                )));
            }
            filter.insert(name.into(), json!(v));
        }
    }
    if let Some(b) = f.sent_by.filter(|b| !b.is_empty()) {
        filter.insert("sent_by".into(), json!(b));
    }
    let offset = ((req.page - 1) * req.page_size) as usize;
    let (total, records) =
        HostApi::new(host).records_query(&Value::Object(filter), offset, req.page_size as usize)?;
    Ok(json!({
        "ok": true,
        "total": total,
        "page": req.page,
        "page_size": req.page_size,
        "records": records,
    }))
}

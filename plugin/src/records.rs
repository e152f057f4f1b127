//! The integration record (the attachment on the globals registry) and the contract as the host
//! describes it (`docs/abi.md`, "Contract" and "Record").

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Now, RFC 3339 UTC with seconds (`2026-11-28T22:05:50Z`).
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn stringish<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

fn opt_stringish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s),
        Value::Null => None,
        other => Some(other.to_string()),
    })
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FinancialResponsible {
    #[serde(default, deserialize_with = "opt_stringish")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "opt_stringish")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "opt_stringish")]
    pub cpf: Option<String>,
    #[serde(default, deserialize_with = "opt_stringish")]
    pub email: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Contract {
    #[serde(deserialize_with = "stringish")]
    pub key: String,
    #[serde(default, deserialize_with = "stringish")]
    pub data_server: String,
    #[serde(default)]
    pub codcoligada: Value,
    #[serde(default)]
    pub codfilial: Value,
    #[serde(default, deserialize_with = "stringish")]
    pub codcontrato: String,
    #[serde(default, deserialize_with = "stringish")]
    pub ra: String,
    #[serde(default, deserialize_with = "stringish")]
    pub student_name: String,
    #[serde(default, deserialize_with = "stringish")]
    pub course: String,
    #[serde(default, deserialize_with = "stringish")]
    pub period: String,
    #[serde(default, deserialize_with = "stringish")]
    pub status: String,
    #[serde(default)]
    pub financial_responsible: Option<FinancialResponsible>,
}

pub const DEFAULT_DATA_SERVER: &str = "EduContratoData";

impl Contract {
    /// "Contrato 145 (João Ávila)" — how messages name a contract.
    pub fn label(&self) -> String {
        let code = if self.codcontrato.is_empty() {
            &self.key
        } else {
            &self.codcontrato
        };
        if self.student_name.is_empty() {
            format!("Contrato {code}")
        } else {
            format!("Contrato {code} ({})", self.student_name)
        }
    }

    pub fn data_server(&self) -> &str {
        if self.data_server.is_empty() {
            DEFAULT_DATA_SERVER
        } else {
            &self.data_server
        }
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Contract {
    /// The placeholder values of the document name template.
    pub fn template_values(&self) -> Vec<(&'static str, String)> {
        vec![
            ("codcontrato", self.codcontrato.clone()),
            ("aluno", self.student_name.clone()),
            ("ra", self.ra.clone()),
            ("curso", self.course.clone()),
            ("periodo", self.period.clone()),
            (
                "responsavel",
                self.financial_responsible
                    .as_ref()
                    .and_then(|r| r.name.clone())
                    .unwrap_or_default(),
            ),
            ("coligada", plain(&self.codcoligada)),
            ("filial", plain(&self.codfilial)),
        ]
    }
}

/// The longest name the plugin gives TAE (TAE accepts about 250; see `docs/tae-api.md`).
pub const MAX_ENVELOPE_NAME: usize = 100;

/// `name [id]`, the name cut (on a character boundary) so that the whole fits
/// [`MAX_ENVELOPE_NAME`] characters.
pub fn envelope_name(name: &str, id: &str) -> String {
    let tag = format!(" [{id}]");
    let room = MAX_ENVELOPE_NAME.saturating_sub(tag.chars().count());
    let cut: String = name.chars().take(room).collect();
    format!("{}{tag}", cut.trim_end())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    Enviando,
    Rascunho,
    Pendente,
    AssinadoParcialmente,
    Finalizado,
    Rejeitado,
    Cancelado,
    Falhou,
}

impl RecordStatus {
    pub fn label(self) -> &'static str {
        match self {
            RecordStatus::Enviando => "Enviando",
            RecordStatus::Rascunho => "Rascunho",
            RecordStatus::Pendente => "Pendente",
            RecordStatus::AssinadoParcialmente => "Assinado parcialmente",
            RecordStatus::Finalizado => "Finalizado",
            RecordStatus::Rejeitado => "Rejeitado",
            RecordStatus::Cancelado => "Cancelado",
            RecordStatus::Falhou => "Falhou",
        }
    }

    /// A contract with an active record is never sent again.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RecordStatus::Enviando
                | RecordStatus::Rascunho
                | RecordStatus::Pendente
                | RecordStatus::AssinadoParcialmente
        )
    }

    /// Sent but not yet published: needs reconciliation with TAE before anything else.
    pub fn is_unfinished_send(self) -> bool {
        matches!(self, RecordStatus::Enviando | RecordStatus::Rascunho)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Enviando => "enviando",
            RecordStatus::Rascunho => "rascunho",
            RecordStatus::Pendente => "pendente",
            RecordStatus::AssinadoParcialmente => "assinado_parcialmente",
            RecordStatus::Finalizado => "finalizado",
            RecordStatus::Rejeitado => "rejeitado",
            RecordStatus::Cancelado => "cancelado",
            RecordStatus::Falhou => "falhou",
        }
    }

    /// From a TAE document's status (`None` for a status this plugin does not know).
    pub fn from_tae(status: crate::tae::DocStatus) -> Option<RecordStatus> {
        use crate::tae::DocStatus;
        Some(match status {
            DocStatus::Pending => RecordStatus::Pendente,
            DocStatus::PartiallySigned => RecordStatus::AssinadoParcialmente,
            DocStatus::Finalised => RecordStatus::Finalizado,
            DocStatus::Rejected => RecordStatus::Rejeitado,
            DocStatus::Draft => RecordStatus::Rascunho,
            DocStatus::Cancelled => RecordStatus::Cancelado,
            DocStatus::Other(_) => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Signer,
    Validator,
    Witness,
}

impl Role {
    /// What the recipient does in TAE.
    pub fn action(self) -> crate::tae::Action {
        match self {
            Role::Signer => crate::tae::Action::Sign,
            Role::Validator => crate::tae::Action::Validate,
            Role::Witness => crate::tae::Action::Witness,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Signer => "assinante",
            Role::Validator => "validador",
            Role::Witness => "testemunha",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientState {
    Pending,
    Signed,
    Rejected,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recipient {
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpf: Option<String>,
    /// The recipient's role. Records written by older versions also carry TAE's `acao` code;
    /// it is ignored on reading and no longer written.
    pub role: Role,
    pub state: RecipientState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acted_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: String,
    #[serde(default)]
    pub by: String,
    pub kind: String,
    #[serde(default)]
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub data_server: String,
    pub record_key: String,
    #[serde(default)]
    pub document_id: Option<i64>,
    #[serde(default)]
    pub document_name: String,
    /// The identity of the send attempt, written before the upload and carried in the name TAE
    /// keeps (`NomeEnvelope`, read back as `nomeArquivo`): the only proof that a TAE document
    /// found without its id is this record's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_id: Option<String>,
    #[serde(default)]
    pub file_name: String,
    #[serde(default)]
    pub file_size: u64,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub recipients: Vec<Recipient>,
    pub status: RecordStatus,
    #[serde(default)]
    pub status_label: String,
    #[serde(default)]
    pub rejection_reason: Option<String>,
    #[serde(default)]
    pub sent_by: Option<String>,
    #[serde(default)]
    pub sent_at: Option<String>,
    #[serde(default)]
    pub last_check_at: Option<String>,
    #[serde(default)]
    pub deleted_by: Option<String>,
    #[serde(default)]
    pub deleted_at: Option<String>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub events: Vec<Event>,
    /// Fields a host added: kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Record {
    pub fn new(data_server: &str, record_key: &str, by: &str) -> Record {
        let at = now();
        let id = format!(
            "r-{}-{}",
            Utc::now().format("%Y%m%d%H%M%S"),
            (0..12)
                .map(|_| fastrand::alphanumeric().to_ascii_lowercase())
                .collect::<String>()
        );
        let mut r = Record {
            id,
            data_server: data_server.to_string(),
            record_key: record_key.to_string(),
            document_id: None,
            document_name: String::new(),
            send_id: None,
            file_name: String::new(),
            file_size: 0,
            sha256: String::new(),
            recipients: Vec::new(),
            status: RecordStatus::Enviando,
            status_label: RecordStatus::Enviando.label().into(),
            rejection_reason: None,
            sent_by: None,
            sent_at: None,
            last_check_at: None,
            deleted_by: None,
            deleted_at: None,
            last_error: None,
            created_at: at.clone(),
            updated_at: at,
            events: Vec::new(),
            extra: Map::new(),
        };
        r.event(by, "created", "registro criado antes do envio");
        r
    }

    pub fn set_status(&mut self, status: RecordStatus) {
        self.status = status;
        self.status_label = status.label().to_string();
    }

    pub fn event(&mut self, by: &str, kind: &str, detail: impl Into<String>) {
        let at = now();
        self.updated_at = at.clone();
        self.events.push(Event {
            at,
            by: by.to_string(),
            kind: kind.to_string(),
            detail: crate::redact::redact(&detail.into()),
        });
    }

    /// Starts a new send attempt named `name`: a fresh identity, and the name TAE will keep
    /// (`name [send_id]`, at most [`MAX_ENVELOPE_NAME`] characters).
    pub fn new_send_attempt(&mut self, name: &str) {
        let id: String = (0..16)
            .map(|_| fastrand::alphanumeric().to_ascii_lowercase())
            .collect();
        self.document_name = envelope_name(name, &id);
        self.send_id = Some(id);
    }

    /// Whether a name TAE keeps carries this record's send identity.
    pub fn carries_send_id(&self, tae_name: &str) -> bool {
        self.send_id
            .as_deref()
            .is_some_and(|id| tae_name.contains(&format!("[{id}]")))
    }

    /// Newest first by creation time.
    pub fn sort_newest_first(records: &mut [Record]) {
        records.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_round_trip_keeps_host_fields() {
        let mut r = Record::new("EduContratoData", "1;2;3", "ana");
        r.extra.insert("host_note".into(), json!("x"));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"], "enviando");
        assert_eq!(v["status_label"], "Enviando");
        assert_eq!(v["host_note"], "x");
        assert_eq!(v["events"][0]["kind"], "created");
        let back: Record = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn recipients_store_roles_and_old_acao_codes_are_read() {
        let r: Recipient = serde_json::from_value(json!({
            "email": "v@x.com", "name": "V", "role": "validator", "acao": 1, "state": "pending"
        }))
        .unwrap();
        assert_eq!(r.role, Role::Validator);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["role"], "validator");
        assert!(v.get("acao").is_none(), "{v}");
    }

    #[test]
    fn contract_lenient_fields() {
        let c: Contract = serde_json::from_value(json!({
            "key": "1;2026001;145", "codcontrato": 145, "student_name": "João Ávila",
            "financial_responsible": {"name": "Maria", "cpf": "", "email": null}
        }))
        .unwrap();
        assert_eq!(c.codcontrato, "145");
        assert_eq!(c.label(), "Contrato 145 (João Ávila)");
        assert_eq!(c.financial_responsible.unwrap().cpf, None);
        assert!(c.data_server.is_empty());
    }

    #[test]
    fn envelope_names_carry_the_send_id_within_100_characters() {
        let mut r = Record::new("D", "k", "ana");
        r.new_send_attempt("Contrato 145 - João Ávila");
        let id = r.send_id.clone().unwrap();
        assert_eq!(id.len(), 16);
        assert_eq!(r.document_name, format!("Contrato 145 - João Ávila [{id}]"));
        assert!(r.carries_send_id(&r.document_name));
        assert!(!r.carries_send_id("Contrato 145 - João Ávila"));
        let long = "Á".repeat(300);
        let n = envelope_name(&long, &id);
        assert_eq!(n.chars().count(), MAX_ENVELOPE_NAME);
        assert!(n.ends_with(&format!(" [{id}]")));
        let mut other = Record::new("D", "k", "ana");
        other.new_send_attempt("Contrato 145 - João Ávila");
        assert_ne!(other.send_id, r.send_id, "a new identity per attempt");
        assert!(!other.carries_send_id(&r.document_name));
    }

    #[test]
    fn statuses() {
        assert!(RecordStatus::Enviando.is_active());
        assert!(!RecordStatus::Finalizado.is_active());
        assert!(!RecordStatus::Falhou.is_active());
        use crate::tae::DocStatus;
        assert_eq!(
            RecordStatus::from_tae(DocStatus::from_code(2)),
            Some(RecordStatus::Finalizado)
        );
        assert_eq!(RecordStatus::from_tae(DocStatus::from_code(3)), None);
    }
}

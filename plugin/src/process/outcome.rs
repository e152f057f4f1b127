//! One contract's result and the summary of a run (`docs/abi.md`, execute response).

use super::Item;
use crate::records::Record;
use crate::tae::TaeError;
use serde::Serialize;
use std::collections::BTreeMap;

/// What happened to one contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    Sent,
    Skipped,
    Deleted,
    Updated,
    Signed,
    Pending,
    PartiallySigned,
    Rejected,
    /// The document was found cancelled in TAE (check).
    Cancelled,
    Downloaded,
    Failed,
    /// Not started: the run stopped (cancel, authentication lost, TAE unreachable).
    NotProcessed,
    /// Another run (in this process or another RM server) holds the contract right now.
    Held,
    /// Reconcile: the record and its TAE document agree.
    InAgreement,
    /// Reconcile: the record is behind its TAE document (status, signatures, recipients, or
    /// a send whose document id was never recorded).
    RecordBehind,
    /// Reconcile: the record points at a document TAE no longer has.
    DocumentMissing,
    /// Reconcile: the record says active, its document is cancelled in TAE.
    DocumentCancelled,
    /// Reconcile: a TAE draft no record knows, carrying this environment's send identity.
    OrphanDraft,
    /// Reconcile: a TAE document no record knows that is not an orphan draft of this
    /// environment (published, or not provably this environment's): reported, never cancelled.
    UnknownDocument,
    /// Reconcile: two or more active documents in TAE for one contract (reported only).
    DuplicateActive,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Sent => "sent",
            OutcomeKind::Skipped => "skipped",
            OutcomeKind::Deleted => "deleted",
            OutcomeKind::Updated => "updated",
            OutcomeKind::Signed => "signed",
            OutcomeKind::Pending => "pending",
            OutcomeKind::PartiallySigned => "partially_signed",
            OutcomeKind::Rejected => "rejected",
            OutcomeKind::Cancelled => "cancelled",
            OutcomeKind::Downloaded => "downloaded",
            OutcomeKind::Failed => "failed",
            OutcomeKind::NotProcessed => "not_processed",
            OutcomeKind::Held => "held",
            OutcomeKind::InAgreement => "in_agreement",
            OutcomeKind::RecordBehind => "record_behind",
            OutcomeKind::DocumentMissing => "document_missing",
            OutcomeKind::DocumentCancelled => "document_cancelled",
            OutcomeKind::OrphanDraft => "orphan_draft",
            OutcomeKind::UnknownDocument => "unknown_document",
            OutcomeKind::DuplicateActive => "duplicate_active",
        }
    }

    /// The key counting this outcome in `summary`: documents found cancelled are counted as
    /// `documents_cancelled`, since `summary.cancelled` is the run's own cancel flag.
    pub fn summary_key(self) -> &'static str {
        match self {
            OutcomeKind::Cancelled => "documents_cancelled",
            other => other.as_str(),
        }
    }

    /// Counted in every summary, even at zero.
    pub const ALWAYS_COUNTED: [OutcomeKind; 4] = [
        OutcomeKind::Sent,
        OutcomeKind::Skipped,
        OutcomeKind::Failed,
        OutcomeKind::NotProcessed,
    ];
}

/// Why TAE could not be reached, when that is why a contract failed (the run's circuit breaker
/// counts these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreachable {
    Refused,
    Timeout,
}

/// Serialises a string with every registered secret masked: the execute response is written
/// straight to bytes from these types (no JSON tree that `ffi` could redact afterwards), so each
/// string redacts itself.
pub(crate) fn redacted<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::redact::redact(text))
}

fn redacted_opt<S: serde::Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match text {
        Some(t) => redacted(t, s),
        None => s.serialize_none(),
    }
}

fn redacted_all<S: serde::Serializer>(texts: &[String], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(texts.len()))?;
    for t in texts {
        seq.serialize_element(&crate::redact::redact(t))?;
    }
    seq.end()
}

/// One contract's result.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    #[serde(serialize_with = "redacted")]
    pub contract_key: String,
    #[serde(serialize_with = "redacted_opt")]
    pub record_id: Option<String>,
    pub outcome: OutcomeKind,
    pub document_id: Option<i64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "redacted_opt"
    )]
    pub field: Option<String>,
    #[serde(serialize_with = "redacted")]
    pub message: String,
    /// Reconcile: what was found and what was (or would be) done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<Box<Finding>>,
    #[serde(skip)]
    pub unreachable: Option<Unreachable>,
    /// Reconcile: the contract's other findings (the response lists each as a result).
    #[serde(skip)]
    pub more: Vec<Outcome>,
}

/// One finding of reconcile, in pt-BR for the end user.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What was found.
    #[serde(serialize_with = "redacted")]
    pub found: String,
    /// What was done (`fix: true`) or would be done (dry run), or why nothing is done.
    #[serde(serialize_with = "redacted")]
    pub action: String,
    /// Whether this run changed something for it (a record written, a draft cancelled).
    pub mended: bool,
}

impl Outcome {
    pub fn new(item: &Item, outcome: OutcomeKind, message: impl Into<String>) -> Outcome {
        Outcome {
            contract_key: item.key.clone(),
            record_id: None,
            outcome,
            document_id: None,
            field: None,
            message: crate::redact::redact(&message.into()),
            finding: None,
            unreachable: None,
            more: Vec::new(),
        }
    }

    /// `"<contract>: <message>"` with the given kind.
    pub fn labelled(item: &Item, outcome: OutcomeKind, message: impl AsRef<str>) -> Outcome {
        Outcome::new(
            item,
            outcome,
            format!("{}: {}", item.label(), message.as_ref()),
        )
    }

    pub fn failed(item: &Item, message: impl AsRef<str>) -> Outcome {
        Outcome::labelled(item, OutcomeKind::Failed, message)
    }

    pub fn with_record(mut self, r: &Record) -> Outcome {
        self.record_id = Some(r.id.clone());
        self.document_id = r.document_id;
        self
    }

    /// A failed TAE call as a per-contract result.
    pub fn tae_failed(item: &Item, what: &str, e: &TaeError) -> Outcome {
        let mut o = Outcome::failed(item, format!("{what}: {}.", e.user_text()));
        o.unreachable = match e.kind {
            crate::tae::ErrorKind::ConnectionRefused => Some(Unreachable::Refused),
            crate::tae::ErrorKind::Timeout => Some(Unreachable::Timeout),
            _ => None,
        };
        o
    }
}

/// Why one contract failed (the per-contract error of the process layer): a Portuguese message
/// for the end user, naming the field of the contract or the process when one is at fault.
#[derive(Debug, Clone)]
pub struct ContractError {
    pub field: Option<&'static str>,
    pub message: String,
}

impl ContractError {
    pub fn new(message: impl Into<String>) -> Self {
        ContractError {
            field: None,
            message: message.into(),
        }
    }

    /// A field of the contract (or of the process) is missing or invalid.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        ContractError {
            field: Some(field),
            message: message.into(),
        }
    }

    pub fn outcome(&self, item: &Item) -> Outcome {
        match self.field {
            None => Outcome::failed(item, &self.message),
            Some(field) => {
                let mut o = Outcome::failed(
                    item,
                    format!("{} (campo {field}).", self.message.trim_end_matches('.')),
                );
                o.field = Some(field.to_string());
                o
            }
        }
    }
}

impl std::fmt::Display for ContractError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ContractError {}

impl AsRef<str> for ContractError {
    fn as_ref(&self) -> &str {
        &self.message
    }
}

/// `summary` of the execute response: counts derived from the outcomes.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub total: usize,
    #[serde(flatten)]
    pub counts: BTreeMap<&'static str, u64>,
    pub cancelled: bool,
    pub elapsed_ms: u64,
}

impl Summary {
    pub fn of(results: &[Outcome], cancelled: bool, elapsed_ms: u64) -> Summary {
        let mut counts: BTreeMap<&'static str, u64> = OutcomeKind::ALWAYS_COUNTED
            .iter()
            .map(|k| (k.summary_key(), 0))
            .collect();
        for r in results {
            *counts.entry(r.outcome.summary_key()).or_insert(0) += 1;
        }
        Summary {
            total: results.len(),
            counts,
            cancelled,
            elapsed_ms,
        }
    }
}

/// The execute response, serialised straight to the response bytes (every string redacted as
/// it is written).
#[derive(Debug, Serialize)]
pub struct Response {
    pub ok: bool,
    pub option: &'static str,
    pub summary: Summary,
    pub results: Vec<Outcome>,
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "redacted_all")]
    pub notices: Vec<String>,
}

impl Response {
    /// The response as JSON bytes, written from the typed outcomes (no JSON tree of the whole
    /// batch is ever built).
    /// The buffer is sized exactly first (a counting pass), so a batch's answer never holds
    /// the slack of a doubling buffer (up to twice its size) beside its outcomes.
    pub fn into_json(self) -> Vec<u8> {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut count = Count(0);
        let written = serde_json::to_writer(&mut count, &self).and_then(|()| {
            let mut out = Vec::with_capacity(count.0);
            serde_json::to_writer(&mut out, &self).map(|()| out)
        });
        written.unwrap_or_else(|e| {
            // Serialising these types cannot fail (string keys, no maps of other keys).
            log::error!("execute response could not be serialised: {e}");
            br#"{"ok":false,"error":{"code":"INTERNAL","status":99}}"#.to_vec()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> Item {
        Item {
            key: "k".into(),
            contract: None,
            records: Vec::new(),
            target_record: None,
        }
    }

    #[test]
    fn outcomes_serialise_as_the_abi_says() {
        let mut o = Outcome::labelled(&item(), OutcomeKind::PartiallySigned, "x");
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"contract_key": "k", "record_id": null, "outcome": "partially_signed",
                               "document_id": null, "message": "Contrato k: x"})
        );
        o.field = Some("financial_responsible.cpf".into());
        assert_eq!(
            serde_json::to_value(&o).unwrap()["field"],
            "financial_responsible.cpf"
        );
    }

    #[test]
    fn summary_counts_derive_from_outcomes() {
        let results = vec![
            Outcome::new(&item(), OutcomeKind::Sent, "a"),
            Outcome::new(&item(), OutcomeKind::Cancelled, "b"),
            Outcome::new(&item(), OutcomeKind::Held, "c"),
            Outcome::new(&item(), OutcomeKind::Held, "d"),
        ];
        let v = serde_json::to_value(Summary::of(&results, true, 7)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"total": 4, "sent": 1, "skipped": 0, "failed": 0, "not_processed": 0,
                               "documents_cancelled": 1, "held": 2, "cancelled": true, "elapsed_ms": 7})
        );
    }
}

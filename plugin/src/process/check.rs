//! "Conferência da assinatura": reads the status of every selected document (many ids in one
//! call first, one read per document when the service does not offer it), updates each record
//! and marks finalised contracts "Assinado" in the host.

use super::{put, tae_failed, Item, Outcome};
use crate::records::{RecipientState, Record, RecordStatus};
use crate::session::Auth;
use crate::tae::ErrorKind;
use serde_json::Value;
use std::collections::HashMap;

/// Documents read in one call before the batch (`None`: the route is not offered or failed;
/// each contract then reads its own).
pub type Prefetched = Option<HashMap<i64, Value>>;

pub fn target(item: &Item) -> Option<&Record> {
    item.working_record().filter(|r| r.document_id.is_some())
}

pub async fn prefetch(auth: &Auth<'_>, items: &[Item]) -> Prefetched {
    let ids: Vec<i64> = items
        .iter()
        .filter_map(|i| target(i).and_then(|r| r.document_id))
        .collect();
    if ids.len() < 2 {
        return None;
    }
    match auth
        .call(|t| {
            let ids = ids.clone();
            async move { auth.client.documents_many(&t, &ids).await }
        })
        .await
    {
        Ok(Some(docs)) => Some(
            docs.into_iter()
                .filter_map(|d| Some((d.get("id").and_then(Value::as_i64)?, d)))
                .collect(),
        ),
        Ok(None) => {
            log::info!("TAE does not offer the many-ids route; reading documents one by one");
            None
        }
        Err(e) => {
            log::warn!("many-ids read failed ({e}); reading documents one by one");
            None
        }
    }
}

/// Applies a D3 document to a record: status, recipients' states, rejection reason. Answers
/// whether the status changed.
pub fn apply_document(r: &mut Record, doc: &Value, by: &str) -> bool {
    let before = r.status;
    if let Some(st) = doc
        .get("status")
        .and_then(Value::as_i64)
        .and_then(RecordStatus::from_tae)
    {
        r.set_status(st);
    }
    let acted: Vec<(String, Option<String>)> = doc
        .get("assinantes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| {
                    Some((
                        s.get("email")?.as_str()?.to_lowercase(),
                        s.get("data").and_then(Value::as_str).map(str::to_string),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let pending: Vec<String> = doc
        .get("pendentes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| Some(s.get("email")?.as_str()?.to_lowercase()))
                .collect()
        })
        .unwrap_or_default();
    for rec in r.recipients.iter_mut() {
        let email = rec.email.to_lowercase();
        if let Some((_, at)) = acted.iter().find(|(e, _)| *e == email) {
            rec.state = RecipientState::Signed;
            rec.acted_at = at.clone();
        } else if pending.contains(&email) {
            rec.state = RecipientState::Pending;
        }
    }
    if r.status == RecordStatus::Rejeitado {
        r.rejection_reason = doc
            .get("motivoRejeicao")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(r.rejection_reason.take());
    }
    r.last_check_at = Some(crate::records::now());
    let changed = before != r.status;
    if changed {
        r.event(
            by,
            "status_changed",
            format!("{} → {}", before.label(), r.status.label()),
        );
    }
    changed
}

pub fn outcome_for(status: RecordStatus) -> &'static str {
    match status {
        RecordStatus::Finalizado => "signed",
        RecordStatus::AssinadoParcialmente => "partially_signed",
        RecordStatus::Rejeitado => "rejected",
        RecordStatus::Cancelado => "cancelled",
        _ => "pending",
    }
}

pub async fn run(auth: &Auth<'_>, prefetched: &Prefetched, item: &Item) -> Outcome {
    let Some(rec) = target(item) else {
        let msg = match item.records.first() {
            None if item.contract.is_none() && item.target_record.is_some() => {
                "registro de integração não encontrado.".to_string()
            }
            None if item.contract.is_none() => "contrato não encontrado no RM.".to_string(),
            None => "nenhum documento foi enviado para este contrato.".to_string(),
            Some(r) => format!(
                "não há documento a conferir (último registro: {}).",
                r.status.label()
            ),
        };
        return Outcome::new(item, "skipped", format!("{}: {msg}", item.label()));
    };
    let mut r = rec.clone();
    let id = r.document_id.unwrap_or_default();
    let by = auth.user.who();
    let doc = match prefetched.as_ref().and_then(|m| m.get(&id)) {
        Some(d) => d.clone(),
        None => {
            match auth
                .call(|t| async move { auth.client.document(&t, id).await })
                .await
            {
                Ok(d) => d,
                Err(e) if e.kind == ErrorKind::NotFound => {
                    r.last_error = Some(format!("documento {id} não encontrado no TAE"));
                    r.last_check_at = Some(crate::records::now());
                    r.event(
                        &by,
                        "error",
                        format!("check: documento {id} não encontrado no TAE"),
                    );
                    let _ = put(auth, &[&r]).await;
                    return Outcome::failed(item, format!("o documento nº {id} não foi encontrado no TOTVS Assinatura Eletrônica.")).with_record(&r);
                }
                Err(e) => {
                    return tae_failed(
                        item,
                        &format!("não foi possível consultar o documento nº {id}"),
                        &e,
                    )
                    .with_record(&r)
                }
            }
        }
    };
    let recipients_before = r.recipients.clone();
    let status_changed = apply_document(&mut r, &doc, &by);
    // The history records what changed, not every look: a school checking every few minutes
    // would otherwise grow each record by hundreds of events a day. `last_check_at` says when.
    if status_changed || r.recipients != recipients_before {
        r.event(
            &by,
            "checked",
            format!("situação no TAE: {}", r.status.label()),
        );
    }
    if let Err(m) = put(auth, &[&r]).await {
        return Outcome::failed(item, m).with_record(&r);
    }
    let signed: Vec<&str> = r
        .recipients
        .iter()
        .filter(|x| x.state == RecipientState::Signed)
        .map(|x| x.name.as_str())
        .collect();
    let pending: Vec<&str> = r
        .recipients
        .iter()
        .filter(|x| x.state == RecipientState::Pending)
        .map(|x| x.name.as_str())
        .collect();
    let label = item.label();
    let message = match r.status {
        RecordStatus::Finalizado => {
            if let Err(e) = auth.host.set_contract_signed(&r.record_key, &by) {
                return Outcome::failed(item, format!("documento nº {id} finalizado, mas não foi possível marcar o contrato como Assinado no RM ({}).", e.message)).with_record(&r);
            }
            format!("{label}: documento nº {id} finalizado; contrato marcado como Assinado.")
        }
        RecordStatus::AssinadoParcialmente => format!(
            "{label}: documento nº {id} assinado parcialmente (assinaram: {}; pendentes: {}).",
            signed.join(", "),
            pending.join(", ")
        ),
        RecordStatus::Rejeitado => format!(
            "{label}: documento nº {id} rejeitado{}.",
            r.rejection_reason.as_deref().map(|m| format!(" (motivo: {m})")).unwrap_or_default()
        ),
        RecordStatus::Cancelado => format!("{label}: documento nº {id} cancelado no TOTVS Assinatura Eletrônica."),
        RecordStatus::Rascunho | RecordStatus::Enviando => format!("{label}: documento nº {id} ainda em rascunho (envio não concluído; execute o envio novamente)."),
        _ => format!("{label}: documento nº {id} pendente de assinatura ({}).", pending.join(", ")),
    };
    Outcome::new(item, outcome_for(r.status), message).with_record(&r)
}

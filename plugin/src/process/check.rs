//! "Conferência da assinatura": reads the status of every selected document (many ids in one
//! call first, one read per document when the service does not offer it), updates each record
//! and marks finalised contracts "Assinado" in the host.

use super::{Item, Outcome, OutcomeKind, Run};
use crate::records::{RecipientState, Record, RecordStatus};
use crate::tae::{Document, ErrorKind};
use std::collections::HashMap;

/// Documents read in one call before the batch (`None`: the route is not offered or failed;
/// each contract then reads its own).
pub type Prefetched = Option<HashMap<i64, Document>>;

pub fn target(item: &Item) -> Option<&Record> {
    item.working_record().filter(|r| r.document_id.is_some())
}

pub async fn prefetch(run: &Run<'_>, items: &[Item]) -> Prefetched {
    let ids: Vec<i64> = items
        .iter()
        .filter_map(|i| target(i).and_then(|r| r.document_id))
        .collect();
    if ids.len() < 2 {
        return None;
    }
    match run
        .tae
        .call(|t| {
            let ids = ids.clone();
            async move { run.tae.client.documents_many(&t, &ids).await }
        })
        .await
    {
        Ok(Some(docs)) => Some(docs.into_iter().map(|d| (d.id, d)).collect()),
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

/// Applies a read document to a record: status, recipients' states, rejection reason.
/// Answers whether the status changed.
pub fn apply_document(r: &mut Record, doc: &Document, by: &str) -> bool {
    let before = r.status;
    if let Some(st) = RecordStatus::from_tae(doc.status) {
        r.set_status(st);
    }
    for rec in r.recipients.iter_mut() {
        if let Some(acted) = doc
            .assinantes
            .iter()
            .find(|s| s.email.eq_ignore_ascii_case(&rec.email))
        {
            rec.state = RecipientState::Signed;
            rec.acted_at = acted.acted_at.clone();
        } else if doc
            .pendentes
            .iter()
            .any(|s| s.email.eq_ignore_ascii_case(&rec.email))
        {
            rec.state = RecipientState::Pending;
        }
    }
    if r.status == RecordStatus::Rejeitado {
        r.rejection_reason = doc.motivo_rejeicao.clone().or(r.rejection_reason.take());
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

pub fn outcome_for(status: RecordStatus) -> OutcomeKind {
    match status {
        RecordStatus::Finalizado => OutcomeKind::Signed,
        RecordStatus::AssinadoParcialmente => OutcomeKind::PartiallySigned,
        RecordStatus::Rejeitado => OutcomeKind::Rejected,
        RecordStatus::Cancelado => OutcomeKind::Cancelled,
        _ => OutcomeKind::Pending,
    }
}

pub async fn run(run: &Run<'_>, prefetched: &Prefetched, item: &Item) -> Outcome {
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
        return Outcome::new(
            item,
            OutcomeKind::Skipped,
            format!("{}: {msg}", item.label()),
        );
    };
    let mut r = rec.clone();
    let id = r.document_id.unwrap_or_default();
    let by = run.user.who();
    let doc = match prefetched.as_ref().and_then(|m| m.get(&id)) {
        Some(d) => d.clone(),
        None => {
            match run
                .tae
                .call(|t| async move { run.tae.client.document(&t, id).await })
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
                    let _ = run.put(&[&r]).await;
                    return Outcome::failed(item, format!("o documento nº {id} não foi encontrado no TOTVS Assinatura Eletrônica.")).with_record(&r);
                }
                Err(e) => {
                    return Outcome::tae_failed(
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
    if let Err(m) = run.put(&[&r]).await {
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
            if let Err(e) = run.host.set_contract_signed(&r.record_key, &by) {
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

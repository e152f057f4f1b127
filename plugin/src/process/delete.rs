//! "Excluir documento": cancels the contract's active document in TAE (there is no delete
//! route); a finalised one is refused. The record keeps its history, with who and when.

use super::check::apply_document;
use super::{locate_document, put, tae_failed, Item, Outcome};
use crate::records::RecordStatus;
use crate::session::Auth;
use crate::tae::{api, ErrorKind};
use serde_json::Value;

pub async fn run(auth: &Auth<'_>, item: &Item) -> Outcome {
    let label = item.label();
    let Some(rec) = item.working_record() else {
        return Outcome::new(
            item,
            "skipped",
            format!("{label}: não há documento ativo para excluir."),
        );
    };
    let mut r = rec.clone();
    let by = auth.user.who();
    match r.status {
        RecordStatus::Finalizado => {
            return Outcome::failed(
                item,
                format!(
                    "o documento nº {} está finalizado (assinado) e não pode ser excluído.",
                    r.document_id.unwrap_or_default()
                ),
            )
            .with_record(&r)
        }
        RecordStatus::Cancelado | RecordStatus::Falhou => {
            return Outcome::new(
                item,
                "skipped",
                format!(
                    "{label}: o documento já está {}.",
                    r.status.label().to_lowercase()
                ),
            )
            .with_record(&r)
        }
        _ => {}
    }
    // Where is it in TAE, and in which state?
    let located = match locate_document(auth, &r).await {
        Ok(l) => l,
        Err(e) => {
            return tae_failed(item, "não foi possível consultar o documento", &e).with_record(&r)
        }
    };
    let Some((id, status, doc)) = located else {
        // Nothing reached TAE: the interrupted send is closed in the record only.
        r.set_status(RecordStatus::Cancelado);
        r.deleted_by = Some(by.clone());
        r.deleted_at = Some(crate::records::now());
        r.event(
            &by,
            "cancelled",
            "nenhum documento encontrado no TAE; registro encerrado",
        );
        if let Err(m) = put(auth, &[&r]).await {
            return Outcome::failed(item, m).with_record(&r);
        }
        return Outcome::new(item, "deleted", format!("{label}: o envio não havia chegado ao TOTVS Assinatura Eletrônica; registro encerrado.")).with_record(&r);
    };
    r.document_id = Some(id);
    if !doc.is_null() {
        apply_document(&mut r, &doc, &by);
    }
    if status == api::STATUS_FINALISED {
        r.set_status(RecordStatus::Finalizado);
        r.event(&by, "error", "exclusão recusada: documento finalizado");
        let _ = put(auth, &[&r]).await;
        return Outcome::failed(
            item,
            format!("o documento nº {id} está finalizado (assinado) e não pode ser excluído."),
        )
        .with_record(&r);
    }
    if status != api::STATUS_CANCELLED {
        let res = auth
            .call(|t| async move { auth.client.cancel(&t, id).await })
            .await;
        if let Err(e) = res {
            // Ambiguous or refused: read the state before deciding.
            let now = auth
                .call(|t| async move { auth.client.document(&t, id).await })
                .await;
            let st = now
                .as_ref()
                .ok()
                .and_then(|d| d.get("status"))
                .and_then(Value::as_i64);
            match st {
                Some(api::STATUS_CANCELLED) => {}
                Some(api::STATUS_FINALISED) => {
                    r.set_status(RecordStatus::Finalizado);
                    r.event(&by, "error", "exclusão recusada: documento finalizado");
                    let _ = put(auth, &[&r]).await;
                    return Outcome::failed(item, format!("o documento nº {id} está finalizado (assinado) e não pode ser excluído.")).with_record(&r);
                }
                _ if e.kind == ErrorKind::Transient => {
                    // Not cancelled yet: one more attempt now that the state is known.
                    if let Err(e2) = auth
                        .call(|t| async move { auth.client.cancel(&t, id).await })
                        .await
                    {
                        r.last_error = Some(e2.user_text());
                        r.event(&by, "error", format!("cancel: {e2}"));
                        let _ = put(auth, &[&r]).await;
                        return tae_failed(
                            item,
                            &format!("não foi possível excluir o documento nº {id}"),
                            &e2,
                        )
                        .with_record(&r);
                    }
                }
                _ => {
                    r.last_error = Some(e.user_text());
                    r.event(&by, "error", format!("cancel: {e}"));
                    let _ = put(auth, &[&r]).await;
                    return tae_failed(
                        item,
                        &format!("não foi possível excluir o documento nº {id}"),
                        &e,
                    )
                    .with_record(&r);
                }
            }
        }
    }
    r.set_status(RecordStatus::Cancelado);
    r.deleted_by = Some(by.clone());
    r.deleted_at = Some(crate::records::now());
    r.last_error = None;
    r.event(
        &by,
        "cancelled",
        format!("documento {id} excluído (cancelado) no TAE"),
    );
    if let Err(m) = put(auth, &[&r]).await {
        return Outcome::failed(
            item,
            format!("documento nº {id} excluído no TOTVS Assinatura Eletrônica, mas {m}"),
        )
        .with_record(&r);
    }
    Outcome::new(
        item,
        "deleted",
        format!("{label}: documento nº {id} excluído do TOTVS Assinatura Eletrônica."),
    )
    .with_record(&r)
}

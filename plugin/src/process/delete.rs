//! "Excluir documento": cancels the contract's active document in TAE (there is no delete
//! route); a finalised one is refused. The record keeps its history, with who and when.

use super::check::apply_document;
use super::{locate_document, Item, Located, Outcome, OutcomeKind, Run};
use crate::records::RecordStatus;
use crate::tae::{DocStatus, ErrorKind};

pub async fn run(run: &Run<'_>, item: &Item) -> Outcome {
    let label = item.label();
    let Some(rec) = item.working_record() else {
        return Outcome::new(
            item,
            OutcomeKind::Skipped,
            format!("{label}: não há documento ativo para excluir."),
        );
    };
    let mut r = rec.clone();
    let by = run.user.who();
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
                OutcomeKind::Skipped,
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
    let located = match locate_document(run, &r).await {
        Ok(l) => l,
        Err(e) => {
            return Outcome::tae_failed(item, "não foi possível consultar o documento", &e)
                .with_record(&r)
        }
    };
    let Some(Located {
        id,
        status,
        document,
    }) = located
    else {
        // Nothing reached TAE: the interrupted send is closed in the record only.
        r.set_status(RecordStatus::Cancelado);
        r.deleted_by = Some(by.clone());
        r.deleted_at = Some(crate::records::now());
        r.event(
            &by,
            "cancelled",
            "nenhum documento encontrado no TAE; registro encerrado",
        );
        if let Err(m) = run.put(&[&r]).await {
            return Outcome::failed(item, m).with_record(&r);
        }
        return Outcome::new(item, OutcomeKind::Deleted, format!("{label}: o envio não havia chegado ao TOTVS Assinatura Eletrônica; registro encerrado.")).with_record(&r);
    };
    r.document_id = Some(id);
    if let Some(doc) = &document {
        apply_document(&mut r, doc, &by);
    }
    if status == DocStatus::Finalised {
        r.set_status(RecordStatus::Finalizado);
        r.event(&by, "error", "exclusão recusada: documento finalizado");
        let _ = run.put(&[&r]).await;
        return Outcome::failed(
            item,
            format!("o documento nº {id} está finalizado (assinado) e não pode ser excluído."),
        )
        .with_record(&r);
    }
    if status != DocStatus::Cancelled {
        if let Err(e) = run.still_holds(item) {
            return e.outcome(item).with_record(&r);
        }
        let res = run
            .tae
            .call(|t| async move { run.tae.client.cancel(&t, id).await })
            .await;
        if let Err(e) = res {
            // Ambiguous or refused: read the state before deciding.
            let now = run
                .tae
                .call(|t| async move { run.tae.client.document(&t, id).await })
                .await;
            // TAE may not end a cancel in status 7: the document may vanish from reads, or go
            // back to draft (`docs/tae-api.md`). Either, seen for a document that had been
            // published, means the cancel took effect.
            let was_published = !rec.status.is_unfinished_send();
            let vanished = matches!(&now, Err(e2) if e2.kind == ErrorKind::NotFound);
            let st = now.as_ref().ok().map(|d| d.status);
            match st {
                Some(DocStatus::Cancelled) => {}
                None if vanished => {}
                Some(DocStatus::Draft) if was_published => {}
                Some(DocStatus::Finalised) => {
                    r.set_status(RecordStatus::Finalizado);
                    r.event(&by, "error", "exclusão recusada: documento finalizado");
                    let _ = run.put(&[&r]).await;
                    return Outcome::failed(item, format!("o documento nº {id} está finalizado (assinado) e não pode ser excluído.")).with_record(&r);
                }
                _ if e.kind.is_transient() => {
                    // Not cancelled yet: one more attempt now that the state is known (never
                    // sooner than TAE's Retry-After).
                    tokio::time::sleep(e.wait_at_least(std::time::Duration::ZERO)).await;
                    if let Err(e) = run.still_holds(item) {
                        return e.outcome(item).with_record(&r);
                    }
                    if let Err(e2) = run
                        .tae
                        .call(|t| async move { run.tae.client.cancel(&t, id).await })
                        .await
                    {
                        r.last_error = Some(e2.user_text());
                        r.event(&by, "error", format!("cancel: {e2}"));
                        let _ = run.put(&[&r]).await;
                        return Outcome::tae_failed(
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
                    let _ = run.put(&[&r]).await;
                    return Outcome::tae_failed(
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
    if let Err(m) = run.put(&[&r]).await {
        return Outcome::failed(
            item,
            format!("documento nº {id} excluído no TOTVS Assinatura Eletrônica, mas {m}"),
        )
        .with_record(&r);
    }
    Outcome::new(
        item,
        OutcomeKind::Deleted,
        format!("{label}: documento nº {id} excluído do TOTVS Assinatura Eletrônica."),
    )
    .with_record(&r)
}

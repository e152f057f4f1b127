//! "Conciliar com o TOTVS Assinatura Eletrônica": compares the integration records of the
//! selection with TAE, and the documents the session's TAE user created (in a period) with the
//! records, and reports each finding. A dry run by default; `fix: true` applies only the safe
//! mends (`docs/abi.md`, "reconcile"):
//!
//! - a record behind its document (status, signatures, recipients, or a send whose id was
//!   never recorded) is updated as check would (`check::apply_document`), "Assinado" in RM when
//!   finalised;
//! - a record that says active while its document is gone or cancelled in TAE is closed
//!   (`cancelado`);
//! - a TAE draft no record points at, carrying the send identity of a record of this database,
//!   is cancelled;
//! - a published document no record points at is never cancelled; it is adopted only when it
//!   carries the send identity of a record of this database that has no document, and its
//!   contract has no active document;
//! - two active documents for one contract are reported only.
//!
//! **This environment's documents.** A TAE document is this environment's only when its kept
//! name carries `[<send_id>]` with the `send_id` of a record of this database (any status, the
//! failed ones included: a failed send keeps its identity) and its author is the session's TAE
//! user. The identity format alone proves nothing: another RM environment on the same TAE
//! account writes the same format with its own ids, and its documents are never touched.

use super::check::apply_document;
use super::{Item, Outcome, OutcomeKind, Run};
use crate::error::PluginError;
use crate::records::{Recipient, RecipientState, Record, RecordStatus, Role};
use crate::tae::{Action, DocStatus, Document, ErrorKind, SearchRecord};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;
use std::collections::{HashMap, HashSet};

/// `params` of reconcile.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileParams {
    /// Apply the safe mends (default: a dry run that changes nothing anywhere).
    #[serde(default)]
    pub fix: bool,
    /// The period of the TAE documents compared with the records (by TAE's creation date).
    #[serde(default)]
    pub period: Option<Period>,
}

/// `{"from", "to"}`: dates (`AAAA-MM-DD`, whole days in UTC) or RFC 3339 timestamps, inclusive.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    pub from: String,
    pub to: String,
}

/// The period as instants (inclusive).
pub type Window = Option<(DateTime<Utc>, DateTime<Utc>)>;

fn bad_param(field: &str, m: &str) -> PluginError {
    PluginError::new(
        crate::error::Status::InvalidRequest,
        format!("Parâmetro \"{field}\" do processo inválido: {m}"),
        format!("params.{field}: {m}"),
    )
}

fn instant(field: &str, s: &str, end_of_day: bool) -> Result<DateTime<Utc>, PluginError> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        bad_param(
            field,
            &format!("\"{s}\" não é uma data; use AAAA-MM-DD (ex.: 2026-11-30)"),
        )
    })?;
    let t = if end_of_day {
        d.and_hms_milli_opt(23, 59, 59, 999)
    } else {
        d.and_hms_opt(0, 0, 0)
    };
    Ok(t.unwrap_or_default().and_utc())
}

impl ReconcileParams {
    /// The period, checked (dates, `from` ≤ `to`).
    pub fn window(&self) -> Result<Window, PluginError> {
        let Some(p) = &self.period else {
            return Ok(None);
        };
        let from = instant("period.from", &p.from, false)?;
        let to = instant("period.to", &p.to, true)?;
        if from > to {
            return Err(bad_param(
                "period",
                &format!("o início ({}) é posterior ao fim ({})", p.from, p.to),
            ));
        }
        Ok(Some((from, to)))
    }
}

/// The plan of one reconcile run.
pub struct ReconcilePlan {
    pub fix: bool,
    pub window: Window,
    /// Documents no record of the selection knows are compared with the whole database and
    /// reported (started from the menu); from a contract or the attachment only the selected
    /// contracts' documents are looked at.
    pub scan_unknown: bool,
}

/// The send identity a TAE name carries: `… [<16 lowercase letters or digits>]`.
pub fn send_tag(name: &str) -> Option<&str> {
    let (_, tag) = name.trim_end().rsplit_once('[')?;
    let id = tag.strip_suffix(']')?;
    (id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
    .then_some(id)
}

fn tags(d: &SearchRecord) -> Vec<String> {
    d.kept_names()
        .filter_map(send_tag)
        .map(str::to_string)
        .collect()
}

fn doc_name(d: &SearchRecord) -> String {
    d.kept_names().next().unwrap_or_default().to_string()
}

/// What the batch prepared before the contracts: the documents read in one call and the TAE
/// user's own documents of the period, each attributed to a contract of the selection (by the
/// send identity or the id a record of it carries) or left for the final pass.
pub struct Prepared {
    docs: HashMap<i64, Document>,
    /// The listing failed: every contract reports it (the records are still compared).
    listing_error: Option<String>,
    by_contract: HashMap<String, Vec<SearchRecord>>,
    /// Attributed documents created outside the period: they still complete a record's
    /// interrupted send, but are not reported as orphans or unknown.
    out_of_period: HashSet<i64>,
    pub unattributed: Vec<SearchRecord>,
    me: Option<String>,
    /// None of the selection's documents exists in this TAE (two or more looked for): most
    /// likely the wrong TAE address or account, so no record is closed as missing.
    unfamiliar: bool,
    /// Documents already read as not found.
    missing: HashSet<i64>,
}

fn in_window(window: &Window, d: &SearchRecord) -> bool {
    let Some((from, to)) = window else {
        return true;
    };
    match d.created().and_then(crate::tae::client::parse_tae_time) {
        Some(c) => c >= *from && c <= *to,
        // No creation date: kept (the comparison decides on identity, never on dates).
        None => true,
    }
}

fn own_author(d: &SearchRecord, me: &str) -> bool {
    d.author_email()
        .is_some_and(|a| crate::validate::same_email(a, me))
}

pub async fn prepare(run: &Run<'_>, plan: &ReconcilePlan, items: &[Item]) -> Prepared {
    // The documents of the records compared (closed ones are history).
    let ids: Vec<i64> = items
        .iter()
        .flat_map(|i| {
            i.records
                .iter()
                .filter(|r| !matches!(r.status, RecordStatus::Cancelado | RecordStatus::Falhou))
                .filter_map(|r| r.document_id)
        })
        .collect();
    let mut docs = HashMap::new();
    if ids.len() >= 2 {
        match run
            .tae
            .call(|t| {
                let ids = ids.clone();
                async move { run.tae.client.documents_many(&t, &ids).await }
            })
            .await
        {
            Ok(Some(found)) => docs.extend(found.into_iter().map(|d| (d.id, d))),
            Ok(None) => log::info!("reconcile: reading documents one by one"),
            Err(e) => log::warn!("reconcile: many-ids read failed ({e}); one by one"),
        }
    }
    let me = run.tae.tae_user();
    let mut prepared = Prepared {
        docs,
        listing_error: None,
        by_contract: HashMap::new(),
        out_of_period: HashSet::new(),
        unattributed: Vec::new(),
        me: me.clone(),
        unfamiliar: false,
        missing: HashSet::new(),
    };
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() >= 2 && prepared.docs.is_empty() {
        // The many-ids read found none (or is not offered): one by one until one is found.
        let mut found_any = false;
        for id in &distinct {
            let id = *id;
            match run
                .tae
                .call(|t| async move { run.tae.client.document(&t, id).await })
                .await
            {
                Ok(d) => {
                    found_any = true;
                    prepared.docs.insert(d.id, d);
                    break;
                }
                Err(e) if e.kind == ErrorKind::NotFound => {
                    prepared.missing.insert(id);
                }
                // Unknown: never conclude from it.
                Err(_) => {
                    found_any = true;
                    break;
                }
            }
        }
        prepared.unfamiliar = !found_any;
        if prepared.unfamiliar {
            log::warn!(
                "reconcile: none of the {} documents of the selection exists in this TAE; records are not closed",
                distinct.len()
            );
        }
    }
    let Some(me) = me else {
        prepared.listing_error = Some("o usuário do TAE desta sessão é desconhecido".into());
        return prepared;
    };
    let own = match run.own_documents(&me).await {
        Ok(own) => own,
        Err(e) => {
            log::warn!("reconcile: listing the TAE user's documents failed: {e}");
            prepared.listing_error = Some(e.user_text());
            return prepared;
        }
    };
    let mut by_tag: HashMap<&str, &str> = HashMap::new();
    let mut by_id: HashMap<i64, &str> = HashMap::new();
    for it in items {
        for r in &it.records {
            if let Some(s) = r.send_id.as_deref() {
                by_tag.insert(s, &it.key);
            }
            if let Some(id) = r.document_id {
                by_id.insert(id, &it.key);
            }
        }
    }
    for d in own.iter() {
        let owner = by_id.get(&d.id).copied().or_else(|| {
            if !own_author(d, &me) {
                return None;
            }
            tags(d).iter().find_map(|t| by_tag.get(t.as_str()).copied())
        });
        match owner {
            Some(key) => {
                if !in_window(&plan.window, d) {
                    prepared.out_of_period.insert(d.id);
                }
                prepared
                    .by_contract
                    .entry(key.to_string())
                    .or_default()
                    .push(d.clone())
            }
            None if plan.scan_unknown && in_window(&plan.window, d) => {
                prepared.unattributed.push(d.clone())
            }
            None => {}
        }
    }
    log::info!(
        "reconcile: {} own TAE document(s), {} attributed to the selection, {} to compare with the database",
        own.len(),
        prepared.by_contract.values().map(Vec::len).sum::<usize>(),
        prepared.unattributed.len()
    );
    prepared
}

/// Collects a contract's findings.
struct Findings<'a> {
    item: &'a Item,
    fix: bool,
    /// See [`Prepared::unfamiliar`].
    unfamiliar: bool,
    list: Vec<Outcome>,
}

impl Findings<'_> {
    fn push(
        &mut self,
        kind: OutcomeKind,
        rec: Option<&Record>,
        doc: Option<i64>,
        found: String,
        action: String,
        mended: bool,
    ) {
        let mut o = Outcome::new(
            self.item,
            kind,
            format!("{}: {found} {action}", self.item.label()),
        );
        if let Some(r) = rec {
            o = o.with_record(r);
        }
        if doc.is_some() {
            o.document_id = doc;
        }
        o.finding = Some(Box::new(super::outcome::Finding {
            found,
            action,
            mended,
        }));
        self.list.push(o);
    }

    /// "Corrigido: …" when fixing, "Seria corrigido: …" in a dry run.
    fn would(&self, what: &str) -> String {
        if self.fix {
            format!("Corrigido: {what}.")
        } else {
            format!("Seria corrigido (simulação; nada foi alterado): {what}.")
        }
    }
}

fn role_of(a: Option<Action>) -> Role {
    match a {
        Some(Action::Validate) => Role::Validator,
        Some(Action::Witness) => Role::Witness,
        _ => Role::Signer,
    }
}

/// The record as TAE says it is: status, recipients' states (check's code), and the recipients
/// TAE has that the record lacks (added) or lacks that the record has (dropped).
fn mended(r: &Record, doc: &Document, by: &str) -> (Record, Vec<String>) {
    let mut m = r.clone();
    apply_document(&mut m, doc, by);
    let mut diffs = Vec::new();
    let in_tae: Vec<&str> = doc.emails().collect();
    let before = m.recipients.len();
    m.recipients
        .retain(|x| in_tae.iter().any(|e| e.eq_ignore_ascii_case(&x.email)));
    if m.recipients.len() != before {
        let gone: Vec<&str> = r
            .recipients
            .iter()
            .filter(|x| !in_tae.iter().any(|e| e.eq_ignore_ascii_case(&x.email)))
            .map(|x| x.email.as_str())
            .collect();
        diffs.push(format!("destinatários fora do TAE: {}", gone.join(", ")));
    }
    let mut added = Vec::new();
    for (acted, d) in doc
        .assinantes
        .iter()
        .map(|d| (true, d))
        .chain(doc.pendentes.iter().map(|d| (false, d)))
    {
        if m.recipients
            .iter()
            .any(|x| x.email.eq_ignore_ascii_case(&d.email))
        {
            continue;
        }
        added.push(d.email.clone());
        m.recipients.push(Recipient {
            email: d.email.clone(),
            name: d.name.clone().unwrap_or_default(),
            cpf: None,
            role: role_of(d.action),
            state: if acted {
                RecipientState::Signed
            } else {
                RecipientState::Pending
            },
            acted_at: if acted { d.acted_at.clone() } else { None },
        });
    }
    if !added.is_empty() {
        diffs.push(format!("destinatários só no TAE: {}", added.join(", ")));
    }
    if m.status != r.status {
        diffs.insert(
            0,
            format!(
                "situação no RM {}, no TAE {}",
                r.status.label(),
                m.status.label()
            ),
        );
    }
    let newly_signed: Vec<&str> = m
        .recipients
        .iter()
        .filter(|x| {
            x.state == RecipientState::Signed
                && r.recipients
                    .iter()
                    .any(|o| o.email.eq_ignore_ascii_case(&x.email) && o.state != x.state)
        })
        .map(|x| x.name.as_str())
        .collect();
    if !newly_signed.is_empty() {
        diffs.push(format!("assinaram no TAE: {}", newly_signed.join(", ")));
    }
    (m, diffs)
}

/// A document a record is about to adopt: [`read`], with a document that vanished since the
/// listing (cancelled or removed meanwhile) a `failed` finding that changed nothing.
async fn read_to_adopt(
    run: &Run<'_>,
    prepared: &Prepared,
    item: &Item,
    id: i64,
) -> Result<Document, Outcome> {
    read(run, prepared, item, id).await?.ok_or_else(|| {
        Outcome::failed(
            item,
            format!("o documento nº {id} sumiu do TAE durante a conciliação; nada foi alterado."),
        )
    })
}

/// A document (prefetched, or read now); `None` when TAE does not have it. A failure is the
/// contract's `failed` finding (keeping why TAE could not be reached, for the breaker).
async fn read(
    run: &Run<'_>,
    prepared: &Prepared,
    item: &Item,
    id: i64,
) -> Result<Option<Document>, Outcome> {
    if let Some(d) = prepared.docs.get(&id) {
        return Ok(Some(d.clone()));
    }
    if prepared.missing.contains(&id) {
        return Ok(None);
    }
    match run
        .tae
        .call(|t| async move { run.tae.client.document(&t, id).await })
        .await
    {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Outcome::tae_failed(
            item,
            &format!("não foi possível consultar o documento nº {id}"),
            &e,
        )),
    }
}

/// A TAE status in the words of the records.
fn status_label(s: DocStatus) -> String {
    match RecordStatus::from_tae(s) {
        Some(r) => r.label().to_string(),
        None => format!("situação {s:?}"),
    }
}

fn active(s: DocStatus) -> bool {
    matches!(s, DocStatus::Pending | DocStatus::PartiallySigned)
}

/// Writes a mended record (fix only); answers the error message when it could not.
async fn save(run: &Run<'_>, r: &Record) -> Result<(), String> {
    run.put(&[r]).await.map_err(|e| e.message)
}

pub async fn run(run: &Run<'_>, plan: &ReconcilePlan, prepared: &Prepared, item: &Item) -> Outcome {
    if item.contract.is_none() && item.records.is_empty() {
        let msg = if item.target_record.is_some() {
            "registro de integração não encontrado."
        } else {
            "contrato não encontrado no RM."
        };
        return Outcome::labelled(item, OutcomeKind::Skipped, msg);
    }
    let fix = plan.fix;
    let by = run.user.who();
    let mut f = Findings {
        item,
        fix,
        unfamiliar: prepared.unfamiliar,
        list: Vec::new(),
    };
    let attributed: &[SearchRecord] = prepared
        .by_contract
        .get(&item.key)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    // Documents some record points at (or adopts below), and the contract's active ones.
    let mut known: HashSet<i64> = item.records.iter().filter_map(|r| r.document_id).collect();
    let mut active_docs: Vec<i64> = Vec::new();
    let mut records: Vec<Record> = item.records.clone();

    // 1. Each record against TAE.
    for r in records.iter_mut() {
        if matches!(r.status, RecordStatus::Cancelado | RecordStatus::Falhou) {
            continue;
        }
        let Some(id) = r.document_id else {
            if !r.status.is_unfinished_send() {
                continue;
            }
            // A send interrupted before its document id was recorded.
            let mine: Vec<&SearchRecord> = attributed
                .iter()
                .filter(|d| !known.contains(&d.id) && d.status != DocStatus::Cancelled)
                .filter(|d| r.send_id.is_some() && d.kept_names().any(|n| r.carries_send_id(n)))
                .collect();
            let pick = mine
                .iter()
                .find(|d| d.status != DocStatus::Draft)
                .or_else(|| mine.first())
                .copied();
            let Some(d) = pick else {
                let found = format!(
                    "registro em \"{}\" sem documento no TOTVS Assinatura Eletrônica (envio interrompido).",
                    r.status.label()
                );
                let action = if prepared.listing_error.is_some() {
                    "Nada foi feito (a lista de documentos do TAE não pôde ser lida).".to_string()
                } else {
                    "Nada a corrigir aqui: o próximo envio deste contrato retoma o envio."
                        .to_string()
                };
                f.push(
                    OutcomeKind::DocumentMissing,
                    Some(r),
                    None,
                    found,
                    action,
                    false,
                );
                continue;
            };
            known.insert(d.id);
            let found = format!(
                "envio interrompido: o documento nº {} ({}) do TAE traz a identidade deste registro, que não guardou o número.",
                d.id,
                status_label(d.status)
            );
            if !fix {
                let action = f.would(&format!(
                    "o registro passa a apontar para o documento nº {}",
                    d.id
                ));
                if active(d.status) {
                    active_docs.push(d.id);
                }
                f.push(
                    OutcomeKind::RecordBehind,
                    Some(r),
                    Some(d.id),
                    found,
                    action,
                    false,
                );
                continue;
            }
            let doc = match read_to_adopt(run, prepared, item, d.id).await {
                Ok(doc) => doc,
                Err(o) => {
                    f.list.push(o.with_record(r));
                    continue;
                }
            };
            r.document_id = Some(d.id);
            apply_document(r, &doc, &by);
            if active(doc.status) {
                active_docs.push(d.id);
            }
            r.event(
                &by,
                "reconciled",
                format!(
                    "conciliação: documento {} do TAE adotado (envio interrompido)",
                    d.id
                ),
            );
            let action = match save(run, r).await {
                Ok(()) => signed_step(run, r, &by).await,
                Err(m) => Err(m),
            };
            push_fixed(
                &mut f,
                OutcomeKind::RecordBehind,
                r,
                found,
                action,
                &format!(
                    "o registro agora aponta para o documento nº {} ({})",
                    d.id,
                    r.status.label()
                ),
            );
            continue;
        };
        let doc = match read(run, prepared, item, id).await {
            Ok(d) => d,
            Err(o) => {
                f.list.push(o.with_record(r));
                continue;
            }
        };
        let Some(doc) = doc else {
            if !r.status.is_active() {
                let found = format!(
                    "o documento nº {id} não existe mais no TOTVS Assinatura Eletrônica (registro {}).",
                    r.status.label()
                );
                f.push(
                    OutcomeKind::DocumentMissing,
                    Some(r),
                    Some(id),
                    found,
                    "Nada foi feito: o registro encerrado é mantido como histórico.".into(),
                    false,
                );
                continue;
            }
            let found = format!(
                "o registro diz \"{}\", mas o documento nº {id} não existe mais no TOTVS Assinatura Eletrônica.",
                r.status.label()
            );
            close(run, &mut f, r, id, found, "não existe mais no TAE", &by).await;
            continue;
        };
        // A published document back in draft was cancelled where TAE cancels that way
        // (`docs/tae-api.md`; delete reads it so too): never "mended" into a draft that the
        // next send would publish again.
        let back_to_draft = doc.status == DocStatus::Draft && !r.status.is_unfinished_send();
        if (doc.status == DocStatus::Cancelled || back_to_draft) && r.status.is_active() {
            let how = if back_to_draft {
                "voltou a rascunho (cancelado)"
            } else {
                "está cancelado"
            };
            let found = format!(
                "o registro diz \"{}\", mas o documento nº {id} {how} no TOTVS Assinatura Eletrônica.",
                r.status.label()
            );
            close(run, &mut f, r, id, found, "cancelado no TAE", &by).await;
            continue;
        }
        if active(doc.status) {
            active_docs.push(id);
        }
        let (m, diffs) = mended(r, &doc, &by);
        if diffs.is_empty() {
            f.push(
                OutcomeKind::InAgreement,
                Some(r),
                Some(id),
                format!(
                    "registro e documento nº {id} de acordo ({}).",
                    r.status.label()
                ),
                "Nada a fazer.".into(),
                false,
            );
            continue;
        }
        let found = format!(
            "o registro está atrás do documento nº {id}: {}.",
            diffs.join("; ")
        );
        if !fix {
            let mut what = format!("o registro passa a {}", m.status.label());
            if m.status == RecordStatus::Finalizado {
                what.push_str(" e o contrato é marcado como Assinado no RM");
            }
            let action = f.would(&what);
            f.push(
                OutcomeKind::RecordBehind,
                Some(r),
                Some(id),
                found,
                action,
                false,
            );
            continue;
        }
        *r = m;
        r.event(
            &by,
            "checked",
            format!("conciliação: situação no TAE: {}", r.status.label()),
        );
        let action = match save(run, r).await {
            Ok(()) => signed_step(run, r, &by).await,
            Err(m) => Err(m),
        };
        let what = format!("o registro agora está {}", r.status.label());
        push_fixed(&mut f, OutcomeKind::RecordBehind, r, found, action, &what);
    }

    // 2. The contract's TAE documents no record points at.
    for d in attributed {
        if known.contains(&d.id) || prepared.out_of_period.contains(&d.id) {
            continue;
        }
        let name = doc_name(d);
        if d.status == DocStatus::Draft {
            let found = format!(
                "rascunho nº {} (\"{name}\") no TAE, criado por um envio desta integração, sem registro que aponte para ele.",
                d.id
            );
            if !fix {
                let action = f.would(&format!("o rascunho nº {} é cancelado no TAE", d.id));
                f.push(
                    OutcomeKind::OrphanDraft,
                    None,
                    Some(d.id),
                    found,
                    action,
                    false,
                );
                continue;
            }
            let id = d.id;
            if let Err(e) = run.still_holds(item) {
                f.push(
                    OutcomeKind::OrphanDraft,
                    None,
                    Some(id),
                    found,
                    format!("Não corrigido: {}.", e.message.trim_end_matches('.')),
                    false,
                );
                continue;
            }
            let cancelled = run
                .tae
                .call(|t| async move { run.tae.client.cancel(&t, id).await })
                .await;
            // What TAE says now decides (a cancel may answer an error and still take effect,
            // or be accepted and leave a draft where TAE returns cancelled drafts to draft).
            let now = run
                .tae
                .call(|t| async move { run.tae.client.document(&t, id).await })
                .await;
            let gone = match &now {
                Ok(doc) => doc.status == DocStatus::Cancelled,
                Err(e) => e.kind == ErrorKind::NotFound,
            };
            let action = match (&cancelled, gone) {
                (_, true) => format!("Corrigido: o rascunho nº {id} foi cancelado no TAE."),
                (Err(e), false) => format!(
                    "Não foi possível cancelar o rascunho nº {id}: {}.",
                    e.user_text()
                ),
                (Ok(()), false) => format!(
                    "Não corrigido: o TAE aceitou o cancelamento, mas o rascunho nº {id} continua ativo (situação {}).",
                    now.as_ref()
                        .map(|d| status_label(d.status))
                        .unwrap_or_else(|e| e.user_text())
                ),
            };
            f.push(
                OutcomeKind::OrphanDraft,
                None,
                Some(id),
                found,
                action,
                gone,
            );
            continue;
        }
        if active(d.status) {
            active_docs.push(d.id);
        }
        let found = format!(
            "documento nº {} (\"{name}\", {}) no TAE, criado por um envio desta integração, sem registro que aponte para ele.",
            d.id,
            status_label(d.status)
        );
        // Adopted only by the record whose identity it carries, when that record has no
        // document and the contract no other active one.
        let owner = records
            .iter()
            .position(|r| r.document_id.is_none() && d.kept_names().any(|n| r.carries_send_id(n)));
        let others_active = records
            .iter()
            .any(|r| r.document_id.is_some() && r.status.is_active())
            || active_docs.iter().any(|x| *x != d.id);
        let Some(pos) = owner.filter(|_| !others_active) else {
            let why = if others_active {
                "o contrato já tem documento ativo"
            } else {
                "nenhum registro sem documento traz a sua identidade"
            };
            f.push(OutcomeKind::UnknownDocument, None, Some(d.id), found, format!("Apenas informado ({why}); nunca é cancelado automaticamente: confira no portal do TAE."), false);
            continue;
        };
        if !fix {
            let action = f.would(&format!(
                "o documento nº {} é adotado pelo registro que traz a sua identidade",
                d.id
            ));
            f.push(
                OutcomeKind::UnknownDocument,
                Some(&records[pos]),
                Some(d.id),
                found,
                action,
                false,
            );
            continue;
        }
        let doc = match read_to_adopt(run, prepared, item, d.id).await {
            Ok(doc) => doc,
            Err(o) => {
                f.list.push(o);
                continue;
            }
        };
        let r = &mut records[pos];
        r.document_id = Some(d.id);
        apply_document(r, &doc, &by);
        if r.sent_at.is_none() {
            r.sent_at = Some(crate::records::now());
            r.sent_by = Some(by.clone());
        }
        r.last_error = None;
        r.event(
            &by,
            "reconciled",
            format!("conciliação: documento {} do TAE adotado", d.id),
        );
        let action = match save(run, r).await {
            Ok(()) => signed_step(run, r, &by).await,
            Err(m) => Err(m),
        };
        let what = format!(
            "documento nº {} adotado pelo registro ({})",
            d.id,
            r.status.label()
        );
        push_fixed(
            &mut f,
            OutcomeKind::UnknownDocument,
            r,
            found,
            action,
            &what,
        );
        known.insert(d.id);
    }

    // 3. More than one active document for the contract.
    active_docs.sort_unstable();
    active_docs.dedup();
    if active_docs.len() > 1 {
        let list: Vec<String> = active_docs.iter().map(|d| format!("nº {d}")).collect();
        f.push(
            OutcomeKind::DuplicateActive,
            None,
            active_docs.first().copied(),
            format!(
                "{} documentos ativos no TAE para o mesmo contrato: {}.",
                active_docs.len(),
                list.join(", ")
            ),
            "Apenas informado; nenhum é cancelado automaticamente: cancele no RM (Excluir documento) ou no portal o que não vale.".into(),
            false,
        );
    }
    if let Some(m) = &prepared.listing_error {
        f.list.push(Outcome::failed(
            item,
            format!("a lista de documentos do TAE não pôde ser lida ({m}); só os registros foram conferidos."),
        ));
    }
    let mut list = f.list;
    if list.is_empty() {
        let msg = match item.records.first() {
            None => "nenhum documento foi enviado para este contrato; nada a conciliar.".to_string(),
            Some(r) => format!(
                "nenhum registro em andamento e nenhum documento desta integração no TAE a conciliar (último registro: {}).",
                r.status.label()
            ),
        };
        return Outcome::labelled(item, OutcomeKind::Skipped, msg);
    }
    let mut first = list.remove(0);
    // The run's breaker looks at one outcome per contract: the first finding carries why TAE
    // could not be reached, if any finding of the contract says so.
    first.unreachable = first
        .unreachable
        .or_else(|| list.iter().find_map(|o| o.unreachable));
    first.more = list;
    first
}

/// Marks the contract "Assinado" when the mended record is finalised.
async fn signed_step(run: &Run<'_>, r: &Record, by: &str) -> Result<(), String> {
    if r.status != RecordStatus::Finalizado {
        return Ok(());
    }
    run.host
        .set_contract_signed(&r.record_key, by)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "registro corrigido, mas não foi possível marcar o contrato como Assinado no RM ({})",
                e.message
            )
        })
}

fn push_fixed(
    f: &mut Findings<'_>,
    kind: OutcomeKind,
    r: &Record,
    found: String,
    done: Result<(), String>,
    what: &str,
) {
    let doc = r.document_id;
    match done {
        Ok(()) => {
            let mut what = what.to_string();
            if r.status == RecordStatus::Finalizado {
                what.push_str("; contrato marcado como Assinado no RM");
            }
            f.push(
                kind,
                Some(r),
                doc,
                found,
                format!("Corrigido: {what}."),
                true,
            )
        }
        Err(m) => f.push(
            kind,
            Some(r),
            doc,
            found,
            format!("Não corrigido: {m}."),
            false,
        ),
    }
}

/// Closes a record that says active while its document is gone or cancelled in TAE.
async fn close(
    run: &Run<'_>,
    f: &mut Findings<'_>,
    r: &mut Record,
    id: i64,
    found: String,
    why: &str,
    by: &str,
) {
    let kind = if why.starts_with("cancelado") {
        OutcomeKind::DocumentCancelled
    } else {
        OutcomeKind::DocumentMissing
    };
    if kind == OutcomeKind::DocumentMissing && f.unfamiliar {
        f.push(kind, Some(r), Some(id), found, "Nada foi feito: nenhum documento dos registros selecionados existe neste TOTVS Assinatura Eletrônica; confira a URL da API e a conta nos Parâmetros Globais antes de corrigir.".into(), false);
        return;
    }
    if !f.fix {
        let action = f.would("o registro é encerrado como Cancelado (um novo envio fica liberado)");
        f.push(kind, Some(r), Some(id), found, action, false);
        return;
    }
    r.set_status(RecordStatus::Cancelado);
    r.last_error = Some(format!("documento {id} {why}"));
    r.last_check_at = Some(crate::records::now());
    r.event(
        by,
        "reconciled",
        format!("conciliação: documento {id} {why}; registro encerrado"),
    );
    let done = save(run, r).await;
    push_fixed(
        f,
        kind,
        r,
        found,
        done,
        "o registro foi encerrado como Cancelado (um novo envio fica liberado)",
    );
}

/// The final pass (from the menu): the TAE user's documents of the period that no record of
/// the selection knows. Those a record of this database knows (another contract's) are left to
/// that contract's reconcile; the rest are reported, never changed: without a record of this
/// database carrying its identity, a document cannot be proven this environment's.
pub fn unknown_documents(run: &Run<'_>, prepared: &Prepared) -> Vec<Outcome> {
    if prepared.unattributed.is_empty() {
        return Vec::new();
    }
    let mut tags_known: HashSet<String> = HashSet::new();
    let mut ids_known: HashSet<i64> = HashSet::new();
    let page = 500usize;
    let mut offset = 0usize;
    loop {
        match run.host.records_query(&json!({}), offset, page) {
            Ok((total, recs)) => {
                let n = recs.len();
                for r in recs {
                    tags_known.extend(r.send_id);
                    ids_known.extend(r.document_id);
                }
                offset += n;
                if n == 0 || offset as u64 >= total {
                    break;
                }
            }
            Err(e) => {
                log::warn!("reconcile: records.query failed: {}", e.detail);
                let item = Item {
                    key: String::new(),
                    contract: None,
                    records: Vec::new(),
                    target_record: None,
                };
                return vec![Outcome::new(
                    &item,
                    OutcomeKind::Failed,
                    format!(
                        "Documentos do TAE sem registro: não foi possível ler os registros de integração do RM ({}).",
                        e.message
                    ),
                )];
            }
        }
    }
    let me = prepared.me.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    for d in &prepared.unattributed {
        if ids_known.contains(&d.id)
            || (own_author(d, me) && tags(d).iter().any(|t| tags_known.contains(t)))
        {
            continue;
        }
        let item = Item {
            key: String::new(),
            contract: None,
            records: Vec::new(),
            target_record: None,
        };
        let name = doc_name(d);
        let whose = if tags(d).is_empty() {
            "sem identidade de envio desta integração"
        } else {
            "com identidade de envio que nenhum registro deste banco de dados conhece (outro ambiente do RM na mesma conta do TAE?)"
        };
        let found = format!(
            "documento nº {} (\"{name}\", {}) no TAE, {whose}, sem registro de integração.",
            d.id,
            status_label(d.status)
        );
        let action =
            "Apenas informado; nunca é alterado automaticamente: confira no portal do TAE."
                .to_string();
        let mut o = Outcome::new(
            &item,
            OutcomeKind::UnknownDocument,
            format!("Documento nº {}: {found} {action}", d.id),
        );
        o.document_id = Some(d.id);
        o.finding = Some(Box::new(super::outcome::Finding {
            found,
            action,
            mended: false,
        }));
        out.push(o);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_tags() {
        assert_eq!(
            send_tag("Contrato 1 - Ana [abcdefgh12345678]"),
            Some("abcdefgh12345678")
        );
        assert_eq!(send_tag("Contrato 1 - Ana"), None);
        assert_eq!(send_tag("Contrato [ABCDEFGH12345678]"), None);
        assert_eq!(send_tag("Contrato [abc]"), None);
        assert_eq!(send_tag("Contrato [abcdefgh12345678] x"), None);
    }

    #[test]
    fn periods() {
        let p = |from: &str, to: &str| ReconcileParams {
            fix: false,
            period: Some(Period {
                from: from.into(),
                to: to.into(),
            }),
        };
        let (a, b) = p("2026-11-01", "2026-11-01").window().unwrap().unwrap();
        assert_eq!(a.to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(b.to_rfc3339(), "2026-11-01T23:59:59.999+00:00");
        assert!(p("2026-11-02", "2026-11-01").window().is_err());
        assert!(p("ontem", "2026-11-01").window().is_err());
        assert!(ReconcileParams::default().window().unwrap().is_none());
    }
}

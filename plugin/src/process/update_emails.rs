//! "Atualizar e-mail de assinantes/validadores/testemunhas": on a published, still pending
//! document, replaces the recipients whose e-mails changed (add the new one, then remove the
//! old one) — the financial responsible's current e-mail is read from the contract, the others
//! come from the process. Unchanged recipients are untouched; finalised documents are refused.

use super::check::apply_document;
use super::request::people;
use super::send::{financial_responsible, new_recipient, person_recipient};
use super::{Item, Outcome, OutcomeKind, Run};
use crate::config::{Person, RecipientAuthType};
use crate::error::PluginError;
use crate::records::{Recipient, RecipientState, RecordStatus, Role};
use crate::tae::{Document, ErrorKind, NewRecipient, TaeError};
use crate::validate::same_email;
use serde::Deserialize;

/// `update_emails` params (`docs/abi.md`, "execute").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateParams {
    #[serde(default)]
    validators: Option<Vec<Person>>,
    #[serde(default)]
    witnesses: Option<Vec<Person>>,
    #[serde(default)]
    extra_signers: Option<Vec<Person>>,
}

impl UpdateParams {
    pub fn check(&self) -> Result<(), PluginError> {
        UpdatePlan::new(self).map(|_| ())
    }
}

pub struct UpdatePlan {
    pub extra_signers: Option<Vec<Person>>,
    pub validators: Option<Vec<Person>>,
    pub witnesses: Option<Vec<Person>>,
}

impl UpdatePlan {
    pub fn new(p: &UpdateParams) -> Result<UpdatePlan, PluginError> {
        Ok(UpdatePlan {
            extra_signers: people("extra_signers", &p.extra_signers, true)?,
            validators: people("validators", &p.validators, false)?,
            witnesses: people("witnesses", &p.witnesses, false)?,
        })
    }
}

pub async fn run(run: &Run<'_>, plan: &UpdatePlan, item: &Item) -> Outcome {
    let label = item.label();
    let Some(rec) = item.working_record() else {
        return Outcome::new(
            item,
            OutcomeKind::Skipped,
            format!("{label}: não há documento enviado para atualizar."),
        );
    };
    let mut r = rec.clone();
    let by = run.user.who();
    match r.status {
        RecordStatus::Pendente | RecordStatus::AssinadoParcialmente => {}
        RecordStatus::Finalizado => {
            return Outcome::failed(item, format!("o documento nº {} está finalizado; os e-mails não podem ser alterados.", r.document_id.unwrap_or_default())).with_record(&r)
        }
        RecordStatus::Enviando | RecordStatus::Rascunho => {
            return Outcome::failed(item, "o envio deste documento não foi concluído; execute \"Enviar documento\" novamente antes de atualizar e-mails.").with_record(&r)
        }
        s => return Outcome::new(item, OutcomeKind::Skipped, format!("{label}: o documento está {}; nada a atualizar.", s.label().to_lowercase())).with_record(&r),
    }
    let Some(contract) = &item.contract else {
        return Outcome::failed(item, "contrato não encontrado no RM.").with_record(&r);
    };
    let fr = match financial_responsible(contract) {
        Ok(fr) => fr,
        Err(p) => return p.outcome(item).with_record(&r),
    };
    let id = r.document_id.unwrap_or_default();
    // Current state in TAE (refuses finalised documents, tells who already signed).
    let doc = match run
        .tae
        .call(|t| async move { run.tae.client.document(&t, id).await })
        .await
    {
        Ok(d) => d,
        Err(e) if e.kind == ErrorKind::NotFound => {
            return Outcome::failed(
                item,
                format!("o documento nº {id} não foi encontrado no TOTVS Assinatura Eletrônica."),
            )
            .with_record(&r)
        }
        Err(e) => {
            return Outcome::tae_failed(
                item,
                &format!("não foi possível consultar o documento nº {id}"),
                &e,
            )
            .with_record(&r)
        }
    };
    apply_document(&mut r, &doc, &by);
    let in_document = document_emails(&doc);
    if !matches!(
        r.status,
        RecordStatus::Pendente | RecordStatus::AssinadoParcialmente
    ) {
        let _ = run.put(&[&r]).await;
        let o = if r.status == RecordStatus::Finalizado {
            Outcome::failed(
                item,
                format!("o documento nº {id} está finalizado; os e-mails não podem ser alterados."),
            )
        } else {
            Outcome::new(
                item,
                OutcomeKind::Skipped,
                format!(
                    "{label}: o documento nº {id} está {}; nada a atualizar.",
                    r.status.label().to_lowercase()
                ),
            )
        };
        return o.with_record(&r);
    }

    // Desired recipients, per role, in the order they were sent.
    let old_signers: Vec<Recipient> = r
        .recipients
        .iter()
        .filter(|x| x.role == Role::Signer)
        .cloned()
        .collect();
    let mut desired_signers = vec![fr.recipient()];
    match &plan.extra_signers {
        Some(list) => {
            desired_signers.extend(list.iter().map(|p| person_recipient(p, Role::Signer)))
        }
        None => desired_signers.extend(old_signers.iter().skip(1).cloned()),
    }
    let desired_for = |role: Role, given: &Option<Vec<Person>>| -> Vec<Recipient> {
        match given {
            Some(list) => list.iter().map(|p| person_recipient(p, role)).collect(),
            None => r
                .recipients
                .iter()
                .filter(|x| x.role == role)
                .cloned()
                .collect(),
        }
    };
    let desired_validators = desired_for(Role::Validator, &plan.validators);
    let desired_witnesses = desired_for(Role::Witness, &plan.witnesses);

    let mut new_list: Vec<Recipient> = Vec::new();
    let mut changes: Vec<String> = Vec::new();
    let mut kept_signed: Vec<String> = Vec::new();
    for (role, desired) in [
        (Role::Signer, desired_signers),
        (Role::Validator, desired_validators),
        (Role::Witness, desired_witnesses),
    ] {
        let old: Vec<Recipient> = r
            .recipients
            .iter()
            .filter(|x| x.role == role)
            .cloned()
            .collect();
        for (i, want) in desired.into_iter().enumerate() {
            let first = role == Role::Signer && i == 0;
            match old.get(i) {
                Some(o) if same_email(&o.email, &want.email) => new_list.push(o.clone()),
                Some(o) if o.state == RecipientState::Signed => {
                    kept_signed.push(format!("{} ({}) já assinou", o.name, o.email));
                    new_list.push(o.clone());
                }
                old_one => {
                    if let Err(o) =
                        replace(run, item, id, &in_document, old_one, &want, first).await
                    {
                        // Keep what was done so far in the record.
                        r.recipients = merge(new_list, &r.recipients, role, i);
                        r.last_error = Some(o.message.clone());
                        r.event(&by, "error", o.message.clone());
                        let _ = run.put(&[&r]).await;
                        return o.with_record(&r);
                    }
                    changes.push(match old_one {
                        Some(o) => format!("{} {} → {}", role.label(), o.email, want.email),
                        None => format!("{} {} adicionado", role.label(), want.email),
                    });
                    new_list.push(want);
                }
            }
        }
        // Recipients beyond the desired list are kept (never removed silently).
        let kept = new_list.iter().filter(|x| x.role == role).count();
        new_list.extend(old.into_iter().skip(kept));
    }
    if changes.is_empty() {
        r.event(&by, "checked", "atualização de e-mails: nenhuma alteração");
        let _ = run.put(&[&r]).await;
        let extra = if kept_signed.is_empty() {
            String::new()
        } else {
            format!(" ({})", kept_signed.join("; "))
        };
        return Outcome::new(
            item,
            OutcomeKind::Skipped,
            format!("{label}: nenhum e-mail alterado{extra}."),
        )
        .with_record(&r);
    }
    r.recipients = new_list;
    r.last_error = None;
    for c in &changes {
        r.event(&by, "recipient_replaced", c.clone());
    }
    if let Err(m) = run.put(&[&r]).await {
        return Outcome::failed(item, m).with_record(&r);
    }
    Outcome::new(
        item,
        OutcomeKind::Updated,
        format!(
            "{label}: {} destinatário(s) atualizado(s) no documento nº {id}: {}.",
            changes.len(),
            changes.join("; ")
        ),
    )
    .with_record(&r)
}

/// The recipients after a partial update: those already processed (`done`, complete for the
/// roles before `role` and the first `upto` of `role`), then the untouched old ones.
fn merge(
    mut done: Vec<Recipient>,
    old_all: &[Recipient],
    role: Role,
    upto: usize,
) -> Vec<Recipient> {
    let order = |r: Role| match r {
        Role::Signer => 0,
        Role::Validator => 1,
        Role::Witness => 2,
    };
    let old_of_role = old_all
        .iter()
        .filter(|x| x.role == role)
        .skip(upto)
        .cloned();
    let later = old_all
        .iter()
        .filter(|x| order(x.role) > order(role))
        .cloned();
    done.extend(old_of_role.chain(later));
    done
}

/// The e-mails (lower case) of every recipient of a document, acted or pending.
fn document_emails(doc: &Document) -> Vec<String> {
    doc.emails().map(str::to_lowercase).collect()
}

/// Adds one recipient. Idempotent: a recipient already in the document (an earlier run, or an
/// ambiguous failure that went through) counts as added.
async fn add_recipient(
    run: &Run<'_>,
    id: i64,
    body: &[NewRecipient],
    email: &str,
) -> Result<(), TaeError> {
    let auth = run.params.recipient_auth();
    let res = run
        .tae
        .call(|t| async move { run.tae.client.add_recipients(&t, id, body, auth).await })
        .await;
    match res {
        Ok(()) => Ok(()),
        Err(e) if e.kind == ErrorKind::DuplicateRecipient => Ok(()),
        Err(e) if e.kind.is_ambiguous() => {
            // Did it go through? Read before adding again.
            let doc = run
                .tae
                .call(|t| async move { run.tae.client.document(&t, id).await })
                .await?;
            if document_emails(&doc).contains(&email.to_lowercase()) {
                return Ok(());
            }
            tokio::time::sleep(e.wait_at_least(std::time::Duration::ZERO)).await;
            match run
                .tae
                .call(|t| async move { run.tae.client.add_recipients(&t, id, body, auth).await })
                .await
            {
                Err(e2) if e2.kind == ErrorKind::DuplicateRecipient => Ok(()),
                other => other,
            }
        }
        Err(e) => Err(e),
    }
}

/// Adds `want` (registered first with the login authentication type), then removes `old`.
/// Steps already done in TAE (seen in `in_document`) are not repeated, so a rerun after a
/// partial failure completes the replacement.
#[allow(clippy::too_many_arguments)]
async fn replace(
    run: &Run<'_>,
    item: &Item,
    id: i64,
    in_document: &[String],
    old: Option<&Recipient>,
    want: &Recipient,
    first: bool,
) -> Result<(), Outcome> {
    if run.params.recipient_auth_type == RecipientAuthType::Login {
        if let Some(cpf) = &want.cpf {
            if let Err(e) = run.ensure_recipient(&want.email, &want.name, cpf).await {
                return Err(Outcome::tae_failed(
                    item,
                    &format!(
                        "não foi possível cadastrar {} no TOTVS Assinatura Eletrônica",
                        want.email
                    ),
                    &e,
                ));
            }
        }
    }
    if run.params.recipient_auth_type == RecipientAuthType::EmailCode && want.cpf.is_none() {
        return Err(Outcome::failed(
            item,
            crate::config::email_code_needs_cpf(&want.name),
        ));
    }
    let body = vec![new_recipient(want, first)];
    let already = in_document.contains(&want.email.to_lowercase());
    if let Err(e) = match already {
        true => Ok(()),
        false => add_recipient(run, id, &body, &want.email).await,
    } {
        return Err(Outcome::tae_failed(
            item,
            &format!(
                "não foi possível incluir {} no documento nº {id}",
                want.email
            ),
            &e,
        ));
    }
    if let Some(o) = old.filter(|o| in_document.contains(&o.email.to_lowercase())) {
        let email = o.email.clone();
        if let Err(e) = run
            .tae
            .call(|t| {
                let email = email.clone();
                async move { run.tae.client.remove_recipient(&t, id, &email).await }
            })
            .await
        {
            if e.kind != ErrorKind::NotFound {
                return Err(Outcome::tae_failed(
                    item,
                    &format!(
                        "{} foi incluído, mas não foi possível remover {} do documento nº {id}",
                        want.email, o.email
                    ),
                    &e,
                ));
            }
        }
    }
    Ok(())
}

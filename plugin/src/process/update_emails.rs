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
use crate::tae::{Action, Document, ErrorKind, NewRecipient, TaeError};
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

    // First the plan, with no side effect: which slots keep their recipient and which are
    // replaced. A new address already used by another recipient of the document refuses the
    // whole contract before any change.
    let mut planned: Vec<(Role, Vec<Planned>, Vec<Recipient>)> = Vec::new();
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
        let mut slots = Vec::new();
        for (i, want) in desired.into_iter().enumerate() {
            let first = role == Role::Signer && i == 0;
            slots.push(match old.get(i) {
                Some(o) if same_email(&o.email, &want.email) => Planned::Keep(o.clone()),
                Some(o) if o.state == RecipientState::Signed => {
                    kept_signed.push(format!("{} ({}) já assinou", o.name, o.email));
                    Planned::Keep(o.clone())
                }
                old_one => Planned::Replace {
                    old: old_one.cloned(),
                    want,
                    first,
                },
            });
        }
        planned.push((role, slots, old));
    }
    if let Some(message) = collision(&r.recipients, &doc, &planned) {
        r.last_error = Some(message.clone());
        r.event(
            &by,
            "error",
            format!("atualização de e-mails recusada: {message}"),
        );
        let _ = run.put(&[&r]).await;
        return Outcome::failed(item, message).with_record(&r);
    }

    let mut new_list: Vec<Recipient> = Vec::new();
    let mut changes: Vec<String> = Vec::new();
    for (role, slots, old) in planned {
        for (i, slot) in slots.into_iter().enumerate() {
            let (old_one, want, first) = match slot {
                Planned::Keep(o) => {
                    new_list.push(o);
                    continue;
                }
                Planned::Replace { old, want, first } => (old, want, first),
            };
            if let Err(o) = replace(run, item, id, &doc, old_one.as_ref(), &want, first).await {
                // Keep what was done so far in the record.
                r.recipients = merge(new_list, &r.recipients, role, i);
                r.last_error = Some(o.message.clone());
                r.event(&by, "error", o.message.clone());
                let _ = run.put(&[&r]).await;
                return o.with_record(&r);
            }
            changes.push(match &old_one {
                Some(o) => format!("{} {} → {}", role.label(), o.email, want.email),
                None => format!("{} {} adicionado", role.label(), want.email),
            });
            new_list.push(want);
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

/// One slot of a role after the update: kept, or replaced (added when there was no one).
enum Planned {
    Keep(Recipient),
    Replace {
        old: Option<Recipient>,
        want: Recipient,
        first: bool,
    },
}

/// How a message names a recipient's place in the document.
fn slot_name(role: Role, first: bool) -> &'static str {
    match (role, first) {
        (Role::Signer, true) => "responsável financeiro",
        (Role::Signer, false) => "assinante",
        (Role::Validator, _) => "validador",
        (Role::Witness, _) => "testemunha",
    }
}

fn action_name(a: Option<Action>) -> &'static str {
    match a {
        Some(Action::Sign) => "assinante",
        Some(Action::Validate) => "validador",
        Some(Action::Witness) => "testemunha",
        None => "destinatário",
    }
}

/// Whether the document has `email` as a recipient doing what `role` does.
fn in_document_as(doc: &Document, email: &str, role: Role) -> bool {
    doc.recipients()
        .any(|d| same_email(&d.email, email) && d.action == Some(role.action()))
}

/// A new address that already belongs to another recipient of the document (case-insensitive):
/// another recipient of the record (whatever the update does to it), another new address of
/// this update, or a recipient of the document the record does not know in another role. The
/// one exception is the recipient this update added in an earlier, interrupted run: in the
/// document with the same role, known to no other slot of the record. Answers the message.
fn collision(
    current: &[Recipient],
    doc: &Document,
    planned: &[(Role, Vec<Planned>, Vec<Recipient>)],
) -> Option<String> {
    let replaces: Vec<(Role, &Option<Recipient>, &Recipient, bool)> = planned
        .iter()
        .flat_map(|(role, slots, _)| {
            slots.iter().filter_map(move |s| match s {
                Planned::Replace { old, want, first } => Some((*role, old, want, *first)),
                Planned::Keep(_) => None,
            })
        })
        .collect();
    let first_signer = current.iter().position(|x| x.role == Role::Signer);
    for (n, (role, old, want, first)) in replaces.iter().enumerate() {
        let this = slot_name(*role, *first);
        let refused = |other: &str, who: &str| {
            Some(format!(
                "o e-mail {} informado para o {this} já é do {other}{who} neste documento; nenhuma alteração foi feita. Informe outro e-mail ou altere primeiro o do {other}",
                want.email
            ))
        };
        let replaced = |x: &Recipient| old.as_ref() == Some(x);
        if let Some((idx, x)) = current
            .iter()
            .enumerate()
            .find(|(_, x)| same_email(&x.email, &want.email) && !replaced(x))
        {
            let other = slot_name(x.role, Some(idx) == first_signer);
            return refused(other, &format!(" {}", x.name));
        }
        if let Some((r2, _, _, f2)) = replaces
            .iter()
            .enumerate()
            .find(|(m, (_, _, w, _))| *m != n && same_email(&w.email, &want.email))
            .map(|(_, x)| x)
        {
            return refused(slot_name(*r2, *f2), "");
        }
        let unknown_to_record =
            |d: &&crate::tae::DocRecipient| !current.iter().any(|x| same_email(&x.email, &d.email));
        if let Some(d) = doc
            .recipients()
            .filter(unknown_to_record)
            .find(|d| same_email(&d.email, &want.email) && d.action != Some(role.action()))
        {
            return refused(action_name(d.action), "");
        }
    }
    None
}

/// Adds one recipient. Idempotent: a recipient already in the document (an earlier run, or an
/// ambiguous failure that went through) counts as added.
async fn add_recipient(
    run: &Run<'_>,
    id: i64,
    body: &[NewRecipient],
    email: &str,
    role: Role,
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
            if in_document_as(&doc, email, role) {
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
/// Steps already done in TAE (seen in `doc`: the new address there with the same role, the old
/// one gone) are not repeated, so a rerun after a partial failure completes the replacement.
#[allow(clippy::too_many_arguments)]
async fn replace(
    run: &Run<'_>,
    item: &Item,
    id: i64,
    doc: &Document,
    old: Option<&Recipient>,
    want: &Recipient,
    first: bool,
) -> Result<(), Outcome> {
    run.still_holds(item).map_err(|e| e.outcome(item))?;
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
    // Our own earlier add (collisions were refused before any change).
    let already = in_document_as(doc, &want.email, want.role);
    if let Err(e) = match already {
        true => Ok(()),
        false => add_recipient(run, id, &body, &want.email, want.role).await,
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
    if let Some(o) = old.filter(|o| doc.emails().any(|e| same_email(e, &o.email))) {
        run.still_holds(item).map_err(|e| e.outcome(item))?;
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

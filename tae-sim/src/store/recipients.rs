//! Recipients: checks of new ones, add (D6) and remove (D7), the status they settle, and the
//! portal's side (a recipient acts or rejects).

use super::{Inner, Need};
use crate::api;
use crate::model::*;

impl Inner {
    pub(super) fn check_new_recipients(
        existing: &[Recipient],
        new: &[NewRecipient],
    ) -> SimResult<()> {
        for (i, r) in new.iter().enumerate() {
            if !valid_email(&r.email) {
                return Err(SimError::bad_request(format!(
                    "E-mail do destinatário inválido: {}",
                    r.email
                )));
            }
            if !(api::ACAO_SIGN..=api::ACAO_WITNESS).contains(&r.acao) {
                return Err(SimError::bad_request(format!(
                    "Ação do destinatário inválida: {}",
                    r.acao
                )));
            }
            if r.auth_type == api::AUTH_EMAIL_CODE
                && (r.name.trim().is_empty() || r.identification.trim().is_empty())
            {
                return Err(SimError::bad_request(format!(
                    "Informe o nome completo e a identificação do destinatário {}.",
                    r.email
                )));
            }
            let repeated = existing
                .iter()
                .any(|e| e.email.eq_ignore_ascii_case(&r.email))
                || new[..i]
                    .iter()
                    .any(|e| e.email.eq_ignore_ascii_case(&r.email));
            if repeated {
                return Err(SimError::bad_request(format!(
                    "{}: {}",
                    api::MSG_DUPLICATE_RECIPIENT,
                    r.email
                )));
            }
        }
        Ok(())
    }

    pub(super) fn recipient_name(&self, r: &NewRecipient) -> String {
        if !r.name.trim().is_empty() {
            return r.name.trim().to_string();
        }
        self.user(&r.email)
            .map(|u| u.name.clone())
            .unwrap_or_else(|| r.email.clone())
    }

    pub(crate) fn add_recipients(
        &mut self,
        caller: &User,
        id: u64,
        new: Vec<NewRecipient>,
    ) -> SimResult<()> {
        let t = self.now();
        Self::require(caller, Need::Publish)?;
        let document = self.document_for(caller, id)?;
        if !matches!(
            document.status,
            api::STATUS_PENDING | api::STATUS_PARTIALLY_SIGNED
        ) {
            return Err(SimError::bad_request(format!(
                "Não é possível alterar destinatários de um documento com status {}.",
                api::status_name(document.status)
            )));
        }
        if new.is_empty() {
            return Err(SimError::bad_request("Informe ao menos um destinatário."));
        }
        Self::check_new_recipients(&document.recipients, &new)?;
        let use_workflow = document.use_workflow;
        let added: Vec<Recipient> = new
            .iter()
            .map(|r| Recipient {
                email: r.email.trim().to_string(),
                name: self.recipient_name(r),
                acao: r.acao,
                workflow: if use_workflow { r.workflow.max(1) } else { 0 },
                role: r.role.clone(),
                auth_type: r.auth_type,
                identification: r.identification.clone(),
                state: RecipientState::Pending,
                acted_at: None,
            })
            .collect();
        let document = self.document_for_mut(caller, id)?;
        let subject = document
            .subject
            .clone()
            .unwrap_or_else(|| format!("Documento para assinatura: {}", document.name));
        let to: Vec<String> = added.iter().map(|r| r.email.clone()).collect();
        document.recipients.extend(added);
        document.modified_at = t;
        for email in to {
            self.send_email(&email, "signature_request", subject.clone(), Some(id));
        }
        Ok(())
    }

    pub(crate) fn remove_recipient(
        &mut self,
        caller: &User,
        id: u64,
        email: &str,
    ) -> SimResult<()> {
        let t = self.now();
        Self::require(caller, Need::Publish)?;
        let document = self.document_for_mut(caller, id)?;
        if !matches!(
            document.status,
            api::STATUS_PENDING | api::STATUS_PARTIALLY_SIGNED
        ) {
            return Err(SimError::bad_request(format!(
                "Não é possível alterar destinatários de um documento com status {}.",
                api::status_name(document.status)
            )));
        }
        let index = document
            .recipients
            .iter()
            .position(|r| r.email.eq_ignore_ascii_case(email.trim()))
            .ok_or_else(|| SimError::bad_request("Destinatário não encontrado no documento."))?;
        if !document.recipients[index].is_pending() {
            return Err(SimError::bad_request(
                "O destinatário já assinou o documento e não pode ser removido.",
            ));
        }
        if document.recipients.len() == 1 {
            return Err(SimError::bad_request(
                "O documento precisa de ao menos um destinatário.",
            ));
        }
        let removed = document.recipients.remove(index);
        document.modified_at = t;
        let name = document.name.clone();
        Self::settle(document);
        self.send_email(
            &removed.email,
            "recipient_removed",
            format!("Você foi removido do documento: {name}"),
            Some(id),
        );
        Ok(())
    }

    /// Recomputes the status of a published document from its recipients.
    fn settle(document: &mut Document) {
        if !matches!(
            document.status,
            api::STATUS_PENDING | api::STATUS_PARTIALLY_SIGNED
        ) {
            return;
        }
        let acted = document
            .recipients
            .iter()
            .filter(|r| !r.is_pending())
            .count();
        document.status = if acted == document.recipients.len() {
            api::STATUS_FINALISED
        } else if acted > 0 {
            api::STATUS_PARTIALLY_SIGNED
        } else {
            api::STATUS_PENDING
        };
    }

    fn pending_document_mut(&mut self, id: u64) -> SimResult<&mut Document> {
        let document = self
            .documents
            .get_mut(&id)
            .ok_or_else(SimError::not_found)?;
        if !matches!(
            document.status,
            api::STATUS_PENDING | api::STATUS_PARTIALLY_SIGNED
        ) {
            return Err(SimError {
                status: 409,
                message: format!(
                    "O documento não está pendente (status {}).",
                    api::status_name(document.status)
                ),
            });
        }
        Ok(document)
    }

    /// The portal: a recipient signs, validates or witnesses (by its `acao`).
    pub(crate) fn act(&mut self, id: u64, email: &str) -> SimResult<Document> {
        let t = self.now();
        if self.features.strict_signers {
            let needs_account = self
                .documents
                .get(&id)
                .and_then(|d| {
                    d.recipients
                        .iter()
                        .find(|r| r.email.eq_ignore_ascii_case(email.trim()))
                })
                .is_some_and(|r| r.auth_type == api::AUTH_LOGIN);
            let confirmed = self.user(email.trim()).is_some_and(|u| u.confirmed);
            if needs_account && !confirmed {
                return Err(SimError {
                    status: 409,
                    message: format!(
                        "{email} precisa ter cadastro confirmado no TOTVS Assinatura Eletrônica para assinar."
                    ),
                });
            }
        }
        let document = self.pending_document_mut(id)?;
        let next_turn = document
            .recipients
            .iter()
            .filter(|r| r.is_pending())
            .map(|r| r.workflow)
            .min()
            .unwrap_or(0);
        let use_workflow = document.use_workflow;
        let recipient = pending_recipient(&mut document.recipients, id, email)?;
        if use_workflow && recipient.workflow > next_turn {
            return Err(SimError {
                status: 409,
                message: format!(
                    "Aguardando destinatários anteriores no fluxo (ordem {next_turn})."
                ),
            });
        }
        recipient.state = match recipient.acao {
            api::ACAO_VALIDATE => RecipientState::Validated,
            api::ACAO_WITNESS => RecipientState::Witnessed,
            _ => RecipientState::Signed,
        };
        recipient.acted_at = Some(t);
        document.modified_at = t;
        Self::settle(document);
        let snapshot = document.clone();
        if snapshot.status == api::STATUS_FINALISED {
            let mut to = vec![snapshot.created_by.clone()];
            to.extend(snapshot.recipients.iter().map(|r| r.email.clone()));
            to.extend(snapshot.observers.iter().cloned());
            for email in to {
                self.send_email(
                    &email,
                    "finalised",
                    format!("Documento finalizado: {}", snapshot.name),
                    Some(id),
                );
            }
        }
        Ok(snapshot)
    }

    /// The portal: a recipient rejects the document with a reason.
    pub(crate) fn reject(&mut self, id: u64, email: &str, reason: &str) -> SimResult<Document> {
        let t = self.now();
        let document = self.pending_document_mut(id)?;
        if !document.allow_reject {
            return Err(SimError {
                status: 409,
                message: "Este documento não permite rejeição.".to_string(),
            });
        }
        if reason.trim().is_empty() {
            return Err(SimError::bad_request("Informe o motivo da rejeição."));
        }
        let recipient = pending_recipient(&mut document.recipients, id, email)?;
        recipient.state = RecipientState::Rejected;
        recipient.acted_at = Some(t);
        document.status = api::STATUS_REJECTED;
        document.rejection_reason = Some(reason.trim().to_string());
        document.rejected_by = Some(recipient.email.clone());
        document.modified_at = t;
        let snapshot = document.clone();
        self.send_email(
            &snapshot.created_by,
            "rejected",
            format!("Documento rejeitado: {}", snapshot.name),
            Some(id),
        );
        Ok(snapshot)
    }
}

/// The document's recipient with this e-mail, if they have not acted yet (the portal's sign,
/// validate, witness and reject).
fn pending_recipient<'a>(
    recipients: &'a mut [Recipient],
    id: u64,
    email: &str,
) -> SimResult<&'a mut Recipient> {
    let recipient = recipients
        .iter_mut()
        .find(|r| r.email.eq_ignore_ascii_case(email.trim()))
        .ok_or_else(|| SimError {
            status: 404,
            message: format!("{email} não é destinatário do documento {id}."),
        })?;
    if !recipient.is_pending() {
        return Err(SimError {
            status: 409,
            message: format!("{email} já realizou sua ação neste documento."),
        });
    }
    Ok(recipient)
}

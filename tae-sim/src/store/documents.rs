//! Documents: upload (D1), the caller's view of them, publish (D2) and cancel (D8).

use super::Inner;
use crate::api;
use crate::model::*;

impl Inner {
    pub(crate) fn upload(&mut self, caller: &User, name: String, files: Vec<StoredFile>) -> u64 {
        let id = self.next_document_id;
        self.next_document_id += 1;
        let t = self.now();
        self.documents.insert(
            id,
            Document {
                id,
                company_id: caller.company_id,
                name,
                files,
                status: api::STATUS_DRAFT,
                created_at: t,
                modified_at: t,
                created_by: caller.email.clone(),
                recipients: Vec::new(),
                observers: Vec::new(),
                use_workflow: false,
                allow_reject: true,
                rejection_reason: None,
                rejected_by: None,
                subject: None,
                expires_on: None,
                cancelled_at: None,
                vanished: false,
            },
        );
        id
    }

    /// A document of the caller's company that TAE still shows (not vanished by a cancel).
    pub(crate) fn document_for(&self, caller: &User, id: u64) -> SimResult<&Document> {
        self.documents
            .get(&id)
            .filter(|d| d.company_id == caller.company_id && !d.vanished)
            .ok_or_else(SimError::not_found)
    }

    pub(super) fn document_for_mut(&mut self, caller: &User, id: u64) -> SimResult<&mut Document> {
        self.documents
            .get_mut(&id)
            .filter(|d| d.company_id == caller.company_id && !d.vanished)
            .ok_or_else(SimError::not_found)
    }

    /// The documents of the caller's company that TAE still shows.
    pub(crate) fn company_documents(&self, caller: &User) -> impl Iterator<Item = &Document> {
        let company = caller.company_id;
        self.documents
            .values()
            .filter(move |d| d.company_id == company && !d.vanished)
    }

    pub(crate) fn publish(&mut self, caller: &User, publication: Publication) -> SimResult<()> {
        Self::require(caller, Need::Publish)?;
        let t = self.now();
        let document = self.document_for(caller, publication.document_id)?;
        if document.status != api::STATUS_DRAFT {
            return Err(SimError::bad_request(api::MSG_ALREADY_PUBLISHED));
        }
        if publication.recipients.is_empty() {
            return Err(SimError::bad_request("Informe ao menos um destinatário."));
        }
        Self::check_new_recipients(&[], &publication.recipients)?;
        if publication.use_workflow {
            let mut orders: Vec<i64> = publication.recipients.iter().map(|r| r.workflow).collect();
            orders.sort_unstable();
            if orders.iter().any(|o| *o < 1) {
                return Err(SimError::bad_request(
                    "Com fluxo de assinatura, informe a ordem (workflow) de cada destinatário a partir de 1.",
                ));
            }
        }
        let recipients: Vec<Recipient> = publication
            .recipients
            .iter()
            .map(|r| Recipient {
                email: r.email.trim().to_string(),
                name: self.recipient_name(r),
                acao: r.acao,
                workflow: if publication.use_workflow {
                    r.workflow
                } else {
                    0
                },
                role: r.role.clone(),
                auth_type: r.auth_type,
                identification: r.identification.clone(),
                state: RecipientState::Pending,
                acted_at: None,
            })
            .collect();
        let document = self.document_for_mut(caller, publication.document_id)?;
        document.status = api::STATUS_PENDING;
        document.recipients = recipients;
        document.observers = publication.observers;
        document.use_workflow = publication.use_workflow;
        document.allow_reject = publication.allow_reject;
        document.subject = publication.subject;
        document.expires_on = publication.expires_on;
        document.modified_at = t;
        let (id, name) = (document.id, document.name.clone());
        let subject = document
            .subject
            .clone()
            .unwrap_or_else(|| format!("Documento para assinatura: {name}"));
        let to: Vec<String> = document
            .recipients
            .iter()
            .map(|r| r.email.clone())
            .collect();
        for email in to {
            self.send_email(&email, "signature_request", subject.clone(), Some(id));
        }
        Ok(())
    }

    /// D8, under the cancel model in force (see [`CancelModel`]).
    pub(crate) fn cancel(&mut self, caller: &User, id: u64) -> SimResult<()> {
        Self::require(caller, Need::Delete)?;
        let model = self.features.cancel_model;
        let t = self.now();
        let document = self.document_for_mut(caller, id)?;
        match document.status {
            api::STATUS_FINALISED => return Err(SimError::bad_request(api::MSG_FINALISED_CANCEL)),
            api::STATUS_CANCELLED => return Err(SimError::bad_request(api::MSG_ALREADY_CANCELLED)),
            _ => {}
        }
        let was_published = document.status != api::STATUS_DRAFT;
        let to: Vec<String> = if was_published {
            document
                .recipients
                .iter()
                .filter(|r| r.is_pending())
                .map(|r| r.email.clone())
                .collect()
        } else {
            Vec::new()
        };
        match model {
            CancelModel::Cancelled => document.status = api::STATUS_CANCELLED,
            CancelModel::Draft => {
                document.status = api::STATUS_DRAFT;
                document.recipients.clear();
                document.observers.clear();
                document.use_workflow = false;
                document.rejection_reason = None;
                document.rejected_by = None;
            }
            CancelModel::Vanish => {
                document.status = api::STATUS_CANCELLED;
                document.vanished = true;
            }
        }
        document.cancelled_at = Some(t);
        document.modified_at = t;
        let name = document.name.clone();
        for email in to {
            self.send_email(
                &email,
                "cancellation",
                format!("Documento cancelado: {name}"),
                Some(id),
            );
        }
        Ok(())
    }
}

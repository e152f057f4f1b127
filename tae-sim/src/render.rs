//! The rendering of answers: the TAE shapes of a document (D3/D5, search records), the
//! caller's profile (A2), and the portal's view of a document.

use crate::api;
use crate::model::*;
use serde_json::{json, Value};

/// The TAE shape of a document (D3 and D5 `data`), with the stand-in's extras.
pub fn document_json(document: &Document) -> Value {
    document_json_with(document, true)
}

/// The TAE shape of a document; `extras` adds what the stand-in sends beyond TAE-API.md
/// (`nomeDocumento`, `criadoPor`, `pendentes[].nome`), see the `sim_extras` feature.
pub fn document_json_with(document: &Document, extras: bool) -> Value {
    let mut value = document_json_all(document);
    if !extras {
        if let Some(map) = value.as_object_mut() {
            map.remove("nomeDocumento");
            map.remove("criadoPor");
        }
        if let Some(list) = value["pendentes"].as_array_mut() {
            for p in list.iter_mut().filter_map(Value::as_object_mut) {
                p.remove("nome");
            }
        }
    }
    value
}

fn document_json_all(document: &Document) -> Value {
    let first = document.files.first();
    let assinantes: Vec<Value> = document
        .recipients
        .iter()
        .filter(|r| !r.is_pending())
        .map(|r| {
            json!({"email": r.email, "nome": r.name, "data": r.acted_at.map(tae_time), "acao": r.acao})
        })
        .collect();
    let pendentes: Vec<Value> = document
        .recipients
        .iter()
        .filter(|r| r.is_pending())
        .map(|r| json!({"email": r.email, "nome": r.name, "acao": r.acao}))
        .collect();
    json!({
        "id": document.id,
        "nomeDocumento": document.name,
        "status": document.status,
        "nomeArquivo": document.name,
        "tamanhoArquivo": first.map(|f| f.size),
        "recCreatedOn": tae_time(document.created_at),
        "recModifiedOn": tae_time(document.modified_at),
        "motivoRejeicao": document.rejection_reason,
        "criadoPor": document.created_by,
        "assinantes": assinantes,
        "pendentes": pendentes,
    })
}

/// The portal's view of a document (`GET /_sim/documents`).
pub fn document_portal_json(document: &Document, company: &str) -> Value {
    let first = document.files.first();
    let recipients: Vec<Value> = document
        .recipients
        .iter()
        .map(|r| {
            json!({
                "email": r.email, "name": r.name, "acao": r.acao, "workflow": r.workflow,
                "role": r.role, "auth_type": r.auth_type, "identification": r.identification,
                "state": r.state, "acted_at": r.acted_at.map(tae_time),
            })
        })
        .collect();
    json!({
        "id": document.id,
        "name": document.name,
        "company": company,
        "status": document.status,
        "status_name": api::status_name(document.status),
        "file_name": first.map(|f| f.name.clone()),
        "file_size": first.map(|f| f.size),
        "sha256": first.map(|f| f.sha256.clone()),
        "files": document.files,
        "recipients": recipients,
        "observers": document.observers,
        "use_workflow": document.use_workflow,
        "motivoRejeicao": document.rejection_reason,
        "rejection_reason": document.rejection_reason,
        "rejected_by": document.rejected_by,
        "createdBy": document.created_by,
        "created_by": document.created_by,
        "created_at": tae_time(document.created_at),
        "modified_at": tae_time(document.modified_at),
        "cancelled_at": document.cancelled_at.map(tae_time),
        "vanished": document.vanished,
    })
}

/// A2 `data`: the caller's profile.
pub fn profile_json(user: &User) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "fullName": user.name,
        "cpf": user.cpf,
        "isAdministrator": user.administrator,
        "isPublisher": user.permissions.publish,
        "emailConfirmado": user.confirmed,
        "nomeEmpresa": user.company,
        "permissoes": {
            api::PERM_SEND: user.permissions.publish,
            api::PERM_DELETE: user.permissions.delete,
            api::PERM_QUERY: user.permissions.query,
            api::PERM_CREATE_USERS: user.permissions.create_users,
        },
    })
}

/// One record of a search page (D4 and the recipient search): `{id, nomeArquivo, status,
/// dataCriacao, dataExpiracao, dataUltimaAlteracao, autor:{email}}` as TAE sends them; with
/// `extras`, also the stand-in's older `nomeDocumento`, `recCreatedOn`, `recModifiedOn`,
/// `criadoPor`.
pub fn search_record_json(d: &Document, extras: bool) -> Value {
    if !extras {
        return json!({
            "id": d.id,
            "nomeArquivo": d.name,
            "status": d.status,
            "dataCriacao": tae_time(d.created_at),
            "dataExpiracao": d.expires_on,
            "dataUltimaAlteracao": tae_time(d.modified_at),
            "autor": {"email": d.created_by},
        });
    }
    json!({
        "id": d.id,
        "nomeArquivo": d.name,
        "status": d.status,
        "dataCriacao": tae_time(d.created_at),
        "dataExpiracao": d.expires_on,
        "dataUltimaAlteracao": tae_time(d.modified_at),
        "autor": {"email": d.created_by},
        "nomeDocumento": d.name,
        "recCreatedOn": tae_time(d.created_at),
        "recModifiedOn": tae_time(d.modified_at),
        "criadoPor": d.created_by,
    })
}

//! TAE's request and answer bodies as Rust types (`docs/tae-api.md` has the routes and the
//! confidence of each field). Answers are camelCase, unknown fields are ignored, and a missing
//! required field is a [`TaeError`] naming the route and the field ([`decode`]) — never a panic
//! and never a silent default. Nothing outside `tae/` sees TAE's JSON or its numeric codes: the
//! client converts these into the domain values exported by `tae` ([`Document`], [`DocStatus`],
//! [`Action`], …).

use super::api;
use super::error::{BadAnswer, ErrorKind, TaeError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Decodes an envelope's `data` into `T`; a shape error names the route, the field's path under
/// `data` and serde's reason (e.g. "data.status: missing field `status`"), and carries the
/// [`BadAnswer`] the per-contract message names (a missing field, or one of another type).
pub fn decode<T: DeserializeOwned>(route: &str, data: Value) -> Result<T, TaeError> {
    serde_path_to_error::deserialize(data).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let reason = inner.to_string();
        let at = if path == "." || path.is_empty() {
            "data".to_string()
        } else {
            format!("data.{path}")
        };
        let answer = shape_error(&at, &reason);
        TaeError::bad_answer(
            ErrorKind::Protocol,
            None,
            answer,
            format!("{route}: unexpected answer at {at}: {reason}"),
        )
    })
}

/// What serde's reason says about the field at `at`: a missing field (named in backticks) or
/// one of another type than expected.
fn shape_error(at: &str, reason: &str) -> BadAnswer {
    if let Some(rest) = reason.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or("");
        let full = if at == "data" {
            field.to_string()
        } else {
            format!("{}.{field}", at.trim_start_matches("data."))
        };
        return BadAnswer::MissingField(full);
    }
    let found = reason
        .strip_prefix("invalid type: ")
        .map(|r| r.split([',', ' ']).next().unwrap_or(""))
        .map(|t| match t {
            "boolean" => "um booleano",
            "integer" | "floating" => "um número",
            "string" => "um texto",
            "map" => "um objeto",
            "sequence" => "uma lista",
            "null" | "unit" => "nulo",
            _ => "valor inválido",
        })
        .or_else(|| {
            // A custom error ("invalid status true"): the value it quotes last.
            let last = reason.rsplit(' ').next().unwrap_or("");
            Some(match last.chars().next() {
                _ if last == "true" || last == "false" => "um booleano",
                _ if last == "null" => "nulo",
                Some('"') => "um texto",
                Some('{') => "um objeto",
                Some('[') => "uma lista",
                Some(c) if c.is_ascii_digit() || c == '-' => "um número",
                _ => return None,
            })
        })
        .unwrap_or("valor inválido");
    let field = if at == "data" {
        "data".to_string()
    } else {
        at.trim_start_matches("data.").to_string()
    };
    if reason.starts_with("invalid type: null") {
        return BadAnswer::MissingField(field);
    }
    BadAnswer::WrongType {
        field,
        found: found.to_string(),
    }
}

/// A document id: TAE answers it as a number or a numeric string.
fn id_of(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn de_id<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    id_of(&v).ok_or_else(|| serde::de::Error::custom(format!("invalid document id {v}")))
}

// ---------------------------------------------------------------------------------------------
// Domain values (what the core sees).

/// `data.status` of a publication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocStatus {
    Pending,
    PartiallySigned,
    Finalised,
    Rejected,
    Draft,
    Cancelled,
    /// A code this client does not know (kept for messages only).
    Other(i64),
}

impl DocStatus {
    pub fn from_code(code: i64) -> DocStatus {
        match code {
            api::STATUS_PENDING => DocStatus::Pending,
            api::STATUS_PARTIALLY_SIGNED => DocStatus::PartiallySigned,
            api::STATUS_FINALISED => DocStatus::Finalised,
            api::STATUS_REJECTED => DocStatus::Rejected,
            api::STATUS_DRAFT => DocStatus::Draft,
            api::STATUS_CANCELLED => DocStatus::Cancelled,
            other => DocStatus::Other(other),
        }
    }

    pub fn code(self) -> i64 {
        match self {
            DocStatus::Pending => api::STATUS_PENDING,
            DocStatus::PartiallySigned => api::STATUS_PARTIALLY_SIGNED,
            DocStatus::Finalised => api::STATUS_FINALISED,
            DocStatus::Rejected => api::STATUS_REJECTED,
            DocStatus::Draft => api::STATUS_DRAFT,
            DocStatus::Cancelled => api::STATUS_CANCELLED,
            DocStatus::Other(c) => c,
        }
    }
}

impl<'de> Deserialize<'de> for DocStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        id_of(&v)
            .map(DocStatus::from_code)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid status {v}")))
    }
}

/// What a recipient does (TAE's `acao`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Sign,
    Validate,
    Witness,
}

impl Action {
    fn code(self) -> i64 {
        match self {
            Action::Sign => api::ACAO_SIGN,
            Action::Validate => api::ACAO_VALIDATE,
            Action::Witness => api::ACAO_WITNESS,
        }
    }
}

/// One recipient of a read document (D3 `assinantes` / `pendentes`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct DocRecipient {
    pub email: String,
    #[serde(default, rename = "nome")]
    pub name: Option<String>,
    /// When they acted (only for `assinantes`).
    #[serde(default, rename = "data")]
    pub acted_at: Option<String>,
    /// What they do (`acao`), when TAE says and the code is known.
    #[serde(default, rename = "acao", deserialize_with = "de_action")]
    pub action: Option<Action>,
}

fn de_action<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Action>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(id_of).and_then(|c| match c {
        api::ACAO_SIGN => Some(Action::Sign),
        api::ACAO_VALIDATE => Some(Action::Validate),
        api::ACAO_WITNESS => Some(Action::Witness),
        _ => None,
    }))
}

/// The author of a document: `autor: {email}` in search records; tae-sim also answers
/// `criadoPor: "email"`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Author {
    #[serde(default)]
    pub email: Option<String>,
}

/// One publication (D3 `data`, and each item of D5).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    #[serde(deserialize_with = "de_id")]
    pub id: i64,
    pub status: DocStatus,
    /// The client-chosen name TAE keeps (most likely the upload's `NomeEnvelope`).
    #[serde(default)]
    pub nome_arquivo: Option<String>,
    #[serde(default)]
    pub rec_created_on: Option<String>,
    #[serde(default)]
    pub motivo_rejeicao: Option<String>,
    /// Recipients who acted.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub assinantes: Vec<DocRecipient>,
    /// Recipients who have not acted yet.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub pendentes: Vec<DocRecipient>,
    #[serde(default)]
    pub autor: Option<Author>,
    #[serde(default)]
    pub criado_por: Option<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl Document {
    /// Every recipient's e-mail, acted or pending.
    pub fn emails(&self) -> impl Iterator<Item = &str> {
        self.recipients().map(|r| r.email.as_str())
    }

    /// Every recipient, acted or pending.
    pub fn recipients(&self) -> impl Iterator<Item = &DocRecipient> {
        self.assinantes.iter().chain(&self.pendentes)
    }

    /// The TAE user who created the document, when TAE says.
    pub fn author_email(&self) -> Option<&str> {
        self.autor
            .as_ref()
            .and_then(|a| a.email.as_deref())
            .or(self.criado_por.as_deref())
    }
}

/// One record of a search page (D4 `registro`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRecord {
    #[serde(deserialize_with = "de_id")]
    pub id: i64,
    pub status: DocStatus,
    #[serde(default)]
    pub nome_arquivo: Option<String>,
    #[serde(default)]
    pub nome_documento: Option<String>,
    #[serde(default)]
    pub rec_created_on: Option<String>,
    #[serde(default)]
    pub data_criacao: Option<String>,
    #[serde(default)]
    pub autor: Option<Author>,
    #[serde(default)]
    pub criado_por: Option<String>,
}

impl SearchRecord {
    /// The client-chosen name TAE kept: `nomeArquivo` [high], or `nomeDocumento` (tae-sim).
    pub fn kept_names(&self) -> impl Iterator<Item = &str> {
        self.nome_arquivo
            .as_deref()
            .into_iter()
            .chain(self.nome_documento.as_deref())
    }

    pub fn author_email(&self) -> Option<&str> {
        self.autor
            .as_ref()
            .and_then(|a| a.email.as_deref())
            .or(self.criado_por.as_deref())
    }

    pub fn created(&self) -> Option<&str> {
        self.rec_created_on
            .as_deref()
            .or(self.data_criacao.as_deref())
    }
}

/// A search page (D4 `data`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SearchPage {
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub registro: Vec<SearchRecord>,
}

/// The permission flags of a profile (A2 `data.permissoes`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionFlags {
    #[serde(default)]
    pub enviar_documentos: Option<bool>,
    #[serde(default)]
    pub excluir_documentos: Option<bool>,
    #[serde(default)]
    pub consultar_documentos: Option<bool>,
    #[serde(default)]
    pub criar_usuarios: Option<bool>,
}

/// What the TAE profile says the user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permissions {
    pub send: bool,
    pub delete: bool,
    pub query: bool,
    pub create_users: bool,
}

/// The caller's profile (A2 `data`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub is_administrator: Option<bool>,
    #[serde(default)]
    pub permissoes: Option<PermissionFlags>,
}

impl Profile {
    /// `None` when the service does not report permissions.
    pub fn permissions(&self) -> Option<Permissions> {
        let admin = self.is_administrator == Some(true);
        let p = self.permissoes.as_ref()?;
        let flag = |f: Option<bool>| admin || f.unwrap_or(false);
        Some(Permissions {
            send: flag(p.enviar_documentos),
            delete: flag(p.excluir_documentos),
            query: flag(p.consultar_documentos),
            create_users: flag(p.criar_usuarios),
        })
    }
}

/// A1's answer.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginAnswer {
    pub token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expiration_date: Option<String>,
}

/// One user of A4's list.
#[derive(Clone, Debug, Deserialize)]
pub struct UserItem {
    #[serde(default)]
    pub email: Option<String>,
}

/// A4's answer: a list, or a page `{items}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum UserList {
    List(Vec<UserItem>),
    Page {
        #[serde(default)]
        items: Vec<UserItem>,
    },
}

impl UserList {
    pub fn items(&self) -> &[UserItem] {
        match self {
            UserList::List(v) => v,
            UserList::Page { items } => items,
        }
    }
}

/// D1's answer: the new id, bare or as `{idDocumento}` / `{id}`.
#[derive(Clone, Debug)]
pub struct UploadAnswer(pub i64);

impl<'de> Deserialize<'de> for UploadAnswer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        id_of(&v)
            .or_else(|| v.get("idDocumento").and_then(id_of))
            .or_else(|| v.get("id").and_then(id_of))
            .map(UploadAnswer)
            .ok_or_else(|| serde::de::Error::custom("missing field `idDocumento`"))
    }
}

/// D9's answer.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadAnswer {
    pub file_bytes: String,
    #[serde(default)]
    pub file_name: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Requests.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest<'a> {
    pub user_name: &'a str,
    pub password: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub full_name: &'a str,
    pub cpf: &'a str,
    pub user_type: i64,
    pub change_password: bool,
    pub cnpj_licensed_company: Option<()>,
    pub phone_number: Option<()>,
    pub position: Option<()>,
    pub accepted_term: bool,
}

/// How recipients without a TAE account authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecipientAuth {
    /// They log in to TAE (they are registered first).
    Login,
    /// A code sent by e-mail (no account; CPF required).
    EmailCode,
}

/// A recipient to add to a document (D2 / D6).
#[derive(Clone, Debug, PartialEq)]
pub struct NewRecipient {
    pub email: String,
    pub name: String,
    pub cpf: Option<String>,
    pub action: Action,
    /// The contract's financial responsible (labelled so in TAE).
    pub financial_responsible: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientBody<'a> {
    email: &'a str,
    acao: i64,
    workflow: i64,
    papel_assinante: &'static str,
    nome_completo: &'a str,
    notifica_envio: bool,
    tipo_envio_documento: i64,
    tipo_autenticacao: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tipo_identificacao: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identificacao: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tipo_envio_codigo: Option<i64>,
}

impl<'a> RecipientBody<'a> {
    pub fn new(r: &'a NewRecipient, auth: RecipientAuth) -> Self {
        RecipientBody {
            email: &r.email,
            acao: r.action.code(),
            workflow: 0,
            papel_assinante: match (r.action, r.financial_responsible) {
                (Action::Sign, true) => "Responsável financeiro",
                (Action::Sign, false) => "Assinante",
                (Action::Validate, _) => "Validador",
                (Action::Witness, _) => "Testemunha",
            },
            nome_completo: &r.name,
            notifica_envio: true,
            tipo_envio_documento: api::SEND_BY_EMAIL,
            tipo_autenticacao: match auth {
                RecipientAuth::Login => api::AUTH_LOGIN,
                RecipientAuth::EmailCode => api::AUTH_EMAIL_CODE,
            },
            tipo_identificacao: r.cpf.as_ref().map(|_| api::IDENT_CPF),
            identificacao: r.cpf.as_deref(),
            tipo_envio_codigo: (auth == RecipientAuth::EmailCode).then_some(api::SEND_BY_EMAIL),
        }
    }
}

/// A publication (D2), as the core describes it.
#[derive(Clone, Debug)]
pub struct Publication {
    pub document_id: i64,
    pub recipients: Vec<NewRecipient>,
    pub auth: RecipientAuth,
    /// `yyyy-MM-ddTHH:mm:ss`, or none.
    pub expires: Option<String>,
    pub subject: String,
    pub body: String,
    pub reminder_days: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicationOptions<'a> {
    data_expiracao: Option<&'a str>,
    assunto_mensagem: &'a str,
    corpo_mensagem: &'a str,
    permite_rejeitar_documento: bool,
    intervalo_lembrete: u32,
    solicita_assinatura_manuscrita: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicationBody<'a> {
    id_documento: i64,
    utiliza_workflow: bool,
    responsavel_assina_documento: bool,
    destinatarios: Vec<RecipientBody<'a>>,
    observadores: [(); 0],
    publicacao_opcoes: PublicationOptions<'a>,
}

impl<'a> PublicationBody<'a> {
    pub fn new(p: &'a Publication) -> Self {
        PublicationBody {
            id_documento: p.document_id,
            utiliza_workflow: false,
            responsavel_assina_documento: false,
            destinatarios: p
                .recipients
                .iter()
                .map(|r| RecipientBody::new(r, p.auth))
                .collect(),
            observadores: [],
            publicacao_opcoes: PublicationOptions {
                data_expiracao: p.expires.as_deref(),
                assunto_mensagem: &p.subject,
                corpo_mensagem: &p.body,
                permite_rejeitar_documento: true,
                intervalo_lembrete: p.reminder_days,
                solicita_assinatura_manuscrita: false,
            },
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddRecipientsBody<'a> {
    pub id_documento: i64,
    pub destinatarios: Vec<RecipientBody<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveRecipientBody<'a> {
    pub id_documento: i64,
    pub email_destinatario: &'a str,
}

/// D4's body: the sender's own documents (`email`), by status.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchBody<'a> {
    pub pesquisar_em_toda_empresa: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'a [i64]>,
}

/// Every status of a document that may still be live (all but cancelled).
pub const LIVE_STATUSES: [i64; 5] = [
    api::STATUS_PENDING,
    api::STATUS_PARTIALLY_SIGNED,
    api::STATUS_FINALISED,
    api::STATUS_REJECTED,
    api::STATUS_DRAFT,
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn a_document_without_status_names_the_route_and_field() {
        let e = decode::<Document>("read document", json!({"id": 5})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(e.detail.contains("read document"), "{e}");
        assert!(e.detail.contains("status"), "{e}");
        let d: Document = decode(
            "read document",
            json!({"id": "7", "status": 1, "novo": true, "assinantes": null,
                   "pendentes": [{"email": "a@x.com", "acao": 0}]}),
        )
        .unwrap();
        assert_eq!(d.id, 7);
        assert_eq!(d.status, DocStatus::PartiallySigned);
        assert_eq!(d.emails().collect::<Vec<_>>(), ["a@x.com"]);
        let e = decode::<LoginAnswer>("login", json!({"expirationDate": "x"})).unwrap_err();
        assert!(
            e.detail.contains("login") && e.detail.contains("token"),
            "{e}"
        );
        let e = decode::<DownloadAnswer>("download", json!({})).unwrap_err();
        assert!(e.detail.contains("fileBytes"), "{e}");
    }

    #[test]
    fn shape_errors_name_the_field_for_the_person() {
        let e = decode::<Document>("read document", json!({"id": 5})).unwrap_err();
        assert_eq!(e.answer, Some(BadAnswer::MissingField("status".into())));
        assert!(
            e.user_text().contains("campo status ausente"),
            "{}",
            e.user_text()
        );
        let e = decode::<Document>("read document", json!({"id": 5, "status": true})).unwrap_err();
        assert_eq!(
            e.answer,
            Some(BadAnswer::WrongType {
                field: "status".into(),
                found: "um booleano".into()
            }),
            "{e}"
        );
        assert!(e.detail.contains("data.status"), "{e}");
        assert!(
            e.user_text()
                .contains("campo status de tipo inesperado (um booleano)"),
            "{}",
            e.user_text()
        );
        let e = decode::<UploadAnswer>("upload", json!(true)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        // The upload's id is bare or in an object: a boolean is neither (no id in it).
        assert_eq!(
            e.answer,
            Some(BadAnswer::MissingField("idDocumento".into())),
            "{e}"
        );
        let e = decode::<Document>(
            "read document",
            json!({"id": 5, "status": 2, "pendentes": [{"email": 9, "acao": 0}]}),
        )
        .unwrap_err();
        assert!(
            matches!(&e.answer, Some(BadAnswer::WrongType { field, found }) if field == "pendentes[0].email" && found == "um número"),
            "{e}"
        );
    }

    #[test]
    fn recipient_and_publication_bodies_keep_tae_field_names() {
        let fr = NewRecipient {
            email: "m@x.com".into(),
            name: "Maria".into(),
            cpf: Some("12345678909".into()),
            action: Action::Sign,
            financial_responsible: true,
        };
        let v = serde_json::to_value(RecipientBody::new(&fr, RecipientAuth::EmailCode)).unwrap();
        assert_eq!(
            v,
            json!({"email": "m@x.com", "acao": 0, "workflow": 0, "papelAssinante": "Responsável financeiro",
                   "nomeCompleto": "Maria", "notificaEnvio": true, "tipoEnvioDocumento": 1,
                   "tipoAutenticacao": 2, "tipoIdentificacao": 1, "identificacao": "12345678909",
                   "tipoEnvioCodigo": 1})
        );
        let val = NewRecipient {
            email: "v@x.com".into(),
            name: "V".into(),
            cpf: None,
            action: Action::Validate,
            financial_responsible: false,
        };
        let v = serde_json::to_value(RecipientBody::new(&val, RecipientAuth::Login)).unwrap();
        assert!(v.get("identificacao").is_none());
        assert_eq!(v["acao"], 1);
        assert_eq!(v["tipoAutenticacao"], 1);
        let p = Publication {
            document_id: 9,
            recipients: vec![fr],
            auth: RecipientAuth::Login,
            expires: None,
            subject: "s".into(),
            body: "b".into(),
            reminder_days: 3,
        };
        let v = serde_json::to_value(PublicationBody::new(&p)).unwrap();
        assert_eq!(v["idDocumento"], 9);
        assert_eq!(v["observadores"], json!([]));
        assert_eq!(v["publicacaoOpcoes"]["dataExpiracao"], Value::Null);
        assert_eq!(v["publicacaoOpcoes"]["intervaloLembrete"], 3);
        assert_eq!(v["utilizaWorkflow"], false);
    }

    #[test]
    fn profiles_and_upload_answers() {
        let p: Profile = decode(
            "profile",
            json!({"permissoes": {"enviarDocumentos": true, "consultarDocumentos": true}}),
        )
        .unwrap();
        let perms = p.permissions().unwrap();
        assert!(perms.send && perms.query && !perms.delete && !perms.create_users);
        let p: Profile = decode("profile", json!({"email": "x"})).unwrap();
        assert_eq!(p.permissions(), None);
        let p: Profile = decode(
            "profile",
            json!({"isAdministrator": true, "permissoes": {}}),
        )
        .unwrap();
        let perms = p.permissions().unwrap();
        assert!(perms.delete && perms.create_users);
        for v in [
            json!(5),
            json!("5"),
            json!({"idDocumento": 5}),
            json!({"id": "5"}),
        ] {
            assert_eq!(decode::<UploadAnswer>("upload", v).unwrap().0, 5);
        }
        assert!(decode::<UploadAnswer>("upload", json!({"x": 1})).is_err());
    }

    /// Valid answers of every type, to truncate and mutate.
    fn samples() -> Vec<(&'static str, String)> {
        vec![
            ("document", json!({"id": 1, "status": 5, "nomeArquivo": "n", "assinantes": [{"email": "a@b.c", "data": "2026-01-01T00:00:00"}], "pendentes": []}).to_string()),
            ("search", json!({"total": 2, "registro": [{"id": 1, "status": 0, "nomeArquivo": "x", "autor": {"email": "a@b.c"}}]}).to_string()),
            ("profile", json!({"email": "a@b.c", "isAdministrator": false, "permissoes": {"enviarDocumentos": true}}).to_string()),
            ("login", json!({"token": "t", "expirationDate": "2026-01-01T00:00:00"}).to_string()),
            ("users", json!([{"email": "a@b.c"}]).to_string()),
            ("upload", json!({"idDocumento": 3}).to_string()),
            ("download", json!({"fileBytes": "JVBERi0=", "fileName": "a.pdf"}).to_string()),
        ]
    }

    fn decode_any(which: &str, bytes: &[u8]) {
        let answer =
            super::super::client::decode_answer("route", 200, Some("application/json"), bytes);
        let data = match answer {
            Ok(d) => d,
            Err(_) => return,
        };
        let _ = match which {
            "document" => decode::<Document>("r", data).map(|_| ()),
            "search" => decode::<SearchPage>("r", data).map(|_| ()),
            "profile" => decode::<Profile>("r", data).map(|_| ()),
            "login" => decode::<LoginAnswer>("r", data).map(|_| ()),
            "users" => decode::<UserList>("r", data).map(|_| ()),
            "upload" => decode::<UploadAnswer>("r", data).map(|_| ()),
            _ => decode::<DownloadAnswer>("r", data).map(|_| ()),
        };
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Every answer type, fed arbitrary bytes: a value or a `TaeError`, never a panic.
        #[test]
        fn arbitrary_answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), which in 0usize..7) {
            let (name, _) = samples()[which].clone();
            decode_any(name, &bytes);
        }

        /// Every answer type, valid then truncated anywhere and wrapped in an envelope or not.
        #[test]
        fn truncated_answers_never_panic(which in 0usize..7, cut in 0usize..400, wrapped in any::<bool>()) {
            let (name, body) = samples()[which].clone();
            let full = if wrapped { format!("{{\"success\":true,\"data\":{body}}}") } else { body };
            let cut = cut.min(full.len());
            decode_any(name, &full.as_bytes()[..cut]);
        }

        /// Arbitrary JSON values in place of the answer's `data`.
        #[test]
        fn arbitrary_json_never_panics(which in 0usize..7, v in arb_json()) {
            let (name, _) = samples()[which].clone();
            let body = json!({"success": true, "data": v}).to_string();
            decode_any(name, body.as_bytes());
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            "[a-zA-Z0-9 ]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("id".to_string()),
                        Just("status".to_string()),
                        Just("token".to_string()),
                        Just("registro".to_string()),
                        Just("fileBytes".to_string()),
                        Just("email".to_string()),
                        Just("assinantes".to_string()),
                        Just("permissoes".to_string()),
                        "[a-z]{1,6}".prop_map(|s| s),
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}

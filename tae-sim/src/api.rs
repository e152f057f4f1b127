//! Every path, field name, enum value and message of the TAE REST API that the stand-in serves,
//! in one place (as the TAE API description, TAE-API.md, gives them). A correction to the API
//! description is a one-line change here. Route constants are axum route templates; they are also the keys of the request
//! counters (`"<METHOD> <template>"`).

// --- Authentication and users (identity envelope) ---
/// A1: login, and its two aliases.
pub const LOGIN_V3: &str = "/identityintegration/v3/auth/login";
pub const LOGIN_V2: &str = "/identityintegration/v2/auth/login";
pub const LOGIN_API: &str = "/identityintegration/api/auth/login";
/// A2: the caller's profile.
pub const PROFILE: &str = "/identityintegration/api/users/profile";
/// A3: user registration.
pub const REGISTER: &str = "/identityintegration/api/users/register";
/// A4: user lookup by e-mail (`Filter`, `Take`).
pub const USER_EMAIL_LIST: &str = "/signintegration/v2/Usuarios/email-list";

// --- Documents (success/data/errors/code envelope) ---
/// D1: multipart upload.
pub const UPLOAD: &str = "/documents/v1/envelopes/upload";
/// D2: publish, and its signintegration twin.
pub const PUBLISH_V1: &str = "/documents/v1/publicacoes";
pub const PUBLISH_V2: &str = "/signintegration/v2/Publicacoes";
/// D3: read one publication (v2 and v1).
pub const READ_V2: &str = "/documents/v2/publicacoes/{id}";
pub const READ_V1: &str = "/documents/v1/publicacoes/{id}";
/// D4: search (`PaginaAtual`, `TamanhoPagina`).
pub const SEARCH: &str = "/documents/v1/publicacoes/pesquisas";
/// The recipient search (`destinatarioEmail`, `status` array; paged like D4).
pub const SEARCH_RECIPIENT: &str = "/documents/v1/publicacoes/pesquisas/destinatario";
/// D5: many documents by id.
pub const MANY_DOCUMENTS: &str = "/signintegration/v2/Publicacoes/documentos-empresa";
/// D6: add recipients.
pub const ADD_RECIPIENTS: &str = "/signintegration/v2/Publicacoes/destinatario-list";
/// D7: remove one recipient (DELETE with a JSON body).
pub const REMOVE_RECIPIENT: &str = "/signintegration/v2/Publicacoes/destinatario";
/// D8: cancel.
pub const CANCEL: &str = "/documents/v1/publicacoes/{id}/cancelar";
/// D9: download (`tipoDownload` 1..=4).
pub const DOWNLOAD: &str = "/documents/v1/publicacoes/{id}/download";

/// Every TAE route the stand-in serves, as `(method, template)`: the router serves exactly these
/// (a unit test in `routes.rs` checks it), and the case-insensitive path matching reads them.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", LOGIN_V3),
    ("POST", LOGIN_V2),
    ("POST", LOGIN_API),
    ("GET", PROFILE),
    ("POST", REGISTER),
    ("GET", USER_EMAIL_LIST),
    ("POST", UPLOAD),
    ("POST", PUBLISH_V1),
    ("POST", PUBLISH_V2),
    ("GET", READ_V2),
    ("GET", READ_V1),
    ("POST", SEARCH),
    ("POST", SEARCH_RECIPIENT),
    ("POST", MANY_DOCUMENTS),
    ("POST", ADD_RECIPIENTS),
    ("DELETE", REMOVE_RECIPIENT),
    ("POST", CANCEL),
    ("GET", DOWNLOAD),
];

/// D5 accepts at most this many ids per call.
pub const MANY_IDS_MAX: usize = 1000;

// Multipart field names of D1 (compared case-insensitively).
pub const FIELD_ENVELOPE_NAME: &str = "NomeEnvelope";
pub const FIELD_ENVELOPE_FILE: &str = "Envelope";

// Query parameters (compared case-insensitively).
pub const Q_FILTER: &str = "Filter";
pub const Q_TAKE: &str = "Take";
pub const Q_PAGE: &str = "PaginaAtual";
pub const Q_PAGE_SIZE: &str = "TamanhoPagina";
pub const Q_DOWNLOAD_KIND: &str = "tipoDownload";

/// `acao` of a recipient.
pub const ACAO_SIGN: i64 = 0;
pub const ACAO_VALIDATE: i64 = 1;
pub const ACAO_WITNESS: i64 = 2;

/// `tipoAutenticacao`: 1 the recipient logs in, 2 a code sent by e-mail.
pub const AUTH_LOGIN: i64 = 1;
pub const AUTH_EMAIL_CODE: i64 = 2;
/// `tipoIdentificacao` (publication) and registration: 1 CPF/CNPJ, 2 international id [guess].
pub const IDENT_CPF: i64 = 1;
pub const IDENT_FOREIGN: i64 = 2;

/// `data.status` of a publication.
pub const STATUS_PENDING: i64 = 0;
pub const STATUS_PARTIALLY_SIGNED: i64 = 1;
pub const STATUS_FINALISED: i64 = 2;
pub const STATUS_REJECTED: i64 = 4;
pub const STATUS_DRAFT: i64 = 5;
pub const STATUS_CANCELLED: i64 = 7;
/// Search-only filter values of `status` (never a document state).
pub const FILTER_ALL: i64 = 3;
pub const FILTER_PENDING_WITH_ME: i64 = 6;

/// The Portuguese name of a status code.
pub fn status_name(code: i64) -> &'static str {
    match code {
        STATUS_PENDING => "Pendente",
        STATUS_PARTIALLY_SIGNED => "Assinado parcialmente",
        STATUS_FINALISED => "Finalizado",
        STATUS_REJECTED => "Rejeitado",
        STATUS_DRAFT => "Rascunho",
        STATUS_CANCELLED => "Cancelado",
        _ => "Desconhecido",
    }
}

/// The profile's permission names (A2 `data.permissoes`).
pub const PERM_SEND: &str = "enviarDocumentos";
pub const PERM_DELETE: &str = "excluirDocumentos";
pub const PERM_QUERY: &str = "consultarDocumentos";
pub const PERM_CREATE_USERS: &str = "criarUsuarios";

// Messages (pt-BR), as the service would give them.
pub const MSG_NOT_FOUND: &str = "Documento não encontrado.";
pub const MSG_ALREADY_PUBLISHED: &str = "Documento já publicado.";
pub const MSG_INVALID_TOKEN: &str = "Token de acesso ausente, inválido ou expirado.";
pub const MSG_BAD_LOGIN: &str = "Usuário ou senha inválidos.";
pub const MSG_NOT_CONFIRMED: &str = "E-mail ainda não confirmado. Verifique sua caixa de entrada.";
pub const MSG_ONLY_PDF: &str = "Apenas arquivos PDF são permitidos.";
pub const MSG_NO_FILE: &str = "Nenhum arquivo enviado.";
pub const MSG_DUPLICATE_RECIPIENT: &str = "Existe destinatário repetido";
pub const MSG_FINALISED_CANCEL: &str = "Documento finalizado não pode ser cancelado.";
pub const MSG_ALREADY_CANCELLED: &str = "Documento já cancelado.";
pub const MSG_TOO_MANY_IDS: &str = "Informe no máximo 1000 documentos por consulta.";
pub const MSG_RATE_LIMITED: &str = "Muitas requisições. Tente novamente em instantes.";
pub const MSG_INTERNAL: &str = "Erro interno do servidor.";
/// The hostile `success_false` answer (a 200 that says it failed).
pub const MSG_PROCESSING_FAILED: &str = "Não foi possível processar a solicitação.";

/// The permission message of a route: `Usuário sem permissão para <ação>.`
pub fn msg_forbidden(action: &str) -> String {
    format!("Usuário sem permissão para {action}.")
}

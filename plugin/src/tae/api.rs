//! Every path, field name and enum value of the TAE REST API used by the plugin, in one place
//! (`docs/tae-api.md` describes each with its confidence). A correction to the API description is
//! a one-line change here.

/// A1: login (`{userName, password}` → `{token, expirationDate}`), relative to `auth_url`.
pub const LOGIN: &str = "/v3/auth/login";
/// A2: the caller's profile, relative to `auth_url`.
pub const PROFILE: &str = "/api/users/profile";
/// A3: user registration, relative to `auth_url`.
pub const REGISTER: &str = "/api/users/register";
/// A4: user lookup by e-mail (substring match), relative to `api_url`.
pub const USER_EMAIL_LIST: &str = "/signintegration/v2/Usuarios/email-list";

/// D1: upload (multipart `NomeEnvelope`, `Envelope`).
pub const UPLOAD: &str = "/documents/v1/envelopes/upload";
/// D2: publish.
pub const PUBLISH: &str = "/documents/v1/publicacoes";
/// D3: one publication, `{id}` appended.
pub const PUBLICATION_V2: &str = "/documents/v2/publicacoes";
/// D4: search (`PaginaAtual`, `TamanhoPagina` query parameters).
pub const SEARCH: &str = "/documents/v1/publicacoes/pesquisas";
/// D5: many documents by id (≤ [`MANY_IDS_MAX`] per call).
pub const MANY_DOCUMENTS: &str = "/signintegration/v2/Publicacoes/documentos-empresa";
/// D6: add recipients.
pub const ADD_RECIPIENTS: &str = "/signintegration/v2/Publicacoes/destinatario-list";
/// D7: remove one recipient (DELETE with a JSON body).
pub const REMOVE_RECIPIENT: &str = "/signintegration/v2/Publicacoes/destinatario";
/// D8 and D9 are `/documents/v1/publicacoes/{id}/…`.
pub const PUBLICATION_V1: &str = "/documents/v1/publicacoes";
pub const CANCEL_SUFFIX: &str = "cancelar";
pub const DOWNLOAD_SUFFIX: &str = "download";

pub const MANY_IDS_MAX: usize = 1000;

// Multipart field names of D1.
pub const FIELD_ENVELOPE_NAME: &str = "NomeEnvelope";
pub const FIELD_ENVELOPE_FILE: &str = "Envelope";

// Query parameters.
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
/// `tipoIdentificacao`: 1 CPF/CNPJ.
pub const IDENT_CPF: i64 = 1;
/// `tipoEnvioDocumento` / `tipoEnvioCodigo`: 1 by e-mail.
pub const SEND_BY_EMAIL: i64 = 1;

/// `data.status` of a publication.
pub const STATUS_PENDING: i64 = 0;
pub const STATUS_PARTIALLY_SIGNED: i64 = 1;
pub const STATUS_FINALISED: i64 = 2;
pub const STATUS_REJECTED: i64 = 4;
pub const STATUS_DRAFT: i64 = 5;
pub const STATUS_CANCELLED: i64 = 7;

/// The profile's permission names (A2 `data.permissoes`).
pub const PERM_SEND: &str = "enviarDocumentos";
pub const PERM_DELETE: &str = "excluirDocumentos";
pub const PERM_QUERY: &str = "consultarDocumentos";
pub const PERM_CREATE_USERS: &str = "criarUsuarios";

/// `userType` sent on registration (1 = external/signer user) [guess].
pub const USER_TYPE_SIGNER: i64 = 1;

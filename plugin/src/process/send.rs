//! "Enviar documento": per contract, validate the financial responsible, get the PDF (the file
//! chosen in the process or the report the host renders), register the signer in TAE when
//! missing, write the record ("enviando"), upload (record "rascunho" + id), publish (record
//! "pendente"). A record stuck mid-send is reconciled with TAE first; a contract with an active
//! record is skipped.

use super::request::people;
use super::{locate_document, ContractError, Item, Located, Outcome, OutcomeKind, Run};
use crate::config::{self, Params, Person, RecipientAuthType};
use crate::error::{PluginError, Status};
use crate::host::HostBytes;
use crate::hostcalls::HostApi;
use crate::records::{Contract, Recipient, RecipientState, Record, RecordStatus, Role};
use crate::tae::{DocStatus, ErrorKind, NewRecipient, Publication, TaeError};
use crate::validate::{normalize_cpf, normalize_email, same_email};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// `send` params (`docs/abi.md`, "execute").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendParams {
    #[serde(default)]
    source: Option<SourceParam>,
    #[serde(default)]
    validators: Option<Vec<Person>>,
    #[serde(default)]
    witnesses: Option<Vec<Person>>,
    #[serde(default)]
    extra_signers: Option<Vec<Person>>,
    #[serde(default)]
    document_name_template: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

/// Where the PDF comes from.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum SourceParam {
    File { path: String },
    Report { report_code: String },
}

impl SendParams {
    /// The checks the types cannot make, before any host call: the source is given, the
    /// people lists and the template are valid.
    pub fn check(&self) -> Result<(), PluginError> {
        if self.source.is_none() {
            return Err(bad(
                "Informe a origem do documento (arquivo PDF ou relatório).",
                "params.source is missing",
            ));
        }
        people("extra_signers", &self.extra_signers, true)?;
        people("validators", &self.validators, false)?;
        people("witnesses", &self.witnesses, false)?;
        if let Some(t) = &self.document_name_template {
            check_template(t)?;
        }
        Ok(())
    }
}

fn check_template(t: &str) -> Result<String, PluginError> {
    config::check_template(t)
        .map_err(|m| bad(format!("Modelo do nome do documento inválido: {m}"), m.0))
}

pub enum Source {
    /// The file chosen in the process, read once for the batch.
    File {
        /// Read in place from the host's buffer (kept until the export returns), shared by
        /// every contract and every upload attempt without a copy.
        pdf: HostBytes,
        /// Its SHA-256 (hex), computed once for the batch.
        sha256: String,
        file_name: String,
    },
    /// A predefined report the host renders per contract.
    Report { report_code: String },
}

pub struct SendPlan {
    pub source: Source,
    pub extra_signers: Vec<Person>,
    pub validators: Vec<Person>,
    pub witnesses: Vec<Person>,
    pub template: String,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub auth_type: RecipientAuthType,
    pub expiry_days: u32,
    pub reminder_days: u32,
    pub max_bytes: u64,
}

fn bad(message: impl Into<String>, detail: impl Into<String>) -> PluginError {
    PluginError::new(Status::InvalidRequest, message, detail)
}

/// Checks a PDF: not empty, starts with `%PDF-`, within the size limit. Answers a Portuguese
/// reason.
pub fn check_pdf(bytes: &[u8], max_bytes: u64) -> Result<(), ContractError> {
    if bytes.is_empty() {
        return Err(ContractError::new("o arquivo PDF está vazio"));
    }
    if !bytes.starts_with(b"%PDF-") {
        return Err(ContractError::new(
            "o arquivo não é um PDF válido (não começa com %PDF-)",
        ));
    }
    if bytes.len() as u64 > max_bytes {
        return Err(ContractError::new(format!(
            "o PDF tem {:.1} MB, acima do limite de {} MB",
            bytes.len() as f64 / 1_048_576.0,
            max_bytes / 1_048_576
        )));
    }
    Ok(())
}

impl SendPlan {
    pub fn new(
        host: HostApi<'_>,
        params: &Params,
        p: &SendParams,
    ) -> Result<SendPlan, PluginError> {
        let max_bytes = params.max_file_mb * 1024 * 1024;
        let source = match &p.source {
            Some(SourceParam::File { path }) => {
                let path = path.trim();
                if path.is_empty() {
                    return Err(bad(
                        "Informe o arquivo PDF a enviar.",
                        "params.source.path is empty",
                    ));
                }
                let pdf = host.file_read(path).map_err(|e| {
                    bad(
                        format!("Não foi possível ler o arquivo {path}: {}", e.message),
                        e.to_string(),
                    )
                })?;
                let sha256 = pdf
                    .with_slice(|bytes| {
                        check_pdf(bytes, max_bytes).map(|()| format!("{:x}", Sha256::digest(bytes)))
                    })
                    .ok_or_else(|| {
                        PluginError::internal("the host's file.read buffer was already released")
                    })?
                    .map_err(|m| bad(format!("Arquivo {path}: {m}."), m.message))?;
                let file_name = std::path::Path::new(path)
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_else(|| "contrato.pdf".into());
                Source::File {
                    pdf,
                    sha256,
                    file_name,
                }
            }
            Some(SourceParam::Report { report_code }) => {
                let code = report_code.trim();
                if code.is_empty() {
                    return Err(bad(
                        "Informe o relatório que gera o contrato.",
                        "params.source.report_code is empty",
                    ));
                }
                Source::Report {
                    report_code: code.to_string(),
                }
            }
            None => {
                return Err(bad(
                    "Informe a origem do documento (arquivo PDF ou relatório).",
                    "params.source is missing",
                ))
            }
        };
        let extra_signers = people("extra_signers", &p.extra_signers, true)?
            .unwrap_or_else(|| params.extra_signers.clone());
        let validators = people("validators", &p.validators, false)?
            .unwrap_or_else(|| params.validators.clone());
        let witnesses =
            people("witnesses", &p.witnesses, false)?.unwrap_or_else(|| params.witnesses.clone());
        if witnesses.len() < params.witness_count {
            return Err(bad(
                format!(
                    "São exigidas {} testemunhas, mas {} foram informadas.",
                    params.witness_count,
                    witnesses.len()
                ),
                "fewer witnesses than witness_count",
            ));
        }
        if params.recipient_auth_type == RecipientAuthType::EmailCode {
            if let Some(p) = extra_signers
                .iter()
                .chain(&validators)
                .chain(&witnesses)
                .find(|p| p.cpf.is_none())
            {
                let m = config::email_code_needs_cpf(&p.name);
                return Err(bad(m.clone(), m));
            }
        }
        let mut all: Vec<&str> = Vec::new();
        for person in extra_signers.iter().chain(&validators).chain(&witnesses) {
            if all.iter().any(|e| same_email(e, &person.email)) {
                return Err(bad(
                    format!(
                        "O e-mail {} aparece mais de uma vez entre os destinatários.",
                        person.email
                    ),
                    "repeated recipient e-mail",
                ));
            }
            all.push(&person.email);
        }
        let template = match &p.document_name_template {
            Some(t) => check_template(t)?,
            None => params.document_name_template.clone(),
        };
        let text = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Ok(SendPlan {
            source,
            extra_signers,
            validators,
            witnesses,
            template,
            subject: text(&p.subject),
            body: text(&p.body),
            auth_type: params.recipient_auth_type,
            expiry_days: params.expiry_days,
            reminder_days: params.reminder_interval_days,
            max_bytes,
        })
    }
}

/// The financial responsible of a contract, validated.
#[derive(Clone, Debug)]
pub struct Responsible {
    pub name: String,
    /// 11 digits.
    pub cpf: String,
    pub email: String,
}

impl Responsible {
    pub fn recipient(&self) -> Recipient {
        Recipient {
            email: self.email.clone(),
            name: self.name.clone(),
            cpf: Some(self.cpf.clone()),
            role: Role::Signer,
            state: RecipientState::Pending,
            acted_at: None,
        }
    }
}

/// The financial responsible, validated; else the field that is missing or invalid.
pub fn financial_responsible(c: &Contract) -> Result<Responsible, ContractError> {
    let Some(fr) = &c.financial_responsible else {
        return Err(ContractError::field(
            "financial_responsible",
            "o contrato não tem responsável financeiro cadastrado",
        ));
    };
    let name = fr.name.clone().unwrap_or_default().trim().to_string();
    if name.is_empty() {
        return Err(ContractError::field(
            "financial_responsible.name",
            "o responsável financeiro não tem nome cadastrado",
        ));
    }
    let cpf = match fr.cpf.as_deref() {
        None => {
            return Err(ContractError::field(
                "financial_responsible.cpf",
                format!("o responsável financeiro {name} não tem CPF cadastrado"),
            ))
        }
        Some(c) => normalize_cpf(c).ok_or_else(|| {
            ContractError::field(
                "financial_responsible.cpf",
                format!("o CPF {c} do responsável financeiro {name} é inválido"),
            )
        })?,
    };
    let email = match fr.email.as_deref() {
        None => {
            return Err(ContractError::field(
                "financial_responsible.email",
                format!("o responsável financeiro {name} não tem e-mail cadastrado"),
            ))
        }
        Some(e) => normalize_email(e).ok_or_else(|| {
            ContractError::field(
                "financial_responsible.email",
                format!("o e-mail {e} do responsável financeiro {name} é inválido"),
            )
        })?,
    };
    Ok(Responsible { name, cpf, email })
}

/// The financial responsible validated, not repeated among the other recipients, and the
/// document's recipients in order.
fn validate_recipients(c: &Contract, plan: &SendPlan) -> Result<Vec<Recipient>, ContractError> {
    let fr = financial_responsible(c)?;
    if let Some(p) = plan
        .extra_signers
        .iter()
        .chain(&plan.validators)
        .chain(&plan.witnesses)
        .find(|p| same_email(&p.email, &fr.email))
    {
        return Err(ContractError::field(
            "financial_responsible.email",
            format!(
                "o e-mail {} do responsável financeiro é o mesmo de outro destinatário ({})",
                fr.email, p.name
            ),
        ));
    }
    Ok(recipients(
        &fr,
        &plan.extra_signers,
        &plan.validators,
        &plan.witnesses,
    ))
}

/// A person of the process or of the parameters as a recipient of `role`.
pub fn person_recipient(p: &Person, role: Role) -> Recipient {
    Recipient {
        email: p.email.clone(),
        name: p.name.clone(),
        cpf: p.cpf.clone(),
        role,
        state: RecipientState::Pending,
        acted_at: None,
    }
}

/// The recipients of a contract's document: the financial responsible first, then extra
/// signers, validators and witnesses.
pub fn recipients(
    fr: &Responsible,
    extra: &[Person],
    validators: &[Person],
    witnesses: &[Person],
) -> Vec<Recipient> {
    let mut out = vec![fr.recipient()];
    out.extend(extra.iter().map(|p| person_recipient(p, Role::Signer)));
    out.extend(
        validators
            .iter()
            .map(|p| person_recipient(p, Role::Validator)),
    );
    out.extend(witnesses.iter().map(|p| person_recipient(p, Role::Witness)));
    out
}

/// A record's recipient as TAE takes it; `first` is the contract's financial responsible.
pub fn new_recipient(r: &Recipient, first: bool) -> NewRecipient {
    NewRecipient {
        email: r.email.clone(),
        name: r.name.clone(),
        cpf: r.cpf.clone(),
        action: r.role.action(),
        financial_responsible: first && r.role == Role::Signer,
    }
}

fn publication(plan: &SendPlan, id: i64, name: &str, recipients: &[Recipient]) -> Publication {
    Publication {
        document_id: id,
        recipients: recipients
            .iter()
            .enumerate()
            .map(|(i, r)| new_recipient(r, i == 0))
            .collect(),
        auth: match plan.auth_type {
            RecipientAuthType::Login => crate::tae::RecipientAuth::Login,
            RecipientAuthType::EmailCode => crate::tae::RecipientAuth::EmailCode,
        },
        expires: (plan.expiry_days > 0).then(|| {
            (chrono::Utc::now() + chrono::Duration::days(plan.expiry_days as i64))
                .format("%Y-%m-%dT23:59:59")
                .to_string()
        }),
        subject: plan
            .subject
            .clone()
            .unwrap_or_else(|| format!("{name} para assinatura")),
        body: plan.body.clone().unwrap_or_else(|| {
            format!("Olá! O documento \"{name}\" está disponível para sua assinatura eletrônica.")
        }),
        reminder_days: plan.reminder_days,
    }
}

fn file_name_for(c: &Contract, plan: &SendPlan) -> String {
    match &plan.source {
        Source::File { file_name, .. } => file_name.clone(),
        Source::Report { .. } => {
            let code: String = c
                .codcontrato
                .chars()
                .map(|ch| {
                    if ch.is_ascii_alphanumeric() || ch == '-' {
                        ch
                    } else {
                        '_'
                    }
                })
                .collect();
            format!(
                "contrato-{}.pdf",
                if code.is_empty() {
                    "sem-codigo".into()
                } else {
                    code
                }
            )
        }
    }
}

/// Publishes a draft; on an ambiguous failure (or "already published") reads the document
/// first and publishes again only while it is still a draft, never sooner than TAE's
/// `Retry-After`. Answers TAE's resulting status.
async fn publish_checked(
    run: &Run<'_>,
    publication: &Publication,
    id: i64,
) -> Result<DocStatus, TaeError> {
    const PUBLISH_ATTEMPTS: u32 = 3;
    let tae = &run.tae;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let err = match tae
            .call(|t| async move { tae.client.publish(&t, publication).await })
            .await
        {
            Ok(()) => return Ok(DocStatus::Pending),
            Err(e) => e,
        };
        if !(err.kind.is_ambiguous() || err.kind == ErrorKind::AlreadyPublished) {
            return Err(err);
        }
        // The publish may have gone through: read the document before publishing again.
        log::warn!("publish of document {id} ambiguous ({err}); reading its state");
        let doc = tae
            .call(|t| async move { tae.client.document(&t, id).await })
            .await?;
        if doc.status != DocStatus::Draft {
            return Ok(doc.status);
        }
        if attempt >= PUBLISH_ATTEMPTS {
            return Err(err);
        }
        let policy = crate::tae::client::retry_policy();
        tokio::time::sleep(err.wait_at_least(policy.base_delay * attempt)).await;
    }
}

pub async fn run(run: &Run<'_>, plan: &SendPlan, item: &Item) -> Outcome {
    let Some(c) = &item.contract else {
        return Outcome::failed(item, "contrato não encontrado no RM.");
    };
    let by = run.user.who();
    // A contract already signed is never sent for signature again.
    if let Some(r) = item
        .records
        .iter()
        .find(|r| r.status == RecordStatus::Finalizado)
    {
        let doc = r
            .document_id
            .map(|d| format!(" nº {d}"))
            .unwrap_or_default();
        return Outcome::new(
            item,
            OutcomeKind::Skipped,
            format!(
                "{}: o contrato já foi assinado (documento{doc} finalizado no TOTVS Assinatura Eletrônica); não foi reenviado.",
                item.label()
            ),
        )
        .with_record(r);
    }
    // A contract with an active document is never sent twice; one stuck mid-send is reconciled.
    let active = item.records.iter().find(|r| r.status.is_active());
    if let Some(r) = active {
        if !r.status.is_unfinished_send() {
            let doc = r
                .document_id
                .map(|d| format!(" nº {d}"))
                .unwrap_or_default();
            return Outcome::new(
                item,
                OutcomeKind::Skipped,
                format!(
                    "{}: já possui documento ativo{doc} no TOTVS Assinatura Eletrônica (situação {}); não foi reenviado.",
                    item.label(),
                    r.status.label()
                ),
            )
            .with_record(r);
        }
    }
    // Validated lazily: adopting an already published document needs no recipient data.
    let validated = validate_recipients(c, plan).map_err(|p| p.outcome(item));
    let name = config::render_template(&plan.template, &c.template_values());

    // Reconcile a record left mid-send by an earlier run.
    let mut rec: Option<Record> = None;
    if let Some(stuck) = active {
        let mut r = stuck.clone();
        match locate_document(run, &r).await {
            Err(e) => {
                return Outcome::tae_failed(item, "não foi possível conferir o envio anterior", &e)
                    .with_record(&r)
            }
            Ok(Some(Located { id, status, .. })) => {
                r.document_id = Some(id);
                if status == DocStatus::Draft {
                    let recips = match &validated {
                        Ok(v) => v.clone(),
                        Err(o) => return o.clone().with_record(&r),
                    };
                    r.recipients = recips.clone();
                    r.set_status(RecordStatus::Rascunho);
                    r.event(&by, "reconciled", format!("envio anterior interrompido: rascunho {id} encontrado no TAE; publicando"));
                    if let Err(m) = run.put(&[&r]).await {
                        return Outcome::failed(item, m).with_record(&r);
                    }
                    if let Err((what, e)) =
                        register_signers(run, plan, &recips, Registering::All).await
                    {
                        return Outcome::tae_failed(item, &what, &e).with_record(&r);
                    }
                    return finish_publish(run, plan, item, r, &name, &by).await;
                }
                let new_status = RecordStatus::from_tae(status).unwrap_or(RecordStatus::Pendente);
                r.set_status(new_status);
                if r.sent_at.is_none() {
                    r.sent_at = Some(crate::records::now());
                    r.sent_by = Some(by.clone());
                }
                r.event(&by, "reconciled", format!("envio anterior interrompido: documento {id} já publicado no TAE foi adotado (situação {})", new_status.label()));
                if let Err(m) = run.put(&[&r]).await {
                    return Outcome::failed(item, m).with_record(&r);
                }
                return Outcome::new(
                    item,
                    OutcomeKind::Sent,
                    format!("{}: o envio anterior havia sido interrompido; o documento nº {id} já publicado no TOTVS Assinatura Eletrônica foi adotado (não foi reenviado).", item.label()),
                )
                .with_record(&r);
            }
            Ok(None) => {
                r.event(&by, "reconciled", "envio anterior interrompido: nenhum documento encontrado no TAE; enviando novamente");
                r.document_id = None;
                r.set_status(RecordStatus::Enviando);
                rec = Some(r);
            }
        }
    }

    let recips = match validated {
        Ok(v) => v,
        Err(o) => {
            return match &rec {
                Some(r) => o.with_record(r),
                None => o,
            }
        }
    };
    // The PDF.
    let (pdf, sha256): (HostBytes, String) = match &plan.source {
        Source::File { pdf, sha256, .. } => (pdf.clone(), sha256.clone()),
        Source::Report { report_code } => match run.host.report_render(report_code, &c.key) {
            Ok(b) => {
                if let Err(m) = check_pdf(&b, plan.max_bytes) {
                    return Outcome::failed(
                        item,
                        format!("o relatório {report_code} gerou um documento inválido: {m}."),
                    );
                }
                let sha256 = format!("{:x}", Sha256::digest(&b));
                (HostBytes::owned(b), sha256)
            }
            Err(e) => {
                return Outcome::failed(
                    item,
                    format!(
                        "não foi possível gerar o relatório {report_code}: {}.",
                        e.message
                    ),
                )
            }
        },
    };
    let mut r = rec.unwrap_or_else(|| Record::new(c.data_server(), &c.key, &by));
    // A new attempt: its identity and the name TAE will keep, recorded before the upload.
    r.new_send_attempt(&name);
    r.file_name = file_name_for(c, plan);
    r.file_size = pdf.len() as u64;
    r.sha256 = sha256;
    r.recipients = recips;
    r.last_error = None;
    // Recorded before any remote call of the send.
    if let Err(m) = run.put(&[&r]).await {
        return Outcome::failed(item, m);
    }
    // Signers another contract of the batch is registering right now are awaited before the
    // publish (below): this contract uploads meanwhile.
    let deferred =
        match register_signers(run, plan, &r.recipients, Registering::DeferInFlight).await {
            Ok(d) => d,
            Err((what, e)) => {
                let o = Outcome::tae_failed(item, &what, &e);
                r.set_status(RecordStatus::Falhou);
                r.last_error = Some(o.message.clone());
                r.event(&by, "error", o.message.clone());
                let _ = run.put(&[&r]).await;
                return o.with_record(&r);
            }
        };
    if let Err(e) = run.still_holds(item) {
        return e.outcome(item).with_record(&r);
    }
    let file_name = r.file_name.clone();
    let envelope = r.document_name.clone();
    let uploaded = run
        .tae
        .call(|t| {
            let (envelope, file_name, pdf) = (envelope.clone(), file_name.clone(), pdf.clone());
            async move { run.tae.client.upload(&t, &envelope, &file_name, &pdf).await }
        })
        .await;
    let id = match uploaded {
        Ok(id) => id,
        Err(e) => {
            let o = Outcome::tae_failed(item, "o envio do PDF falhou", &e);
            r.set_status(RecordStatus::Falhou);
            r.last_error = Some(o.message.clone());
            r.event(&by, "error", format!("upload: {e}"));
            let _ = run.put(&[&r]).await;
            return o.with_record(&r);
        }
    };
    r.document_id = Some(id);
    r.set_status(RecordStatus::Rascunho);
    r.event(
        &by,
        "uploaded",
        format!("rascunho {id} criado ({} bytes)", r.file_size),
    );
    if let Err(m) = run.put(&[&r]).await {
        return Outcome::failed(item, m).with_record(&r);
    }
    if !deferred.is_empty() {
        if let Err((what, e)) =
            register_signers(run, plan, &r.recipients, Registering::Only(&deferred)).await
        {
            // The draft stays "rascunho" with its id: a rerun registers the signer and
            // publishes this draft instead of uploading again.
            let mut o = Outcome::tae_failed(item, &what, &e);
            o.message = format!(
                "{} O rascunho nº {id} foi mantido e será publicado na próxima execução.",
                o.message
            );
            r.last_error = Some(o.message.clone());
            r.event(&by, "error", format!("register: {e}"));
            let _ = run.put(&[&r]).await;
            return o.with_record(&r);
        }
    }
    finish_publish(run, plan, item, r, &name, &by).await
}

/// How [`register_signers`] treats the recipients.
#[derive(Clone, Copy)]
enum Registering<'a> {
    /// Every one, waiting for each registration.
    All,
    /// Every one, except those whose registration another contract of the batch has started
    /// and not finished: their positions are answered, for the caller to await before the
    /// publish.
    DeferInFlight,
    /// Only these positions (the ones deferred earlier).
    Only(&'a [usize]),
}

/// Registers, with the "login" authentication type, the signers with a CPF (TAE answers
/// "already registered" for those it has). Answers the positions deferred
/// ([`Registering::DeferInFlight`]); a failure answers what failed (in Portuguese, naming the
/// person) and TAE's error.
async fn register_signers(
    run: &Run<'_>,
    plan: &SendPlan,
    recips: &[Recipient],
    how: Registering<'_>,
) -> Result<Vec<usize>, (String, TaeError)> {
    let mut deferred = Vec::new();
    if plan.auth_type != RecipientAuthType::Login {
        return Ok(deferred);
    }
    for (i, r) in recips.iter().enumerate() {
        let Some(cpf) = &r.cpf else { continue };
        match how {
            Registering::Only(only) if !only.contains(&i) => continue,
            Registering::DeferInFlight if run.registration_in_flight(&r.email) => {
                deferred.push(i);
                continue;
            }
            _ => {}
        }
        if let Err(e) = run.ensure_recipient(&r.email, &r.name, cpf).await {
            let who = if i == 0 {
                "o responsável financeiro"
            } else {
                "o destinatário"
            };
            return Err((
                format!(
                    "não foi possível cadastrar {who} {} ({}) no TOTVS Assinatura Eletrônica",
                    r.name, r.email
                ),
                e,
            ));
        }
    }
    Ok(deferred)
}

async fn finish_publish(
    run: &Run<'_>,
    plan: &SendPlan,
    item: &Item,
    mut r: Record,
    name: &str,
    by: &str,
) -> Outcome {
    let id = r.document_id.unwrap_or_default();
    if let Err(e) = run.still_holds(item) {
        return e.outcome(item).with_record(&r);
    }
    let publication = publication(plan, id, name, &r.recipients);
    match publish_checked(run, &publication, id).await {
        Ok(status) => {
            let st = RecordStatus::from_tae(status).unwrap_or(RecordStatus::Pendente);
            r.set_status(if st == RecordStatus::Rascunho {
                RecordStatus::Pendente
            } else {
                st
            });
            r.sent_by = Some(by.to_string());
            r.sent_at = Some(crate::records::now());
            r.last_error = None;
            r.event(
                by,
                "published",
                format!(
                    "documento {id} publicado para {} destinatário(s)",
                    r.recipients.len()
                ),
            );
            if let Err(m) = run.put(&[&r]).await {
                // The document is published; the next run reconciles the record by its id.
                return Outcome::failed(item, format!("documento nº {id} publicado, mas {m}"))
                    .with_record(&r);
            }
            Outcome::new(
                item,
                OutcomeKind::Sent,
                format!(
                    "{}: documento nº {id} enviado para assinatura de {} ({}).",
                    item.label(),
                    r.recipients[0].name,
                    r.recipients[0].email
                ),
            )
            .with_record(&r)
        }
        Err(e) => {
            // Stays "rascunho" with its id: a rerun publishes this draft instead of uploading again.
            let o = Outcome::tae_failed(
                item,
                &format!("a publicação do documento nº {id} falhou"),
                &e,
            );
            r.last_error = Some(o.message.clone());
            r.event(by, "error", format!("publish: {e}"));
            let _ = run.put(&[&r]).await;
            o.with_record(&r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_checks() {
        assert!(check_pdf(b"%PDF-1.7 ...", 100).is_ok());
        assert!(check_pdf(b"", 100).is_err());
        assert!(check_pdf(b"GIF89a", 100).is_err());
        assert!(check_pdf(&[b'%', b'P', b'D', b'F', b'-', 0, 0, 0], 5).is_err());
    }

    #[test]
    fn recipient_roles_and_body() {
        let v = vec![Person {
            name: "V".into(),
            email: "v@x.com".into(),
            cpf: None,
        }];
        let w = vec![Person {
            name: "W".into(),
            email: "w@x.com".into(),
            cpf: Some("52998224725".into()),
        }];
        let fr = Responsible {
            name: "Maria".into(),
            cpf: "12345678909".into(),
            email: "m@x.com".into(),
        };
        let r = recipients(&fr, &[], &v, &w);
        assert_eq!(
            r.iter().map(|r| r.role).collect::<Vec<_>>(),
            vec![Role::Signer, Role::Validator, Role::Witness]
        );
        let body = |r: &Recipient, first: bool, auth: crate::tae::RecipientAuth| {
            serde_json::to_value(crate::tae::wire::RecipientBody::new(
                &new_recipient(r, first),
                auth,
            ))
            .unwrap()
        };
        assert_eq!(
            r.iter()
                .map(|x| body(x, false, crate::tae::RecipientAuth::Login)["acao"].clone())
                .collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        let t = body(&r[0], true, crate::tae::RecipientAuth::EmailCode);
        assert_eq!(t["papelAssinante"], "Responsável financeiro");
        assert_eq!(t["tipoAutenticacao"], 2);
        assert_eq!(t["tipoEnvioCodigo"], 1);
        assert_eq!(t["identificacao"], "12345678909");
        let t = body(&r[1], false, crate::tae::RecipientAuth::Login);
        assert!(t.get("identificacao").is_none());
        assert_eq!(t["acao"], 1);
    }
}

//! The demo: the whole process as a school would run it, end to end, against the embedded
//! tae-sim — no input needed.
//!
//! 1. start tae-sim on loopback;
//! 2. create the school database;
//! 3. test the connection;
//! 4. send every contract (authenticating once, registering the RM user through the CPF
//!    screen; per-contract errors shown);
//! 5. send again (nothing is sent twice);
//! 6. the responsibles sign in the portal, one rejects;
//! 7. check: contracts become "Assinado";
//! 8. update one responsible's e-mail;
//! 9. delete one pending document;
//! 10. reconcile with TAE: drift made behind RM's back (a signature in the portal, an orphan
//!     draft left by a send whose upload answer was lost) is found in a dry run, then mended;
//! 11. download the signed PDFs;
//! 12. list the integration attachment; then a summary.

use crate::db::{SchoolDb, ACTIVE_STATUSES};
use crate::host::{ProgressSink, RmHost};
use crate::pdf::CONTRACT_REPORT_CODE;
use crate::plugin::Plugin;
use crate::portal::Portal;
use crate::seed::{seed_demo, DEMO_PERIOD, DEMO_RM_USER, DEMO_RM_USER_CPF};
use crate::table;
use crate::ui::UiScript;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;

/// The RM session of the demo.
pub const DEMO_SESSION: &str = "rm-sessao-demo-1";
/// The new e-mail the demo gives one responsible before "update e-mails".
pub const DEMO_NEW_EMAIL: &str = "novo.email.responsavel@example.com";
/// The validator named in the demo's send (the school's pedagogical coordination).
pub const DEMO_VALIDATOR_EMAIL: &str = "coordenacao@esperanca.example.com";
/// The reason of the demo's rejection.
pub const DEMO_REJECTION_REASON: &str =
    "O valor da parcela está diferente do combinado na matrícula.";

/// How to run the demo.
pub struct DemoOptions {
    /// Where the database and the PDFs go (recreated).
    pub output_dir: PathBuf,
    /// Print nothing (tests).
    pub quiet: bool,
    /// Show a progress bar during batches.
    pub progress_bar: bool,
    /// The plugin; default: [`Plugin::load_default`].
    pub plugin: Option<Plugin>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            output_dir: PathBuf::from("demo-output"),
            quiet: false,
            progress_bar: false,
            plugin: None,
        }
    }
}

/// One step's raw answer.
#[derive(Clone, Debug)]
pub struct DemoStep {
    pub name: String,
    pub status: i32,
    pub response: Value,
    pub elapsed_ms: u128,
}

/// What the demo did, for the summary and the end-to-end test. Holds the running tae-sim.
pub struct DemoOutcome {
    pub sim: tae_sim::SimServer,
    pub db_path: PathBuf,
    pub sent_pdf_dir: PathBuf,
    pub signed_pdf_dir: PathBuf,
    pub steps: Vec<DemoStep>,
    /// Contracts whose documents the responsibles signed in the portal.
    pub signed_in_portal: Vec<String>,
    /// The contract whose document only the responsible signed (validator pending).
    pub partially_signed: Option<String>,
    /// The contract whose responsible rejected the document.
    pub rejected: Option<String>,
    /// The contract whose responsible's e-mail changed (update e-mails).
    pub email_updated: Option<String>,
    /// The contract whose document was deleted.
    pub deleted: Option<String>,
    /// Reconcile's drift: the contract signed in the portal behind RM's back, and the contract
    /// whose send left orphan drafts (with their ids).
    pub drift_signed: Option<String>,
    pub drift_orphans: Option<(String, Vec<i64>)>,
    /// Contracts that failed to send (with the plugin's message).
    pub failed_to_send: Vec<(String, String)>,
    /// Things that did not go as the demo expects (empty on success).
    pub problems: Vec<String>,
    /// How many times the plugin asked for each screen.
    pub auth_screens: usize,
    pub cpf_screens: usize,
    pub elapsed_ms: u128,
}

impl DemoOutcome {
    pub fn step(&self, name: &str) -> Option<&DemoStep> {
        self.steps.iter().find(|s| s.name == name)
    }
}

struct Out {
    quiet: bool,
}

impl Out {
    fn say(&self, s: impl AsRef<str>) {
        if !self.quiet {
            println!("{}", table::fit(s.as_ref()));
        }
    }
    fn header(&self, n: usize, title: &str) {
        self.say(format!("\n[{n}/12] {title}"));
    }
}

fn results(response: &Value) -> Vec<Value> {
    response
        .get("results")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn record_str(r: &Value, k: &str) -> String {
    r.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// The demo recreates its database; a file of that name that is not a host-sim database (not
/// SQLite, or SQLite without the school's tables) is refused untouched instead.
fn refuse_foreign_file(path: &std::path::Path) -> Result<(), String> {
    let Ok(head) = std::fs::read(path).map(|b| b.into_iter().take(16).collect::<Vec<u8>>()) else {
        return Ok(()); // missing (or unreadable: opening it will say so)
    };
    let refuse = || {
        format!(
            "{} não é um banco de dados do host-sim; a demo não o apaga. Use outra pasta com \
             --output.",
            path.display()
        )
    };
    if head.is_empty() {
        return Ok(());
    }
    if head != b"SQLite format 3\0" {
        return Err(refuse());
    }
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|_| refuse())?;
    let ours: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN \
             ('contracts', 'integration_records')",
            [],
            |r| r.get(0),
        )
        .map_err(|_| refuse())?;
    if ours == 2 {
        Ok(())
    } else {
        Err(refuse())
    }
}

/// Runs the demo. Errors only when it cannot even start (no plugin, no port, no disk); problems
/// along the way are listed in [`DemoOutcome::problems`].
pub fn run(opts: DemoOptions) -> Result<DemoOutcome, String> {
    let started = Instant::now();
    let out = Out { quiet: opts.quiet };
    let plugin = match opts.plugin {
        Some(p) => p,
        None => Plugin::load_default()?,
    };
    let mut problems: Vec<String> = Vec::new();
    let mut steps: Vec<DemoStep> = Vec::new();

    // 1. tae-sim
    out.header(
        1,
        "Iniciando o TOTVS Assinatura Eletrônica simulado (tae-sim)",
    );
    let sim = tae_sim::SimServer::start(tae_sim::SimOptions::default())
        .map_err(|e| format!("não foi possível iniciar o tae-sim ({e})"))?;
    // As in the real service: a recipient who logs in must have confirmed their account.
    sim.state().set_strict_signers(true);
    let base = sim.base_url();
    out.say(format!(
        "  tae-sim em {base} (administrador {})",
        tae_sim::ADMIN_EMAIL
    ));
    let portal = Portal::new(&base)?;

    // 2. the school database
    out.header(2, "Criando o banco de dados da escola (SQLite)");
    std::fs::create_dir_all(&opts.output_dir).map_err(|e| {
        format!(
            "não foi possível criar a pasta {} ({e})",
            opts.output_dir.display()
        )
    })?;
    let output_dir = opts
        .output_dir
        .canonicalize()
        .unwrap_or_else(|_| opts.output_dir.clone());
    let db_path = output_dir.join("escola-demo.db");
    refuse_foreign_file(&db_path)?;
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db_path.display()));
        let _ = std::fs::remove_file(p);
    }
    let sent_pdf_dir = output_dir.join("pdfs").join("enviados");
    let signed_pdf_dir = output_dir.join("pdfs").join("assinados");
    let _ = std::fs::remove_dir_all(output_dir.join("pdfs"));
    let db = SchoolDb::open(&db_path).map_err(|e| e.to_string())?;
    let keys = seed_demo(&db).map_err(|e| e.to_string())?;
    db.configure_tae(&base, tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
        .map_err(|e| e.to_string())?;
    let contracts = db.all_contracts().map_err(|e| e.to_string())?;
    let rm_user = db
        .user(DEMO_RM_USER)
        .map_err(|e| e.to_string())?
        .ok_or("o usuário RM da demo não está no banco")?;
    out.say(format!(
        "  {} contratos do período {DEMO_PERIOD} em 2 cursos; usuário RM: {} <{}>",
        keys.len(),
        rm_user.name,
        rm_user.email
    ));
    out.say(format!("  banco: {}", db_path.display()));

    let host = RmHost::new(db, DEMO_RM_USER);
    host.set_pdf_dir(Some(sent_pdf_dir.clone()));
    host.set_files_dir(Some(signed_pdf_dir.clone()));
    host.set_ui(
        UiScript::with_credentials(tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
            .then_cpf(DEMO_RM_USER_CPF),
    );
    if opts.progress_bar && !opts.quiet {
        host.set_progress(ProgressSink::Bar);
    }

    let mut run_step = |name: &str, status: i32, response: Value, t: Instant| -> DemoStep {
        let step = DemoStep {
            name: name.to_string(),
            status,
            response,
            elapsed_ms: t.elapsed().as_millis(),
        };
        steps.push(step.clone());
        step
    };
    let show_execute = |out: &Out, step: &DemoStep, problems: &mut Vec<String>| {
        if step.status == 0 {
            let notices = table::notices(&step.response);
            if !notices.is_empty() {
                out.say(notices);
            }
            out.say(table::execute_results(&step.response));
            out.say(format!(
                "  resumo: {}",
                table::execute_summary(&step.response)
            ));
        } else {
            out.say(format!(
                "  ERRO: {}",
                table::error_text(step.status, &step.response)
            ));
            problems.push(format!(
                "{}: {}",
                step.name,
                table::error_text(step.status, &step.response)
            ));
        }
    };

    // 3. test the connection (configure → test, with the global parameters)
    out.header(
        3,
        "Testando a conexão (Parâmetros Globais → TOTVS Assinatura Eletrônica)",
    );
    let t = Instant::now();
    let (status, response) = plugin.configure(&host, &json!({"action": "test"}));
    let step = run_step("configure_test", status, response, t);
    if status == 0 && step.response["login_ok"] != true {
        problems.push(format!("teste de conexão: não entrou: {}", step.response));
    }
    if status == 0 {
        out.say(format!(
            "  {} (entrou: {}, {} ms)",
            record_str(&step.response, "message"),
            if step.response["login_ok"] == true {
                "sim"
            } else {
                "não"
            },
            step.response["latency_ms"]
        ));
    } else {
        out.say(format!(
            "  ERRO: {}",
            table::error_text(status, &step.response)
        ));
        problems.push(format!(
            "configure test: {}",
            table::error_text(status, &step.response)
        ));
    }

    // 4. send every contract of the period
    out.header(
        4,
        "Enviando os contratos para assinatura (opção Enviar documento)",
    );
    out.say("  (a tela de autenticação e a de CPF são respondidas pelo roteiro da demo)");
    out.say(format!(
        "  assinante: o responsável financeiro de cada contrato; validadora: {DEMO_VALIDATOR_EMAIL}"
    ));
    let send_request = json!({
        "session": DEMO_SESSION,
        "invoked_from": {"kind": "menu", "filter": {"codcoligada": 1, "period": DEMO_PERIOD}},
        "option": "send",
        "params": {
            "source": {"kind": "report", "report_code": CONTRACT_REPORT_CODE},
            "validators": [{
                "name": "Sônia Araújo (Coordenação Pedagógica)",
                "email": DEMO_VALIDATOR_EMAIL,
                "cpf": crate::seed::cpf_from_base(246_813_579),
            }],
        },
    });
    let t = Instant::now();
    let (status, response) = plugin.execute(&host, &send_request);
    let step = run_step("send", status, response, t);
    show_execute(&out, &step, &mut problems);
    let auth_after_send = host
        .ui_requests()
        .iter()
        .filter(|(m, _)| m == "ui.authenticate")
        .count();
    let cpf_after_send = host
        .ui_requests()
        .iter()
        .filter(|(m, _)| m == "ui.ask_cpf")
        .count();
    out.say(format!(
        "  telas exibidas: autenticação {auth_after_send}x, CPF {cpf_after_send}x"
    ));
    let failed_to_send: Vec<(String, String)> = results(&step.response)
        .iter()
        .filter(|r| record_str(r, "outcome") == "failed")
        .map(|r| (record_str(r, "contract_key"), record_str(r, "message")))
        .collect();
    let sent_keys: Vec<String> = results(&step.response)
        .iter()
        .filter(|r| record_str(r, "outcome") == "sent")
        .map(|r| record_str(r, "contract_key"))
        .collect();
    if status == 0 && sent_keys.is_empty() {
        problems.push("envio: nenhum contrato foi enviado".into());
    }

    // 5. send again: every contract with an active document is skipped
    out.header(5, "Enviando de novo (nenhum contrato é enviado duas vezes)");
    let t = Instant::now();
    let (status, response) = plugin.execute(&host, &send_request);
    let step = run_step("send_again", status, response, t);
    show_execute(&out, &step, &mut problems);
    let resent: Vec<String> = results(&step.response)
        .iter()
        .filter(|r| record_str(r, "outcome") == "sent")
        .map(|r| record_str(r, "contract_key"))
        .collect();
    if !resent.is_empty() {
        problems.push(format!("reenvio: enviados duas vezes: {resent:?}"));
    }

    // 6. the portal: responsibles sign, one rejects
    out.header(
        6,
        "No portal do TAE: responsáveis e validadora assinam, um rejeita",
    );
    let records = host.db().all_records().map_err(|e| e.to_string())?;
    let mut pending: Vec<(String, i64, String)> = records
        .iter()
        .filter(|r| ACTIVE_STATUSES.contains(&record_str(r, "status").as_str()))
        .filter_map(|r| {
            Some((
                record_str(r, "record_key"),
                r.get("document_id")?.as_i64()?,
                record_str(r, "id"),
            ))
        })
        .collect();
    pending.sort();
    // Responsibles with a single contract (for the e-mail change).
    let mut per_responsible: HashMap<String, usize> = HashMap::new();
    for c in &contracts {
        if let Some(r) = &c.financial_responsible {
            *per_responsible.entry(r.code.clone()).or_default() += 1;
        }
    }
    let by_key: HashMap<String, &crate::db::Contract> =
        contracts.iter().map(|c| (c.key(), c)).collect();
    let mut email_target: Option<(String, i64, String)> = None;
    let mut delete_target: Option<(String, i64, String)> = None;
    let mut reject_target: Option<(String, i64, String)> = None;
    let mut partial_target: Option<(String, i64, String)> = None;
    let mut to_sign: Vec<(String, i64, String)> = Vec::new();
    for p in pending.iter().rev() {
        let single = by_key
            .get(&p.0)
            .and_then(|c| c.financial_responsible.as_ref())
            .map(|r| per_responsible.get(&r.code) == Some(&1))
            .unwrap_or(false);
        if email_target.is_none() && single {
            email_target = Some(p.clone());
        } else if delete_target.is_none() {
            delete_target = Some(p.clone());
        } else if reject_target.is_none() {
            reject_target = Some(p.clone());
        } else if partial_target.is_none() {
            partial_target = Some(p.clone());
        } else {
            to_sign.push(p.clone());
        }
    }
    to_sign.sort();
    // One is left for step 10: signed in the portal without a check (drift reconcile finds).
    let drift_target = to_sign.pop();
    let mut signed_in_portal = Vec::new();
    for (key, doc, _) in &to_sign {
        match portal.confirm_and_act_all(*doc) {
            Ok(d) => {
                signed_in_portal.push(key.clone());
                out.say(format!(
                    "  documento {doc} (contrato {key}): contas confirmadas, responsável e validadora assinaram — situação no TAE: {}",
                    d.get("status_name").and_then(Value::as_str).unwrap_or("?")
                ));
            }
            Err(e) => {
                out.say(format!(
                    "  documento {doc} (contrato {key}): ERRO ao assinar: {e}"
                ));
                problems.push(format!("assinatura no portal do documento {doc}: {e}"));
            }
        }
    }
    // One document where only the responsible signed: the validator has not acted yet.
    let mut partially_signed = None;
    if let Some((key, doc, _)) = &partial_target {
        let signer = portal.document(*doc).ok().and_then(|d| {
            d.get("recipients")?
                .as_array()?
                .iter()
                .find(|r| r.get("acao").and_then(Value::as_i64) == Some(0))
                .and_then(|r| r.get("email")?.as_str().map(str::to_string))
        });
        let result = match &signer {
            Some(email) => {
                let _ = portal.confirm_user(email);
                portal.act(*doc, email)
            }
            None => Err("o documento não tem assinante".into()),
        };
        match result {
            Ok(d) => {
                out.say(format!(
                    "  documento {doc} (contrato {key}): só o responsável assinou — situação no TAE: {}",
                    d.get("status_name").and_then(Value::as_str).unwrap_or("?")
                ));
                partially_signed = Some(key.clone());
            }
            Err(e) => {
                out.say(format!(
                    "  documento {doc} (contrato {key}): ERRO ao assinar: {e}"
                ));
                problems.push(format!(
                    "assinatura parcial no portal do documento {doc}: {e}"
                ));
            }
        }
    }
    let mut rejected = None;
    if let Some((key, doc, _)) = &reject_target {
        let signer = portal
            .document(*doc)
            .ok()
            .and_then(|d| {
                d.get("recipients")?
                    .as_array()?
                    .iter()
                    .find(|r| r.get("acao").and_then(Value::as_i64) == Some(0))
                    .and_then(|r| r.get("email")?.as_str().map(str::to_string))
            })
            .unwrap_or_default();
        match portal.reject(*doc, &signer, DEMO_REJECTION_REASON) {
            Ok(_) => {
                out.say(format!(
                    "  documento {doc} (contrato {key}): REJEITADO por {signer}: \"{DEMO_REJECTION_REASON}\""
                ));
                rejected = Some(key.clone());
            }
            Err(e) => {
                out.say(format!(
                    "  documento {doc} (contrato {key}): ERRO ao rejeitar: {e}"
                ));
                problems.push(format!("rejeição no portal do documento {doc}: {e}"));
            }
        }
    }
    for (key, doc, _) in [&email_target, &delete_target, &drift_target]
        .into_iter()
        .flatten()
    {
        out.say(format!(
            "  documento {doc} (contrato {key}): continua pendente"
        ));
    }

    // 7. check
    out.header(
        7,
        "Conferência da assinatura (contratos finalizados ficam \"Assinado\")",
    );
    let check_request = json!({
        "session": DEMO_SESSION,
        "invoked_from": {"kind": "menu", "filter": {"codcoligada": 1, "period": DEMO_PERIOD}},
        "option": "check",
        "params": {},
    });
    let t = Instant::now();
    let (status, response) = plugin.execute(&host, &check_request);
    let step = run_step("check", status, response, t);
    show_execute(&out, &step, &mut problems);
    let assinados: Vec<String> = host
        .db()
        .contract_statuses()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|(_, s)| s == "Assinado")
        .map(|(k, _)| k)
        .collect();
    out.say(format!(
        "  contratos com situação \"Assinado\" no RM: {} de {}",
        assinados.len(),
        contracts.len()
    ));
    let mut missing_signed: Vec<&String> = signed_in_portal
        .iter()
        .filter(|k| !assinados.contains(k))
        .collect();
    missing_signed.sort();
    if !missing_signed.is_empty() {
        problems.push(format!(
            "conferência: assinados no portal mas não \"Assinado\" no RM: {missing_signed:?}"
        ));
    }

    // 8. update one responsible's e-mail
    out.header(
        8,
        "Atualizando o e-mail de um responsável (opção Atualizar e-mail)",
    );
    let mut email_updated = None;
    if let Some((key, doc, _)) = &email_target {
        let contract = by_key.get(key).copied();
        let (code, old) = contract
            .and_then(|c| c.financial_responsible.as_ref())
            .map(|r| (r.code.clone(), r.email.clone().unwrap_or_default()))
            .unwrap_or_default();
        host.db()
            .set_responsible_email(&code, Some(DEMO_NEW_EMAIL))
            .map_err(|e| e.to_string())?;
        out.say(format!(
            "  no RM, o responsável {code} do contrato {key} passou de {old} para {DEMO_NEW_EMAIL}"
        ));
        let t = Instant::now();
        let (status, response) = plugin.execute(
            &host,
            &json!({
                "session": DEMO_SESSION,
                "invoked_from": {"kind": "contract_view", "contract_keys": [key]},
                "option": "update_emails",
                "params": {},
            }),
        );
        let step = run_step("update_emails", status, response, t);
        show_execute(&out, &step, &mut problems);
        let now_recipients: Vec<String> = portal
            .document(*doc)
            .ok()
            .and_then(|d| {
                Some(
                    d.get("recipients")?
                        .as_array()?
                        .iter()
                        .filter_map(|r| r.get("email")?.as_str().map(str::to_string))
                        .collect(),
                )
            })
            .unwrap_or_default();
        out.say(format!(
            "  destinatários do documento {doc} no TAE: {}",
            now_recipients.join(", ")
        ));
        if !now_recipients.iter().any(|e| e == DEMO_NEW_EMAIL) {
            problems.push(format!(
                "atualizar e-mail: {DEMO_NEW_EMAIL} não é destinatário do documento {doc}"
            ));
        }
        email_updated = Some(key.clone());
    } else {
        problems.push("atualizar e-mail: nenhum documento pendente para atualizar".into());
    }

    // 9. delete one pending document (from the integration attachment)
    out.header(
        9,
        "Excluindo um documento pendente (opção Excluir documento, pelo anexo)",
    );
    let mut deleted = None;
    if let Some((key, doc, record_id)) = &delete_target {
        let t = Instant::now();
        let (status, response) = plugin.execute(
            &host,
            &json!({
                "session": DEMO_SESSION,
                "invoked_from": {"kind": "attachment", "record_ids": [record_id]},
                "option": "delete",
                "params": {},
            }),
        );
        let step = run_step("delete", status, response, t);
        show_execute(&out, &step, &mut problems);
        let tae_status = portal
            .document(*doc)
            .ok()
            .and_then(|d| {
                d.get("status_name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        out.say(format!("  documento {doc} no TAE: {tae_status}"));
        deleted = Some(key.clone());
    } else {
        problems.push("excluir: nenhum documento pendente para excluir".into());
    }

    // 10. reconcile: drift behind RM's back, found (dry run) and mended
    out.header(
        10,
        "Conciliando com o TOTVS Assinatura Eletrônica (opção Conciliar): simulação, depois correção",
    );
    let mut drift_signed = None;
    if let Some((key, doc, _)) = &drift_target {
        match portal.confirm_and_act_all(*doc) {
            Ok(_) => {
                out.say(format!(
                    "  no portal, sem passar pelo RM: o documento {doc} (contrato {key}) foi assinado"
                ));
                signed_in_portal.push(key.clone());
                drift_signed = Some(key.clone());
            }
            Err(e) => problems.push(format!(
                "conciliar: assinatura no portal do documento {doc}: {e}"
            )),
        }
    }
    let mut drift_orphans = None;
    if let Some((key, _, _)) = &delete_target {
        // A send whose upload answer is lost: the draft exists in TAE, the record failed.
        let before: Vec<i64> = portal
            .documents()
            .unwrap_or_default()
            .iter()
            .filter_map(|d| d.get("id")?.as_i64())
            .collect();
        let _ = portal.set_faults(
            &json!({"hostile": {"routes": {"POST /documents/v1/envelopes/upload": "truncated_json"}}}),
        );
        let t = Instant::now();
        let mut resend = send_request.clone();
        resend["invoked_from"] = json!({"kind": "contract_view", "contract_keys": [key]});
        let (status, response) = plugin.execute(&host, &resend);
        let _ = portal.set_faults(&json!({}));
        let step = run_step("send_interrupted", status, response, t);
        show_execute(&out, &step, &mut problems);
        let orphans: Vec<i64> = portal
            .documents()
            .unwrap_or_default()
            .iter()
            .filter(|d| d.get("status").and_then(Value::as_i64) == Some(5))
            .filter_map(|d| d.get("id")?.as_i64())
            .filter(|id| !before.contains(id))
            .collect();
        out.say(format!(
            "  o envio do contrato {key} perdeu a resposta do TAE: rascunho(s) {orphans:?} ficaram no TAE sem registro que aponte para eles"
        ));
        if orphans.is_empty() {
            problems.push("conciliar: o envio interrompido não deixou rascunho no TAE".into());
        }
        drift_orphans = Some((key.clone(), orphans));
    }
    let reconcile_request = |fix: bool| {
        json!({
            "session": DEMO_SESSION,
            "invoked_from": {"kind": "menu", "filter": {"codcoligada": 1, "period": DEMO_PERIOD}},
            "option": "reconcile",
            "params": {"fix": fix},
        })
    };
    out.say("  simulação (nada é alterado):");
    let t = Instant::now();
    let (status, response) = plugin.execute(&host, &reconcile_request(false));
    let step = run_step("reconcile_dry_run", status, response, t);
    show_execute(&out, &step, &mut problems);
    let found = |step: &DemoStep, kind: &str, key: &str| {
        results(&step.response)
            .iter()
            .any(|r| record_str(r, "outcome") == kind && record_str(r, "contract_key") == key)
    };
    if let Some(key) = &drift_signed {
        if !found(&step, "record_behind", key) {
            problems.push(format!(
                "conciliar: a assinatura no portal do contrato {key} não foi encontrada"
            ));
        }
    }
    if let Some((key, orphans)) = &drift_orphans {
        if !orphans.is_empty() && !found(&step, "orphan_draft", key) {
            problems.push(format!(
                "conciliar: o rascunho órfão do contrato {key} não foi encontrado"
            ));
        }
    }
    out.say("  correção (--fix):");
    let t = Instant::now();
    let (status, response) = plugin.execute(&host, &reconcile_request(true));
    let step = run_step("reconcile_fix", status, response, t);
    show_execute(&out, &step, &mut problems);
    if let Some(key) = &drift_signed {
        let signed = host
            .db()
            .contract_statuses()
            .map_err(|e| e.to_string())?
            .into_iter()
            .any(|(k, s)| &k == key && s == "Assinado");
        out.say(format!(
            "  contrato {key} no RM: {}",
            if signed { "Assinado" } else { "não assinado" }
        ));
        if !signed {
            problems.push(format!(
                "conciliar: o contrato {key} não ficou \"Assinado\""
            ));
        }
    }
    if let Some((_, orphans)) = &drift_orphans {
        for id in orphans {
            let st = portal
                .document(*id)
                .ok()
                .and_then(|d| {
                    d.get("status_name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_default();
            out.say(format!("  rascunho {id} no TAE: {st}"));
            if portal
                .document(*id)
                .ok()
                .and_then(|d| d.get("status")?.as_i64())
                != Some(7)
            {
                problems.push(format!(
                    "conciliar: o rascunho órfão {id} não foi cancelado"
                ));
            }
        }
    }

    // The contracts "Assinado" now (the one signed behind RM's back included).
    let assinados: Vec<String> = host
        .db()
        .contract_statuses()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|(_, s)| s == "Assinado")
        .map(|(k, _)| k)
        .collect();

    // 11. download the signed documents
    out.header(11, "Baixando os documentos assinados (com manifesto)");
    if assinados.is_empty() {
        out.say("  nenhum contrato assinado para baixar");
    } else {
        let t = Instant::now();
        let (status, response) = plugin.execute(
            &host,
            &json!({
                "session": DEMO_SESSION,
                "invoked_from": {"kind": "contract_view", "contract_keys": assinados},
                "option": "download",
                "params": {"kind": 2},
            }),
        );
        let step = run_step("download", status, response, t);
        show_execute(&out, &step, &mut problems);
    }

    // 12. the integration attachment
    out.header(
        12,
        "Anexo de integração com o TOTVS Assinatura Eletrônica (todos os documentos enviados)",
    );
    let t = Instant::now();
    let (status, response) = plugin.attachment_list(&host, &json!({"page": 1, "page_size": 50}));
    let step = run_step("attachment_list", status, response, t);
    if status == 0 {
        let recs = step
            .response
            .get("records")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        out.say(table::records(&recs));
        out.say(format!("  {} registro(s)", step.response["total"]));
    } else {
        out.say(format!(
            "  ERRO: {}",
            table::error_text(status, &step.response)
        ));
        problems.push(format!(
            "attachment_list: {}",
            table::error_text(status, &step.response)
        ));
    }

    // Invariant: no contract has two active documents.
    let mut active: BTreeMap<String, usize> = BTreeMap::new();
    for r in host.db().all_records().map_err(|e| e.to_string())? {
        if ACTIVE_STATUSES.contains(&record_str(&r, "status").as_str()) {
            *active.entry(record_str(&r, "record_key")).or_default() += 1;
        }
    }
    let doubled: Vec<_> = active.iter().filter(|(_, n)| **n > 1).collect();
    if !doubled.is_empty() {
        problems.push(format!("contratos com dois documentos ativos: {doubled:?}"));
    }

    // The plugin only ever appends to a record's history.
    for w in host.host_warnings() {
        problems.push(format!("host: {w}"));
    }
    if host.foreign_thread_calls() > 0 {
        problems.push(format!(
            "{} chamada(s) do plugin ao host vieram de outra thread que não a da chamada",
            host.foreign_thread_calls()
        ));
    }
    if host.outstanding_buffers() != 0 {
        problems.push(format!(
            "{} buffer(s) do host não liberados pelo plugin",
            host.outstanding_buffers()
        ));
    }

    let auth_screens = host
        .ui_requests()
        .iter()
        .filter(|(m, _)| m == "ui.authenticate")
        .count();
    let cpf_screens = host
        .ui_requests()
        .iter()
        .filter(|(m, _)| m == "ui.ask_cpf")
        .count();
    let elapsed_ms = started.elapsed().as_millis();

    // Summary
    out.say("\n== Resumo ==");
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for r in host.db().all_records().map_err(|e| e.to_string())? {
        let label = match record_str(&r, "status_label") {
            l if l.is_empty() => record_str(&r, "status"),
            l => l,
        };
        *by_status.entry(label).or_default() += 1;
    }
    out.say(format!(
        "  contratos: {}; enviados: {}; falharam no envio: {}; assinados (\"Assinado\" no RM): {}",
        contracts.len(),
        sent_keys.len(),
        failed_to_send.len(),
        assinados.len()
    ));
    for (key, msg) in &failed_to_send {
        out.say(format!(
            "    falhou {key}: {}",
            table::humanize_message(msg, None)
        ));
    }
    out.say(format!(
        "  registros do anexo por situação: {}",
        by_status
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.say(format!(
        "  telas: autenticação {auth_screens}x (uma vez por sessão), CPF {cpf_screens}x"
    ));
    if let Ok(c) = portal.counters() {
        let total: u64 = c
            .as_object()
            .map(|o| o.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        out.say(format!("  requisições ao TAE: {total}"));
    }
    out.say(format!("  banco de dados: {}", db_path.display()));
    out.say(format!(
        "  PDFs gerados pelo relatório: {}",
        sent_pdf_dir.display()
    ));
    out.say(format!(
        "  PDFs assinados baixados: {}",
        signed_pdf_dir.display()
    ));
    out.say(format!(
        "  tempo total: {}",
        format!("{:.1} s", elapsed_ms as f64 / 1000.0).replace('.', ",")
    ));
    if problems.is_empty() {
        out.say("  demo concluída sem problemas.");
    } else {
        out.say(format!("  {} problema(s):", problems.len()));
        for p in &problems {
            out.say(format!("    - {p}"));
        }
    }

    Ok(DemoOutcome {
        sim,
        db_path,
        sent_pdf_dir,
        signed_pdf_dir,
        steps,
        signed_in_portal,
        partially_signed,
        rejected,
        email_updated,
        deleted,
        drift_signed,
        drift_orphans,
        failed_to_send,
        problems,
        auth_screens,
        cpf_screens,
        elapsed_ms,
    })
}

//! host-sim: a simulated TOTVS RM host for the tae-edu plugin.
//!
//! `host-sim demo` walks the whole process end to end against an embedded tae-sim. The other
//! commands run one entry point at a time against the embedded tae-sim or any TAE base URL.

use clap::{Args, Parser, Subcommand};
use host_sim::db::SchoolDb;
use host_sim::seed::{DEMO_PERIOD, DEMO_RM_USER, DEMO_RM_USER_CPF};
use host_sim::{demo, table, Plugin, ProgressSink, RmHost, UiScript};
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "host-sim",
    version,
    about = "Simulated TOTVS RM host for the tae-edu plugin (TOTVS Educacional ⇄ TOTVS Assinatura Eletrônica)"
)]
struct Cli {
    /// The plugin library (default: libtae_edu of this build; env TAE_EDU_LIB).
    #[arg(long, global = true)]
    lib: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole process end to end against an embedded tae-sim, without any input.
    Demo {
        /// Where the database and the PDFs go.
        #[arg(long, default_value = "demo-output")]
        output: PathBuf,
        /// No progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// Runs one option (send, delete, update_emails, check, download) over contracts.
    Execute(ExecuteArgs),
    /// Describes, validates or tests the global parameters (the RM configuration tab).
    Configure(ConfigureArgs),
    /// Lists the integration attachment (every document sent), filtered and paged.
    Attachments(AttachmentArgs),
    /// Creates a school database (the demo school, or N bulk contracts).
    Seed {
        #[arg(long)]
        db: PathBuf,
        /// N bulk contracts instead of the demo school.
        #[arg(long)]
        bulk: Option<usize>,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// The school database (created with the demo school when missing).
    #[arg(long, default_value = "demo-output/escola.db")]
    db: PathBuf,
    /// A TAE base URL (e.g. https://totvssign.staging.totvs.app or a running tae-sim); without
    /// it, an embedded tae-sim is started and the global parameters point at it.
    #[arg(long)]
    tae_url: Option<String>,
    /// The logged RM user.
    #[arg(long, default_value = DEMO_RM_USER)]
    user: String,
    /// The RM session id.
    #[arg(long, default_value = "rm-sessao-cli")]
    session: String,
    /// Authentication screen: e-mail (with --password); default with the embedded tae-sim: its admin.
    #[arg(long, env = "TAE_EMAIL")]
    email: Option<String>,
    /// Authentication screen: password.
    #[arg(long, env = "TAE_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// CPF screen: the CPF to answer.
    #[arg(long)]
    cpf: Option<String>,
    /// A JSON file answering the screens: {"auth": [{"email","password"}|{"cancel":true}], "cpf": [{"cpf"}|{"cancel":true}]}.
    #[arg(long)]
    script: Option<PathBuf>,
    /// Ask the screens in the terminal even when other answers are given.
    #[arg(long)]
    interactive: bool,
    /// Print the plugin's raw JSON response.
    #[arg(long)]
    json: bool,
    /// Echo the plugin's log lines up to this level (1 error … 5 trace).
    #[arg(long, default_value_t = 2)]
    log_level: i32,
}

#[derive(Args)]
struct ExecuteArgs {
    #[command(flatten)]
    common: Common,
    /// send | delete | update_emails | check | download
    #[arg(long)]
    option: String,
    /// Contract keys (contract view), comma-separated: codcoligada;ra;codcontrato.
    #[arg(long, value_delimiter = ',')]
    keys: Vec<String>,
    /// Integration record ids (attachment), comma-separated.
    #[arg(long, value_delimiter = ',')]
    records: Vec<String>,
    /// Menu filter: period.
    #[arg(long)]
    period: Option<String>,
    /// Menu filter: course.
    #[arg(long)]
    course: Option<String>,
    /// Menu filter: contract status.
    #[arg(long)]
    status: Option<String>,
    /// Menu filter: coligada.
    #[arg(long, default_value_t = 1)]
    coligada: i64,
    /// send: a PDF file instead of the contract report.
    #[arg(long)]
    file: Option<PathBuf>,
    /// send: the report code.
    #[arg(long, default_value = "EDU.CONTRATO")]
    report: String,
    /// download: 1 original, 2 signed with manifest, 3 digitally signed, 4 zip.
    #[arg(long, default_value_t = 2)]
    kind: i64,
    /// Extra params as JSON (merged over the ones built from the flags).
    #[arg(long)]
    params: Option<String>,
}

#[derive(Args)]
struct ConfigureArgs {
    #[command(flatten)]
    common: Common,
    /// describe | validate | test
    action: String,
    /// validate/test: the values as JSON (default for test: the global parameters).
    #[arg(long)]
    values: Option<String>,
}

#[derive(Args)]
struct AttachmentArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    contract: Option<String>,
    #[arg(long)]
    sent_by: Option<String>,
    #[arg(long)]
    sent_from: Option<String>,
    #[arg(long)]
    sent_to: Option<String>,
    #[arg(long, default_value_t = 1)]
    page: i64,
    #[arg(long, default_value_t = 50)]
    page_size: i64,
}

/// The host, the plugin and (when embedded) tae-sim for one command.
struct Session {
    plugin: Plugin,
    host: RmHost,
    _sim: Option<tae_sim::SimServer>,
}

fn load_plugin(lib: &Option<PathBuf>) -> Result<Plugin, String> {
    match lib {
        Some(p) => Plugin::load(p),
        None => Plugin::load_default(),
    }
}

fn open_session(lib: &Option<PathBuf>, c: &Common) -> Result<Session, String> {
    let plugin = load_plugin(lib)?;
    if let Some(parent) = c.db.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
    }
    let fresh = !c.db.exists();
    let db = SchoolDb::open(&c.db).map_err(|e| e.to_string())?;
    if fresh {
        host_sim::seed_demo(&db).map_err(|e| e.to_string())?;
        eprintln!("host-sim: created {} with the demo school", c.db.display());
    }
    let (sim, default_creds) = match &c.tae_url {
        Some(url) => {
            let params = db.params().map_err(|e| e.to_string())?;
            let user = params
                .get("service_user")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let pass = params
                .get("service_password")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            db.configure_tae(url, &user, &pass)
                .map_err(|e| e.to_string())?;
            (None, None)
        }
        None => {
            let sim = tae_sim::SimServer::start(tae_sim::SimOptions::default())
                .map_err(|e| format!("cannot start tae-sim: {e}"))?;
            eprintln!("host-sim: embedded tae-sim at {}", sim.base_url());
            if !db.all_records().map_err(|e| e.to_string())?.is_empty() {
                eprintln!(
                    "host-sim: aviso: o tae-sim embutido começa vazio a cada comando, então os documentos \
                     registrados em {} não existem nele. Para vários comandos seguidos, rode um tae-sim \
                     (`cargo run -p tae-sim`) e use --tae-url; ou use `host-sim demo`.",
                    c.db.display()
                );
            }
            db.configure_tae(
                &sim.base_url(),
                tae_sim::ADMIN_EMAIL,
                tae_sim::ADMIN_PASSWORD,
            )
            .map_err(|e| e.to_string())?;
            (
                Some(sim),
                Some((
                    tae_sim::ADMIN_EMAIL.to_string(),
                    tae_sim::ADMIN_PASSWORD.to_string(),
                )),
            )
        }
    };
    let host = RmHost::new(db, &c.user);
    host.echo_logs(c.log_level);
    let out_dir = c.db.parent().map(PathBuf::from).unwrap_or_default();
    host.set_pdf_dir(Some(out_dir.join("pdfs").join("enviados")));
    host.set_files_dir(Some(out_dir.join("pdfs").join("assinados")));
    let mut script = match &c.script {
        Some(p) => UiScript::from_json(
            &std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        )?,
        None => UiScript::default(),
    };
    if let (Some(e), Some(p)) = (&c.email, &c.password) {
        script = script.then_credentials(e, p);
    } else if c.script.is_none() && !c.interactive {
        if let Some((e, p)) = &default_creds {
            script = script.then_credentials(e, p);
        }
    }
    if let Some(cpf) = &c.cpf {
        script = script.then_cpf(cpf);
    } else if c.script.is_none() && !c.interactive && default_creds.is_some() {
        script = script.then_cpf(DEMO_RM_USER_CPF);
    }
    script.interactive = c.interactive || std::io::stdin().is_terminal();
    host.set_ui(script);
    if std::io::stderr().is_terminal() && !c.json {
        host.set_progress(ProgressSink::Bar);
    }
    Ok(Session {
        plugin,
        host,
        _sim: sim,
    })
}

fn print_error(status: i32, response: &Value) {
    eprintln!("ERRO: {}", table::error_text(status, response));
}

fn cmd_execute(lib: &Option<PathBuf>, a: ExecuteArgs) -> Result<ExitCode, String> {
    let s = open_session(lib, &a.common)?;
    let invoked_from = if !a.records.is_empty() {
        json!({"kind": "attachment", "record_ids": a.records})
    } else if !a.keys.is_empty() {
        json!({"kind": "contract_view", "contract_keys": a.keys})
    } else {
        let mut filter = json!({"codcoligada": a.coligada, "period": a.period.clone().unwrap_or_else(|| DEMO_PERIOD.into())});
        if let Some(c) = &a.course {
            filter["course"] = json!(c);
        }
        if let Some(st) = &a.status {
            filter["status"] = json!(st);
        }
        json!({"kind": "menu", "filter": filter})
    };
    let mut params = match a.option.as_str() {
        "send" => match &a.file {
            Some(f) => json!({"source": {"kind": "file", "path": f}}),
            None => json!({"source": {"kind": "report", "report_code": a.report}}),
        },
        "download" => json!({"kind": a.kind}),
        _ => json!({}),
    };
    if let Some(extra) = &a.params {
        let extra: Value = serde_json::from_str(extra).map_err(|e| format!("--params: {e}"))?;
        if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                p.insert(k.clone(), v.clone());
            }
        }
    }
    let request = json!({
        "session": a.common.session, "invoked_from": invoked_from, "option": a.option, "params": params,
    });
    let (status, response) = s.plugin.execute(&s.host, &request);
    if a.common.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&response).unwrap_or_default()
        );
    } else if status == 0 {
        let notices = table::notices(&response);
        if !notices.is_empty() {
            println!("{notices}");
        }
        println!("{}", table::execute_results(&response));
        println!("  {}", table::execute_summary(&response));
    } else {
        print_error(status, &response);
    }
    Ok(if status == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn cmd_configure(lib: &Option<PathBuf>, a: ConfigureArgs) -> Result<ExitCode, String> {
    let s = open_session(lib, &a.common)?;
    let mut request = json!({"action": a.action});
    if let Some(v) = &a.values {
        request["values"] = serde_json::from_str(v).map_err(|e| format!("--values: {e}"))?;
    } else if a.action == "validate" {
        request["values"] = Value::Object(s.host.db().params().map_err(|e| e.to_string())?);
    }
    let (status, response) = s.plugin.configure(&s.host, &request);
    if a.common.json || status == 0 && a.action != "describe" && a.action != "test" {
        println!(
            "{}",
            serde_json::to_string_pretty(&response).unwrap_or_default()
        );
    } else if status == 0 && a.action == "describe" {
        let rows: Vec<Vec<String>> = response["fields"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|f| {
                let g = |k: &str| match &f[k] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    v => v.to_string(),
                };
                vec![g("name"), g("type"), g("default"), g("label")]
            })
            .collect();
        println!(
            "{}",
            table::render(&["Campo", "Tipo", "Padrão", "Rótulo"], &rows)
        );
    } else if status == 0 {
        println!(
            "  {}\n  login_ok={} latência={} ms usuário={} permissões={}",
            response["message"].as_str().unwrap_or(""),
            response["login_ok"],
            response["latency_ms"],
            response["user"],
            response["permissions"]
        );
    } else {
        print_error(status, &response);
    }
    Ok(if status == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn cmd_attachments(lib: &Option<PathBuf>, a: AttachmentArgs) -> Result<ExitCode, String> {
    let s = open_session(lib, &a.common)?;
    let mut filter = serde_json::Map::new();
    for (k, v) in [
        ("status", &a.status),
        ("contract_key", &a.contract),
        ("sent_by", &a.sent_by),
        ("sent_from", &a.sent_from),
        ("sent_to", &a.sent_to),
    ] {
        if let Some(v) = v {
            filter.insert(k.into(), json!(v));
        }
    }
    let request = json!({"filter": filter, "page": a.page, "page_size": a.page_size});
    let (status, response) = s.plugin.attachment_list(&s.host, &request);
    if a.common.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&response).unwrap_or_default()
        );
    } else if status == 0 {
        let recs = response["records"].as_array().cloned().unwrap_or_default();
        println!("{}", table::records(&recs));
        println!(
            "  página {} ({} por página), {} registro(s) no total",
            response["page"], response["page_size"], response["total"]
        );
    } else {
        print_error(status, &response);
    }
    Ok(if status == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    host_sim::install_crypto_provider();
    match cli.command {
        Command::Demo {
            output,
            no_progress,
        } => {
            let plugin = load_plugin(&cli.lib)?;
            println!(
                "host-sim demo: TOTVS Educacional ⇄ TOTVS Assinatura Eletrônica, de ponta a ponta"
            );
            let outcome = demo::run(demo::DemoOptions {
                output_dir: output,
                quiet: false,
                progress_bar: !no_progress && std::io::stderr().is_terminal(),
                plugin: Some(plugin),
            })?;
            let ok = outcome.problems.is_empty();
            outcome.sim.shutdown();
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Execute(a) => cmd_execute(&cli.lib, a),
        Command::Configure(a) => cmd_configure(&cli.lib, a),
        Command::Attachments(a) => cmd_attachments(&cli.lib, a),
        Command::Seed { db, bulk } => {
            let d = SchoolDb::open(&db).map_err(|e| e.to_string())?;
            let keys = match bulk {
                Some(n) => host_sim::seed_bulk(&d, n),
                None => host_sim::seed_demo(&d),
            }
            .map_err(|e| e.to_string())?;
            println!("{}: {} contratos", db.display(), keys.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("host-sim: {e}");
            ExitCode::from(1)
        }
    }
}

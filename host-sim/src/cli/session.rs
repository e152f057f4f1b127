//! What every one-entry-point command opens: the database (never created here), the plugin,
//! the TAE it talks to, the screens' answers and the progress display.

use super::dbfile::{self, shown};
use super::{interrupt, Common, Failure};
use host_sim::seed::DEMO_RM_USER_CPF;
use host_sim::{Plugin, ProgressEvent, ProgressSink, RmHost, UiScript};
use serde_json::{json, Map, Value};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The host, the plugin and (when embedded) tae-sim for one command.
pub struct Session {
    pub plugin: Plugin,
    pub host: RmHost,
    pub db_path: PathBuf,
    /// Whether the authentication screen has no answer at all (no flags, no script, no
    /// terminal): a "cancelled" login then means nobody could answer.
    pub auth_unanswerable: bool,
    /// With a progress bar on the terminal, the plugin's log lines are shown after the call
    /// (up to this level) instead of through the bar.
    pub deferred_log_level: Option<i32>,
    _sim: Option<tae_sim::SimServer>,
}

/// What a command needs from its session.
#[derive(Default)]
pub struct Needs {
    /// A TAE to talk to (the embedded tae-sim without --tae-url).
    pub tae: bool,
    /// Show progress (and take Ctrl-C as "stop").
    pub progress: bool,
}

pub fn load_plugin(lib: &Option<PathBuf>) -> Result<Plugin, Failure> {
    match lib {
        Some(p) => Plugin::load(p),
        None => Plugin::load_default(),
    }
    .map_err(|e| Failure::cannot_run(format!("não foi possível carregar o plugin ({e})")))
}

/// The URL fields of the global parameters for a TAE base URL.
pub fn tae_url_params(base_url: &str) -> Map<String, Value> {
    let base = base_url.trim().trim_end_matches('/');
    let mut m = Map::new();
    m.insert(
        "auth_url".into(),
        json!(format!("{base}/identityintegration")),
    );
    m.insert("api_url".into(), json!(base));
    m.insert(
        "web_login_url".into(),
        json!(format!("{base}/webapptotvssign/#/auth/login?external=true")),
    );
    m
}

pub fn open(lib: &Option<PathBuf>, c: &Common, needs: Needs) -> Result<Session, Failure> {
    let db = dbfile::open_existing(&c.db).map_err(Failure::cannot_run)?;
    let plugin = load_plugin(lib)?;
    let mut sim = None;
    let mut default_creds = None;
    let mut session_params = None;
    if needs.tae {
        // The TAE of this command goes to the plugin through `params.get` only: the stored
        // parameters change only by `configure set`, so a --tae-url the plugin refuses, or the
        // embedded tae-sim's passing address, is never stored.
        let mut params = db
            .params()
            .map_err(|e| format!("não foi possível ler os parâmetros globais: {e}"))?;
        match &c.tae_url {
            Some(url) => params.extend(tae_url_params(url)),
            None => {
                let s = tae_sim::SimServer::start(tae_sim::SimOptions::default())
                    .map_err(|e| format!("não foi possível iniciar o tae-sim embutido ({e})"))?;
                eprintln!(
                    "host-sim: tae-sim embutido em {} (só durante este comando)",
                    s.base_url()
                );
                if !db.all_records().map_err(|e| e.to_string())?.is_empty() {
                    eprintln!(
                        "{}",
                        host_sim::table::fit(&format!(
                            "host-sim: aviso: o tae-sim embutido começa vazio a cada comando, \
                             então os documentos registrados em {} não existem nele. Para vários \
                             comandos seguidos, rode um tae-sim (`cargo run -p tae-sim`) e use \
                             --tae-url; ou use `host-sim demo`.",
                            shown(&c.db)
                        ))
                    );
                }
                params.extend(tae_url_params(&s.base_url()));
                params.insert("service_user".into(), json!(tae_sim::ADMIN_EMAIL));
                params.insert("service_password".into(), json!(tae_sim::ADMIN_PASSWORD));
                default_creds = Some((
                    tae_sim::ADMIN_EMAIL.to_string(),
                    tae_sim::ADMIN_PASSWORD.to_string(),
                ));
                sim = Some(s);
            }
        }
        session_params =
            Some(serde_json::to_vec(&json!({ "values": params })).expect("a JSON value"));
    }
    let host = RmHost::new(db, &c.user);
    if let Some(answer) = session_params {
        // `params.get` answers this command's parameters (what RM's tab would hold).
        host.set_override("params.get", Box::new(move |_| Some(Ok(answer.clone()))));
    }
    finish(plugin, host, c, needs, sim, default_creds)
}

fn finish(
    plugin: Plugin,
    host: RmHost,
    c: &Common,
    needs: Needs,
    sim: Option<tae_sim::SimServer>,
    default_creds: Option<(String, String)>,
) -> Result<Session, Failure> {
    host.echo_logs(c.log_level);
    let mut script = match &c.script {
        Some(p) => UiScript::from_json(&std::fs::read_to_string(p).map_err(|e| {
            format!(
                "não foi possível ler o roteiro das telas {}: {}",
                shown(p),
                dbfile::io_text(&e)
            )
        })?)
        .map_err(Failure::usage)?,
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
    let auth_unanswerable = script.auth.is_empty() && !script.interactive;
    host.set_ui(script);
    let mut deferred_log_level = None;
    if needs.progress {
        let bar = std::io::stderr().is_terminal() && !c.json;
        if bar {
            host.echo_logs(0);
            deferred_log_level = Some(c.log_level);
        }
        host.set_progress(progress_sink(bar));
    }
    Ok(Session {
        plugin,
        host,
        db_path: c.db.clone(),
        auth_unanswerable,
        deferred_log_level,
        _sim: sim,
    })
}

/// Progress of a batch: a bar on a terminal, else a line on stderr at the first contract and
/// every tenth of the batch (what a log of a scheduled job keeps). Answers "stop" once Ctrl-C
/// was pressed.
fn progress_sink(bar: bool) -> ProgressSink {
    let mut progress_bar: Option<indicatif::ProgressBar> = None;
    let mut last_tenth: Option<u64> = None;
    ProgressSink::Observe(Box::new(move |ev: &ProgressEvent| {
        let (done, total) = (ev.done as u64, ev.total as u64);
        if bar {
            let b = progress_bar.get_or_insert_with(|| {
                let b = indicatif::ProgressBar::new(total);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "  {bar:30.cyan/blue} {pos}/{len} contratos {wide_msg}",
                ) {
                    b.set_style(style);
                }
                b
            });
            b.set_length(total);
            b.set_position(done);
            if done >= total {
                b.finish_and_clear();
            }
        } else {
            let tenth = (done * 10).checked_div(total).unwrap_or(10);
            if last_tenth != Some(tenth) {
                last_tenth = Some(tenth);
                eprintln!("host-sim: andamento: {done} de {total} contratos");
            }
        }
        interrupt::requested()
    }))
}

impl Session {
    /// The plugin's log lines held back while a progress bar was shown.
    pub fn print_deferred_logs(&self) {
        let Some(level) = self.deferred_log_level else {
            return;
        };
        for l in self.host.logs().iter().filter(|l| l.level <= level) {
            let name = match l.level {
                1 => "ERRO",
                2 => "AVISO",
                3 => "INFO",
                4 => "DEBUG",
                _ => "TRACE",
            };
            eprintln!("[plugin {name}] {}", l.message);
        }
    }
}

/// The folder under which a command writes files: `--files-dir`, else the database's folder.
pub fn files_dir(db_path: &Path, given: &Option<PathBuf>) -> PathBuf {
    let dir = match given {
        Some(d) => d.clone(),
        None => db_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    std::path::absolute(&dir).unwrap_or(dir)
}

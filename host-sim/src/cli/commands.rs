//! The commands: each answers its exit code (see [`super::exit`]).

use super::dbfile::{self, shown};
use super::session::{self, Needs, Session};
use super::{
    exit, interrupt, AttachmentArgs, ConfigureAction, ConfigureArgs, ExecOption, ExecuteArgs,
    Failure,
};
use host_sim::seed::DEMO_PERIOD;
use host_sim::{demo, table};
use serde_json::{json, Map, Value};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

type CmdResult = Result<u8, Failure>;

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn parse_json(flag: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text)
        .map_err(|e| Failure::usage(format!("{flag} não é um JSON válido ({e})")))
}

/// Prints the plugin's answer (`shown`) as JSON when `--json` is given. For a refusal (non-zero
/// status) answers the exit code, after printing the refusal in Portuguese unless `--json`;
/// `None` when the plugin answered success.
fn plugin_answer(
    s: &Session,
    json_out: bool,
    status: i32,
    shown: &Value,
    response: &Value,
) -> Option<u8> {
    if json_out {
        println!("{}", pretty(shown));
    }
    if status == 0 {
        return None;
    }
    if !json_out {
        refused(s, status, response);
    }
    Some(exit::REFUSED)
}

/// Prints a whole-call refusal of the plugin; the exit code for it.
fn refused(s: &Session, status: i32, response: &Value) -> u8 {
    let code = response["error"]["code"].as_str().unwrap_or("");
    if code == "CANCELLED" && s.auth_unanswerable {
        // Nobody cancelled: there was no one to ask.
        eprintln!(
            "{}",
            table::fit(
                "ERRO: a tela de autenticação do TOTVS Assinatura Eletrônica não pôde ser \
                 mostrada: não há terminal e nenhuma resposta foi dada. Informe --email e \
                 --password (ou as variáveis TAE_EMAIL e TAE_PASSWORD), ou um roteiro com \
                 --script. Nada foi feito."
            )
        );
        eprintln!(
            "  detalhe técnico: {}",
            table::error_text(status, response)
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .trim_start_matches("detalhe técnico: ")
        );
        return exit::REFUSED;
    }
    // Fields named by the configuration tab's labels.
    let labels = if response["error"]["fields"]
        .as_object()
        .is_some_and(|f| !f.is_empty())
    {
        field_labels(s)
    } else {
        Map::new()
    };
    let label = |k: &str| labels.get(k).and_then(Value::as_str).map(str::to_string);
    eprintln!(
        "{}",
        table::fit(&format!(
            "ERRO: {}",
            table::error_text_with_labels(status, response, &label)
        ))
    );
    exit::REFUSED
}

/// The configuration tab's labels (technical name → label), from `configure describe`.
fn field_labels(s: &Session) -> Map<String, Value> {
    let (status, response) = s.plugin.configure(&s.host, &json!({"action": "describe"}));
    let mut m = Map::new();
    if status == 0 {
        for f in response["fields"].as_array().into_iter().flatten() {
            if let (Some(n), Some(l)) = (f["name"].as_str(), f["label"].as_str()) {
                m.insert(n.into(), json!(l));
            }
        }
    }
    m
}

pub fn demo(lib: &Option<PathBuf>, output: PathBuf, no_progress: bool) -> CmdResult {
    let plugin = session::load_plugin(lib)?;
    println!("host-sim demo: TOTVS Educacional ⇄ TOTVS Assinatura Eletrônica, de ponta a ponta");
    let outcome = demo::run(demo::DemoOptions {
        output_dir: output,
        quiet: false,
        progress_bar: !no_progress && std::io::stderr().is_terminal(),
        plugin: Some(plugin),
    })?;
    let ok = outcome.problems.is_empty();
    outcome.sim.shutdown();
    Ok(if ok { exit::OK } else { exit::CANNOT_RUN })
}

pub fn seed(db: &Path, bulk: Option<usize>, force: bool) -> CmdResult {
    let d = dbfile::create(db, force).map_err(Failure::cannot_run)?;
    let keys = match bulk {
        Some(n) => host_sim::seed_bulk(&d, n),
        None => host_sim::seed_demo(&d),
    }
    .map_err(|e| format!("não foi possível criar a escola em {}: {e}", shown(db)))?;
    println!(
        "banco de dados criado: {} ({} contratos)",
        shown(db),
        keys.len()
    );
    Ok(exit::OK)
}

/// What `--records` / `--keys` select: the entries that exist, and a "not found" line for each
/// one that does not — said the same way for every option.
struct Selection {
    records: Vec<String>,
    keys: Vec<String>,
    missing: Vec<String>,
}

fn select(s: &Session, a: &ExecuteArgs) -> Result<Selection, Failure> {
    let db = s.host.db();
    let mut sel = Selection {
        records: Vec::new(),
        keys: Vec::new(),
        missing: Vec::new(),
    };
    for id in a.records.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
        if db.record(id).map_err(|e| e.to_string())?.is_some() {
            sel.records.push(id.to_string());
        } else {
            sel.missing.push(format!(
                "registro {id} não encontrado no anexo de integração"
            ));
        }
    }
    for key in a.keys.iter().map(|k| k.trim()).filter(|k| !k.is_empty()) {
        if db.contract(key).map_err(|e| e.to_string())?.is_some() {
            sel.keys.push(key.to_string());
        } else {
            sel.missing.push(format!(
                "contrato {key} não encontrado (a chave é codcoligada;ra;codcontrato)"
            ));
        }
    }
    Ok(sel)
}

/// A contract status as stored (`Ativo`), given in any case.
fn contract_status(s: &Session, given: &str) -> String {
    let known = s.host.db().contract_statuses().unwrap_or_default();
    known
        .into_iter()
        .map(|(_, st)| st)
        .find(|st| {
            st.eq_ignore_ascii_case(given.trim())
                || st.to_lowercase() == given.trim().to_lowercase()
        })
        .unwrap_or_else(|| given.trim().to_string())
}

pub fn execute(lib: &Option<PathBuf>, a: ExecuteArgs) -> CmdResult {
    if !a.records.is_empty() && !a.keys.is_empty() {
        return Err(Failure::usage(
            "use --keys (contratos) ou --records (registros do anexo), não os dois",
        ));
    }
    let s = session::open(
        lib,
        &a.common,
        Needs {
            tae: true,
            progress: true,
        },
    )?;
    let Selection {
        records,
        keys,
        missing,
    } = select(&s, &a)?;
    for m in &missing {
        println!("{}", table::fit(&format!("  {m}")));
    }
    let invoked_from = if !a.records.is_empty() {
        if records.is_empty() {
            println!("  nenhum registro encontrado");
            return Ok(exit::NOTHING_MATCHED);
        }
        json!({"kind": "attachment", "record_ids": records})
    } else if !a.keys.is_empty() {
        if keys.is_empty() {
            println!("  nenhum contrato encontrado");
            return Ok(exit::NOTHING_MATCHED);
        }
        json!({"kind": "contract_view", "contract_keys": keys})
    } else {
        let mut filter = json!({"codcoligada": a.coligada, "period": a.period.clone().unwrap_or_else(|| DEMO_PERIOD.into())});
        if let Some(c) = &a.course {
            filter["course"] = json!(c);
        }
        if let Some(st) = &a.status {
            filter["status"] = json!(contract_status(&s, st));
        }
        json!({"kind": "menu", "filter": filter})
    };
    let files_dir = session::files_dir(&s.db_path, &a.files_dir);
    let pdf_dir = files_dir.join("pdfs").join("enviados");
    let signed_dir = files_dir.join("pdfs").join("assinados");
    if a.keep_pdfs {
        s.host.set_pdf_dir(Some(pdf_dir.clone()));
    }
    s.host.set_files_dir(Some(signed_dir.clone()));
    let mut params = match a.option {
        ExecOption::Send => match &a.file {
            Some(f) => {
                let abs = std::path::absolute(f).unwrap_or_else(|_| f.clone());
                if !abs.is_file() {
                    return Err(Failure::cannot_run(format!(
                        "o arquivo {} não existe (opção --file)",
                        abs.display()
                    )));
                }
                json!({"source": {"kind": "file", "path": abs}})
            }
            None => json!({"source": {"kind": "report", "report_code": a.report}}),
        },
        ExecOption::Download => json!({"kind": a.kind}),
        ExecOption::Reconcile => {
            let mut p = json!({"fix": a.fix});
            if let (Some(from), Some(to)) = (&a.from, &a.to) {
                p["period"] = json!({"from": from, "to": to});
            }
            p
        }
        _ => json!({}),
    };
    if a.option != ExecOption::Reconcile && (a.fix || a.from.is_some()) {
        return Err(Failure::usage(
            "--fix, --from e --to valem só para a opção reconcile (conciliar)",
        ));
    }
    if let Some(extra) = &a.params {
        let extra = parse_json("--params", extra)?;
        let Some(e) = extra.as_object() else {
            return Err(Failure::usage("--params deve ser um objeto JSON ({...})"));
        };
        if let Some(p) = params.as_object_mut() {
            for (k, v) in e {
                p.insert(k.clone(), v.clone());
            }
        }
    }
    let request = json!({
        "session": a.common.session, "invoked_from": invoked_from, "option": a.option.name(), "params": params,
    });
    interrupt::install().map_err(Failure::cannot_run)?;
    let started = std::time::SystemTime::now();
    let (status, response) = s.plugin.execute(&s.host, &request);
    s.print_deferred_logs();
    if let Some(code) = plugin_answer(&s, a.common.json, status, &response, &response) {
        return Ok(code);
    }
    let results = response["results"].as_array().cloned().unwrap_or_default();
    if !a.common.json {
        let notices = table::notices(&response);
        if !notices.is_empty() {
            println!("{notices}");
        }
        if results.is_empty() {
            println!("  nenhum contrato encontrado");
        } else {
            println!("{}", table::execute_results(&response));
        }
        println!(
            "{}",
            table::fit(&format!("  resumo: {}", table::execute_summary(&response)))
        );
        announce_files(
            &s,
            &results,
            &signed_dir,
            a.keep_pdfs.then_some(&pdf_dir),
            started,
        );
    }
    if results.is_empty() {
        return Ok(exit::NOTHING_MATCHED);
    }
    let incomplete = results.iter().any(|r| {
        matches!(
            r["outcome"].as_str(),
            Some("failed" | "not_processed" | "held")
        )
    }) || response["summary"]["cancelled"] == true
        || !missing.is_empty();
    Ok(if incomplete { exit::PARTIAL } else { exit::OK })
}

/// Announces, with full paths, the files this run wrote: the downloaded documents and, when
/// kept, the report PDFs.
fn announce_files(
    s: &Session,
    results: &[Value],
    signed_dir: &Path,
    pdf_dir: Option<&PathBuf>,
    started: std::time::SystemTime,
) {
    let downloaded: Vec<&str> = results
        .iter()
        .filter(|r| r["outcome"] == "downloaded")
        .filter_map(|r| r["record_id"].as_str())
        .collect();
    if !downloaded.is_empty() {
        let files = s.host.db().record_files().unwrap_or_default();
        println!("  arquivos gravados:");
        for (record_id, name, size) in files
            .iter()
            .filter(|(id, ..)| downloaded.contains(&id.as_str()))
        {
            let path = signed_dir
                .join(host_sim::host::safe_file_name(record_id))
                .join(host_sim::host::safe_file_name(name));
            if path.is_file() {
                println!(
                    "    {} ({})",
                    path.display(),
                    table::br_size((*size).max(0) as u64)
                );
            }
        }
    }
    if let Some(dir) = pdf_dir {
        let mut written: Vec<(PathBuf, u64)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                (m.is_file() && m.modified().ok()? >= started).then(|| (e.path(), m.len()))
            })
            .collect();
        written.sort();
        if !written.is_empty() {
            println!("  PDFs do relatório guardados ({}):", written.len());
            const LIST_AT_MOST: usize = 20;
            for (p, size) in written.iter().take(LIST_AT_MOST) {
                println!("    {} ({})", p.display(), table::br_size(*size));
            }
            if written.len() > LIST_AT_MOST {
                println!(
                    "    … e mais {} em {}",
                    written.len() - LIST_AT_MOST,
                    dir.display()
                );
            }
        }
    }
}

/// The stored parameters with `values` over them (null removes a field).
fn merged(stored: Map<String, Value>, values: &Map<String, Value>) -> Map<String, Value> {
    let mut m = stored;
    for (k, v) in values {
        if v.is_null() {
            m.remove(k);
        } else {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

fn yes_no(v: &Value) -> &'static str {
    if v == &Value::Bool(true) {
        "sim"
    } else {
        "não"
    }
}

fn type_label(t: &str) -> &str {
    match t {
        "url" => "endereço",
        "text" => "texto",
        "password" => "senha",
        "int" => "número",
        "bool" => "sim/não",
        "enum" => "opções",
        "recipients" => "pessoas",
        other => other,
    }
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => if *b { "sim" } else { "não" }.into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "nenhum".into(),
        other => other.to_string(),
    }
}

pub fn configure(lib: &Option<PathBuf>, a: ConfigureArgs) -> CmdResult {
    let needs_tae = a.action == ConfigureAction::Test;
    let s = session::open(
        lib,
        &a.common,
        Needs {
            tae: needs_tae,
            progress: false,
        },
    )?;
    let given: Map<String, Value> = match &a.values {
        Some(v) => match parse_json("--values", v)? {
            Value::Object(m) => m,
            _ => return Err(Failure::usage("--values deve ser um objeto JSON ({...})")),
        },
        None => Map::new(),
    };
    let stored = || -> Result<Map<String, Value>, Failure> {
        Ok(s.host
            .db()
            .params()
            .map_err(|e| format!("não foi possível ler os parâmetros globais: {e}"))?)
    };
    match a.action {
        ConfigureAction::Describe => {
            let (status, response) = s.plugin.configure(&s.host, &json!({"action": "describe"}));
            if let Some(code) = plugin_answer(&s, a.common.json, status, &response, &response) {
                return Ok(code);
            }
            if !a.common.json {
                let rows: Vec<Vec<String>> = response["fields"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|f| {
                        vec![
                            f["label"].as_str().unwrap_or("").to_string(),
                            f["name"].as_str().unwrap_or("").to_string(),
                            type_label(f["type"].as_str().unwrap_or("")).to_string(),
                            show_value(&f["default"]),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    table::render(&["Campo", "Nome técnico", "Tipo", "Padrão"], &rows)
                );
            }
            Ok(exit::OK)
        }
        ConfigureAction::Show => {
            let p = dbfile::params_for_display(s.host.db()).map_err(Failure::cannot_run)?;
            if a.common.json {
                println!("{}", pretty(&Value::Object(p)));
            } else {
                let labels = field_labels(&s);
                let rows: Vec<Vec<String>> = p
                    .iter()
                    .map(|(k, v)| {
                        vec![
                            labels
                                .get(k)
                                .and_then(Value::as_str)
                                .unwrap_or(k)
                                .to_string(),
                            k.clone(),
                            show_value(v),
                        ]
                    })
                    .collect();
                println!("  parâmetros globais de {}", shown(&s.db_path));
                println!(
                    "{}",
                    table::render(&["Campo", "Nome técnico", "Valor"], &rows)
                );
            }
            Ok(exit::OK)
        }
        ConfigureAction::Validate | ConfigureAction::Set => {
            let mut delta = given.clone();
            if let Some(url) = &a.common.tae_url {
                if a.action == ConfigureAction::Set {
                    delta.extend(session::tae_url_params(url));
                }
            }
            if a.action == ConfigureAction::Set && delta.is_empty() {
                return Err(Failure::usage(
                    "nada a gravar: informe --values '{\"campo\": valor, ...}' e/ou --tae-url",
                ));
            }
            let candidate = merged(stored()?, &delta);
            let (status, response) = s.plugin.configure(
                &s.host,
                &json!({"action": "validate", "values": Value::Object(candidate)}),
            );
            let mut shown_response = response.clone();
            if let Some(v) = shown_response["values"].as_object_mut() {
                dbfile::mask_secrets(v);
            }
            if let Some(code) = plugin_answer(&s, a.common.json, status, &shown_response, &response)
            {
                if !a.common.json && a.action == ConfigureAction::Set {
                    eprintln!("  nada foi gravado.");
                }
                return Ok(code);
            }
            if a.action == ConfigureAction::Set {
                // The plugin's normalised value of each field given, stored over the others.
                let normalised = response["values"].as_object().cloned().unwrap_or_default();
                let mut store = Map::new();
                for (k, v) in &delta {
                    let v = if v.is_null() {
                        Value::Null
                    } else {
                        normalised.get(k).cloned().unwrap_or_else(|| v.clone())
                    };
                    store.insert(k.clone(), v);
                }
                // The password's key file beside the database (`<database file>.key`), when
                // this write creates it, is a file written: announced with its path.
                let key_file = PathBuf::from(format!(
                    "{}.key",
                    std::path::absolute(&s.db_path)
                        .unwrap_or_else(|_| s.db_path.clone())
                        .display()
                ));
                let key_existed = key_file.exists();
                dbfile::merge_params(s.host.db(), &Value::Object(store))
                    .map_err(Failure::cannot_run)?;
                if !key_existed && key_file.exists() && !a.common.json {
                    println!(
                        "{}",
                        table::fit(&format!(
                            "  chave da senha criada: {} (guarde-a com o banco de dados: sem \
                             ela a senha gravada não pode ser lida)",
                            key_file.display()
                        ))
                    );
                }
                if !a.common.json {
                    let labels = field_labels(&s);
                    println!("  parâmetros gravados em {}:", shown(&s.db_path));
                    for k in delta.keys() {
                        let label = labels.get(k).and_then(Value::as_str).unwrap_or(k);
                        let value = if k.contains("password") {
                            "(alterada; não é mostrada)".to_string()
                        } else {
                            show_value(&normalised.get(k).cloned().unwrap_or(Value::Null))
                        };
                        println!("    {label} ({k}): {value}");
                    }
                }
            } else if !a.common.json {
                println!("  parâmetros válidos (nada foi gravado)");
            }
            Ok(exit::OK)
        }
        ConfigureAction::Test => {
            let mut request = json!({"action": "test"});
            if !given.is_empty() {
                // Over the parameters of this command (stored, with its TAE).
                let (st, current) = s
                    .host
                    .handle("params.get", b"{}")
                    .map(|b| {
                        (
                            0,
                            serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null),
                        )
                    })
                    .unwrap_or((1, Value::Null));
                let base = if st == 0 {
                    current["values"].as_object().cloned().unwrap_or_default()
                } else {
                    stored()?
                };
                request["values"] = Value::Object(merged(base, &given));
            }
            let (status, response) = s.plugin.configure(&s.host, &request);
            if let Some(code) = plugin_answer(&s, a.common.json, status, &response, &response) {
                return Ok(code);
            }
            let ok = response["login_ok"] == true;
            if !a.common.json {
                println!(
                    "{}",
                    table::fit(&format!("  {}", response["message"].as_str().unwrap_or("")))
                );
                let p = &response["permissions"];
                let user = &response["user"];
                if ok {
                    println!(
                        "  entrou: sim; latência: {} ms; usuário: {} <{}>",
                        response["latency_ms"],
                        user["name"].as_str().unwrap_or(""),
                        user["email"].as_str().unwrap_or("")
                    );
                    println!(
                        "  permissões: enviar {}, excluir {}, consultar {}, criar usuários {}",
                        yes_no(&p["send"]),
                        yes_no(&p["delete"]),
                        yes_no(&p["query"]),
                        yes_no(&p["create_users"])
                    );
                } else {
                    println!("  entrou: não");
                    if let Some(d) = response["detail"].as_str() {
                        println!("{}", table::fit(&format!("  detalhe técnico: {d}")));
                    }
                }
            }
            Ok(if ok { exit::OK } else { exit::REFUSED })
        }
    }
}

pub fn attachments(lib: &Option<PathBuf>, a: AttachmentArgs) -> CmdResult {
    let s = session::open(lib, &a.common, Needs::default())?;
    let mut filter = Map::new();
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
    if let Some(code) = plugin_answer(&s, a.common.json, status, &response, &response) {
        return Ok(code);
    }
    let recs = response["records"].as_array().cloned().unwrap_or_default();
    let total = response["total"].as_i64().unwrap_or(0);
    if !a.common.json {
        if total == 0 {
            println!("  nenhum registro encontrado");
        } else if recs.is_empty() {
            let pages = (total + a.page_size - 1) / a.page_size;
            println!(
                "  a página {} não existe: são {total} registro(s) em {pages} página(s) de {}",
                a.page, a.page_size
            );
        } else {
            println!("{}", table::records(&recs));
            println!(
                "  página {} ({} por página), {total} registro(s) no total",
                a.page, a.page_size
            );
        }
    }
    Ok(if recs.is_empty() {
        exit::NOTHING_MATCHED
    } else {
        exit::OK
    })
}

//! What a person reads in the terminal: tables of the plugin's answers, and the one place where
//! the plugin's technical names (outcomes, record statuses, recipient states and roles, contract
//! fields) get the Portuguese labels the school knows. Dates are shown as `dd/mm/aaaa HH:MM`
//! in Brasília time and sizes as `11,4 MB`.

use serde_json::Value;

/// The widest line a table prints (characters); the last column wraps to fit.
pub const MAX_WIDTH: usize = 120;

/// Narrowest room for the last column beside the others; below it, the last column goes on its
/// own indented lines under the row.
const MIN_LAST_COLUMN: usize = 40;

/// Renders rows under headers, columns padded to their widest cell (counted in characters).
/// The last column is not padded: it wraps (at spaces, and at the `\n`s it holds) so that no
/// line is wider than [`MAX_WIDTH`]; continuation lines are aligned under it.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(n.saturating_sub(1)) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let indent = 2;
    let last_start = indent + widths[..n - 1].iter().map(|w| w + 2).sum::<usize>();
    let beside = MAX_WIDTH.saturating_sub(last_start) >= MIN_LAST_COLUMN;
    let (last_col, last_width) = if beside {
        (last_start, MAX_WIDTH - last_start)
    } else {
        (indent + 4, MAX_WIDTH - indent - 4)
    };
    let fixed = |cells: &[&str]| -> String {
        let mut s = " ".repeat(indent);
        for (i, cell) in cells.iter().enumerate().take(n - 1) {
            s.push_str(cell);
            s.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
        }
        s
    };
    let mut out: Vec<String> = Vec::new();
    let header_fixed = fixed(headers);
    out.push(
        format!("{header_fixed}{}", headers[n - 1])
            .trim_end()
            .to_string(),
    );
    let rule_last = if beside {
        rows.iter()
            .flat_map(|r| wrap(r.get(n - 1).map(String::as_str).unwrap_or(""), last_width))
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0)
            .max(headers[n - 1].chars().count())
    } else {
        headers[n - 1].chars().count()
    };
    let mut rule = " ".repeat(indent);
    for w in &widths[..n - 1] {
        rule.push_str(&"-".repeat(*w));
        rule.push_str("  ");
    }
    rule.push_str(&"-".repeat(rule_last));
    out.push(rule.trim_end().to_string());
    for row in rows {
        let cells: Vec<&str> = (0..n)
            .map(|i| row.get(i).map(String::as_str).unwrap_or(""))
            .collect();
        let lines = wrap(cells[n - 1], last_width);
        if beside {
            let first = fixed(&cells);
            out.push(
                format!("{first}{}", lines.first().map(String::as_str).unwrap_or(""))
                    .trim_end()
                    .to_string(),
            );
            for l in lines.iter().skip(1) {
                out.push(format!("{}{l}", " ".repeat(last_col)));
            }
        } else {
            out.push(fixed(&cells).trim_end().to_string());
            for l in &lines {
                out.push(format!("{}{l}", " ".repeat(last_col)));
            }
        }
    }
    out.join("\n")
}

/// Splits `text` into lines of at most `width` characters, at spaces and at its own `\n`s (a
/// word longer than `width` is cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split(' ').filter(|w| !w.is_empty()) {
            let mut word: String = word.to_string();
            loop {
                let need = if line.is_empty() {
                    word.chars().count()
                } else {
                    line.chars().count() + 1 + word.chars().count()
                };
                if need <= width {
                    if !line.is_empty() {
                        line.push(' ');
                    }
                    line.push_str(&word);
                    break;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    continue;
                }
                // A single word wider than the line: cut it.
                let head: String = word.chars().take(width).collect();
                let tail: String = word.chars().skip(width).collect();
                lines.push(head);
                word = tail;
                if word.is_empty() {
                    break;
                }
            }
        }
        lines.push(line);
    }
    while lines.len() > 1 && lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// Text for the terminal with every line wider than [`MAX_WIDTH`] wrapped; continuation lines
/// are indented two spaces past the line's own indentation.
pub fn fit(text: &str) -> String {
    text.split('\n')
        .flat_map(|line| {
            if line.chars().count() <= MAX_WIDTH {
                return vec![line.to_string()];
            }
            let indent = line.chars().take_while(|c| *c == ' ').count();
            let body = &line[indent..];
            let first = wrap(body, MAX_WIDTH - indent);
            let head = first.first().cloned().unwrap_or_default();
            let used = head.split(' ').filter(|w| !w.is_empty()).count();
            let rest = body
                .split(' ')
                .filter(|w| !w.is_empty())
                .skip(used)
                .collect::<Vec<_>>()
                .join(" ");
            let mut out = vec![format!("{}{head}", " ".repeat(indent))];
            out.extend(
                wrap(&rest, MAX_WIDTH - indent - 2)
                    .into_iter()
                    .filter(|l| !l.is_empty())
                    .map(|l| format!("{}{l}", " ".repeat(indent + 2))),
            );
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One outcome of `execute` (`docs/abi.md`): its technical name, the label of one contract's
/// result, and the words of the summary line ("3 enviados").
pub struct OutcomeLabel {
    pub name: &'static str,
    pub label: &'static str,
    pub summary: &'static str,
    /// The summary's word for a count of one.
    pub one: &'static str,
}

/// Every outcome, in the order the summary lists them. The summary counter of documents found
/// cancelled is `documents_cancelled` (the outcome is `cancelled`).
pub const OUTCOMES: [OutcomeLabel; 20] = [
    OutcomeLabel {
        name: "sent",
        label: "Enviado",
        summary: "enviados",
        one: "enviado",
    },
    OutcomeLabel {
        name: "skipped",
        label: "Ignorado",
        summary: "ignorados",
        one: "ignorado",
    },
    OutcomeLabel {
        name: "deleted",
        label: "Excluído",
        summary: "excluídos",
        one: "excluído",
    },
    OutcomeLabel {
        name: "updated",
        label: "Atualizado",
        summary: "atualizados",
        one: "atualizado",
    },
    OutcomeLabel {
        name: "signed",
        label: "Assinado",
        summary: "assinados",
        one: "assinado",
    },
    OutcomeLabel {
        name: "partially_signed",
        label: "Assinado parcialmente",
        summary: "assinados parcialmente",
        one: "assinado parcialmente",
    },
    OutcomeLabel {
        name: "pending",
        label: "Pendente",
        summary: "pendentes",
        one: "pendente",
    },
    OutcomeLabel {
        name: "rejected",
        label: "Rejeitado",
        summary: "rejeitados",
        one: "rejeitado",
    },
    OutcomeLabel {
        name: "cancelled",
        label: "Cancelado",
        summary: "cancelados",
        one: "cancelado",
    },
    OutcomeLabel {
        name: "downloaded",
        label: "Baixado",
        summary: "baixados",
        one: "baixado",
    },
    // Reconcile's findings ("Conciliar com o TOTVS Assinatura Eletrônica").
    OutcomeLabel {
        name: "in_agreement",
        label: "De acordo",
        summary: "de acordo",
        one: "de acordo",
    },
    OutcomeLabel {
        name: "record_behind",
        label: "Registro desatualizado",
        summary: "registros desatualizados",
        one: "registro desatualizado",
    },
    OutcomeLabel {
        name: "document_missing",
        label: "Documento inexistente no TAE",
        summary: "documentos inexistentes no TAE",
        one: "documento inexistente no TAE",
    },
    OutcomeLabel {
        name: "document_cancelled",
        label: "Documento cancelado no TAE",
        summary: "documentos cancelados no TAE",
        one: "documento cancelado no TAE",
    },
    OutcomeLabel {
        name: "orphan_draft",
        label: "Rascunho órfão",
        summary: "rascunhos órfãos",
        one: "rascunho órfão",
    },
    OutcomeLabel {
        name: "unknown_document",
        label: "Documento sem registro",
        summary: "documentos sem registro",
        one: "documento sem registro",
    },
    OutcomeLabel {
        name: "duplicate_active",
        label: "Documentos ativos em duplicidade",
        summary: "contratos com documentos ativos em duplicidade",
        one: "contrato com documentos ativos em duplicidade",
    },
    OutcomeLabel {
        name: "held",
        label: "Em processamento por outra execução",
        summary: "em processamento por outra execução",
        one: "em processamento por outra execução",
    },
    OutcomeLabel {
        name: "failed",
        label: "Falhou",
        summary: "com falha",
        one: "com falha",
    },
    OutcomeLabel {
        name: "not_processed",
        label: "Não processado",
        summary: "não processados",
        one: "não processado",
    },
];

fn outcome(name: &str) -> Option<&'static OutcomeLabel> {
    let name = if name == "documents_cancelled" {
        "cancelled"
    } else {
        name
    };
    OUTCOMES.iter().find(|o| o.name == name)
}

/// The Portuguese label of an execute outcome (an unknown one is shown as it came).
pub fn outcome_label(name: &str) -> &str {
    outcome(name).map(|o| o.label).unwrap_or(name)
}

/// Record statuses (`docs/abi.md`, "Record") and their labels: the database's own table.
pub use crate::db::RECORD_STATUSES;

/// The label of a record status.
pub fn status_label(status: &str) -> &str {
    RECORD_STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, l)| *l)
        .unwrap_or(status)
}

/// A record status given by a person: the technical name or the label, in any case, with spaces
/// or underscores (`Pendente`, `assinado parcialmente`). Answers the technical name, or the
/// accepted labels.
pub fn parse_record_status(given: &str) -> Result<&'static str, String> {
    let norm = |s: &str| s.trim().to_lowercase().replace(['_', '-'], " ");
    let g = norm(given);
    RECORD_STATUSES
        .iter()
        .find(|(s, l)| norm(s) == g || norm(l) == g)
        .map(|(s, _)| *s)
        .ok_or_else(|| {
            format!(
                "a situação \"{given}\" não existe; situações aceitas: {}",
                RECORD_STATUSES
                    .iter()
                    .map(|(_, l)| *l)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// A recipient's state in a record.
pub fn recipient_state_label(state: &str) -> &str {
    match state {
        "pending" => "pendente",
        "signed" => "assinou",
        "rejected" => "rejeitou",
        other => other,
    }
}

/// A recipient's role in a record.
pub fn recipient_role_label(role: &str) -> &str {
    match role {
        "signer" => "assinante",
        "validator" => "validador",
        "witness" => "testemunha",
        other => other,
    }
}

/// The label a person knows for a contract field the plugin names in a result (`field`).
pub fn field_label(field: &str) -> Option<&'static str> {
    Some(match field {
        "financial_responsible" => "responsável financeiro",
        "financial_responsible.email" => "e-mail do responsável financeiro",
        "financial_responsible.cpf" => "CPF do responsável financeiro",
        "financial_responsible.name" => "nome do responsável financeiro",
        "student_name" => "nome do aluno",
        "email" => "e-mail",
        "cpf" => "CPF",
        "name" => "nome",
        "file" | "source.path" => "arquivo",
        _ => return None,
    })
}

/// A result's message as a person reads it: its technical field name, when cited as `(campo
/// x.y)`, replaced by the label a person knows, and sizes with a decimal comma (`11,4 MB`).
pub fn humanize_message(message: &str, field: Option<&str>) -> String {
    let mut out = message.to_string();
    let fields: Vec<String> = match field {
        Some(f) => vec![f.to_string()],
        None => Vec::new(),
    };
    for f in fields.iter().map(String::as_str).chain([
        "financial_responsible.email",
        "financial_responsible.cpf",
        "financial_responsible.name",
        "financial_responsible",
    ]) {
        if let Some(label) = field_label(f) {
            out = out.replace(&format!("(campo {f})"), &format!("(campo {label})"));
        }
    }
    decimal_comma_in_sizes(&out)
}

/// `11.4 MB` → `11,4 MB` (also KB, GB); other dots are left alone.
fn decimal_comma_in_sizes(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = chars.clone();
    for i in 0..chars.len() {
        if chars[i] != '.' || i == 0 || !chars[i - 1].is_ascii_digit() {
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
        let unit: String = chars[j..].iter().take(3).collect();
        if j > i + 1 && [" MB", " KB", " GB"].contains(&unit.as_str()) {
            out[i] = ',';
        }
    }
    out.into_iter().collect()
}

/// A timestamp (RFC 3339) as `dd/mm/aaaa HH:MM` in Brasília time; anything else unchanged.
pub fn br_datetime(ts: &str) -> String {
    // America/Sao_Paulo has been UTC−03:00 all year since Brazil abolished daylight saving time
    // in 2019, so a fixed offset gives its local time without a time-zone database. (Dates
    // before 2019 during the old summer time would show one hour early.)
    let brt = chrono::FixedOffset::west_opt(3 * 3600).expect("a valid offset");
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => t.with_timezone(&brt).format("%d/%m/%Y %H:%M").to_string(),
        Err(_) => ts.to_string(),
    }
}

/// A date given by a person, `dd/mm/aaaa` or `aaaa-mm-dd`, as `aaaa-mm-dd`.
pub fn parse_br_date(given: &str) -> Result<String, String> {
    let g = given.trim();
    for fmt in ["%d/%m/%Y", "%Y-%m-%d"] {
        if let Ok(d) = chrono::NaiveDate::parse_from_str(g, fmt) {
            return Ok(d.format("%Y-%m-%d").to_string());
        }
    }
    Err(format!(
        "a data \"{given}\" não é válida; use dd/mm/aaaa (por exemplo 05/02/2026)"
    ))
}

/// A size in bytes as a person reads it: `850 bytes`, `48,2 KB`, `11,4 MB` (1 KB = 1024 bytes).
pub fn br_size(bytes: u64) -> String {
    const KB: f64 = 1024.0;
    let b = bytes as f64;
    let (v, unit) = if b < KB {
        return format!("{bytes} bytes");
    } else if b < KB * KB {
        (b / KB, "KB")
    } else if b < KB * KB * KB {
        (b / (KB * KB), "MB")
    } else {
        (b / (KB * KB * KB), "GB")
    };
    format!("{v:.1} {unit}").replace('.', ",")
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The per-contract results of an `execute` response (reconcile: one row per finding).
pub fn execute_results(response: &Value) -> String {
    if response.get("option").and_then(Value::as_str) == Some("reconcile") {
        return reconcile_results(response);
    }
    let empty = Vec::new();
    let results = response
        .get("results")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    // Sorted by contract key for reading; `--json` shows the plugin's own order.
    let mut results: Vec<&Value> = results.iter().collect();
    results.sort_by_key(|r| s(r, "contract_key"));
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let field = r.get("field").and_then(Value::as_str);
            vec![
                s(r, "contract_key"),
                outcome_label(&s(r, "outcome")).to_string(),
                s(r, "document_id"),
                humanize_message(&s(r, "message"), field),
            ]
        })
        .collect();
    render(&["Contrato", "Resultado", "Documento", "Mensagem"], &rows)
}

/// Reconcile's findings: contract, what was found, the document, what was (or would be) done.
/// Grouped by contract (the plugin's order within one); documents without a contract last.
pub fn reconcile_results(response: &Value) -> String {
    let empty = Vec::new();
    let results = response
        .get("results")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let mut results: Vec<&Value> = results.iter().collect();
    results.sort_by_key(|r| {
        let k = s(r, "contract_key");
        (k.is_empty(), k)
    });
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let key = s(r, "contract_key");
            let f = r.get("finding");
            let text = match f {
                Some(f) => format!("{} → {}", s(f, "found"), s(f, "action")),
                None => humanize_message(&s(r, "message"), r.get("field").and_then(Value::as_str)),
            };
            vec![
                if key.is_empty() { "—".into() } else { key },
                outcome_label(&s(r, "outcome")).to_string(),
                s(r, "document_id"),
                text,
            ]
        })
        .collect();
    render(
        &[
            "Contrato",
            "Achado",
            "Documento",
            "Encontrado → feito (ou a fazer)",
        ],
        &rows,
    )
}

/// The plugin's notices (e.g. "the RM user was registered in TAE; confirm the e-mail"), one
/// per line, or an empty string.
pub fn notices(response: &Value) -> String {
    response
        .get("notices")
        .and_then(Value::as_array)
        .map(|ns| {
            ns.iter()
                .filter_map(Value::as_str)
                .flat_map(|n| {
                    let mut lines = wrap(&format!("aviso: {n}"), MAX_WIDTH - 2);
                    for l in lines.iter_mut().skip(1) {
                        *l = format!("  {l}");
                    }
                    lines
                })
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// One line with the summary of an `execute` response: `14 contratos: 12 enviados, 2 com
/// falha (263 ms)`, and whether the run was interrupted.
pub fn execute_summary(response: &Value) -> String {
    let sm = response.get("summary").cloned().unwrap_or(Value::Null);
    let n = |k: &str| sm.get(k).and_then(Value::as_i64).unwrap_or(0);
    let total = n("total");
    let mut parts = Vec::new();
    if let Some(obj) = sm.as_object() {
        let mut keys: Vec<&String> = obj
            .keys()
            .filter(|k| !matches!(k.as_str(), "total" | "elapsed_ms" | "cancelled"))
            .collect();
        keys.sort_by_key(|k| {
            (
                OUTCOMES
                    .iter()
                    .position(|o| Some(o.name) == outcome(k).map(|x| x.name))
                    .unwrap_or(OUTCOMES.len()),
                k.to_string(),
            )
        });
        for k in keys {
            let Some(x) = obj[k.as_str()].as_i64() else {
                continue;
            };
            // The counters that are zero say nothing, except the ones a scheduled job watches.
            if x == 0 && !matches!(k.as_str(), "failed" | "not_processed") {
                continue;
            }
            let words = match (k.as_str(), x) {
                ("documents_cancelled", 1) => "documento cancelado",
                ("documents_cancelled", _) => "documentos cancelados",
                (other, 1) => outcome(other).map(|o| o.one).unwrap_or(other),
                (other, _) => outcome(other).map(|o| o.summary).unwrap_or(other),
            };
            parts.push(format!("{x} {words}"));
        }
    }
    let noun = match (
        response.get("option").and_then(Value::as_str) == Some("reconcile"),
        total == 1,
    ) {
        (true, true) => "achado",
        (true, false) => "achados",
        (false, true) => "contrato",
        (false, false) => "contratos",
    };
    let mut line = format!("{total} {noun}: {}", parts.join(", "));
    if sm.get("cancelled").and_then(Value::as_bool) == Some(true) {
        line.push_str(" — execução interrompida a pedido");
    }
    format!("{line} ({} ms)", n("elapsed_ms"))
}

/// One recipient of a record: `maria@example.com (assinante, assinou)`.
fn recipient_text(x: &Value) -> String {
    let role = s(x, "role");
    let state = recipient_state_label(&s(x, "state")).to_string();
    if role.is_empty() {
        format!("{} ({state})", s(x, "email"))
    } else {
        format!(
            "{} ({}, {state})",
            s(x, "email"),
            recipient_role_label(&role)
        )
    }
}

/// The integration records (attachment list), with the record id the single-record options
/// (`--records`) take; recipients and reasons on the lines under each row.
pub fn records(records: &[Value]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let mut lines: Vec<String> = r
                .get("recipients")
                .and_then(Value::as_array)
                .map(|rs| rs.iter().map(recipient_text).collect())
                .unwrap_or_default();
            let reason = s(r, "rejection_reason");
            if !reason.is_empty() {
                lines.push(format!("motivo da rejeição: {reason}"));
            }
            let error = s(r, "last_error");
            if !error.is_empty() {
                lines.push(format!("último erro: {error}"));
            }
            let label = match s(r, "status_label") {
                l if l.is_empty() => status_label(&s(r, "status")).to_string(),
                l => l,
            };
            vec![
                s(r, "id"),
                s(r, "record_key"),
                s(r, "document_id"),
                label,
                br_datetime(&s(r, "sent_at")),
                lines.join("\n"),
            ]
        })
        .collect();
    render(
        &[
            "Registro",
            "Contrato",
            "Documento",
            "Situação",
            "Enviado em",
            "Destinatários",
        ],
        &rows,
    )
}

/// A whole-call error of the plugin (`{"ok": false, "error": {...}}`): the message for the
/// user, the fields by their labels (`labels`: technical name → label, e.g. from `configure
/// describe`), and the technical code and detail on a last line.
pub fn error_text_with_labels(
    status: i32,
    response: &Value,
    labels: &dyn Fn(&str) -> Option<String>,
) -> String {
    let e = response.get("error").cloned().unwrap_or(Value::Null);
    let mut text = match s(&e, "message") {
        m if m.is_empty() => "o plugin recusou a chamada sem explicar o motivo".to_string(),
        m => humanize_message(&m, None),
    };
    if let Some(fields) = e.get("fields").and_then(Value::as_object) {
        for (k, v) in fields {
            let name = labels(k)
                .or_else(|| field_label(k).map(str::to_string))
                .unwrap_or_else(|| k.clone());
            text.push_str(&format!(
                "\n  {name}: {}",
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            ));
        }
    }
    let mut technical = format!("{} (status {status})", s(&e, "code"));
    let detail = s(&e, "detail");
    if !detail.is_empty() {
        technical.push_str(&format!(": {detail}"));
    }
    if let Some(fields) = e.get("fields").and_then(Value::as_object) {
        if !fields.is_empty() {
            technical.push_str(&format!(
                "; campos: {}",
                fields.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    text.push_str(&format!("\n  detalhe técnico: {technical}"));
    text
}

/// [`error_text_with_labels`] with the built-in field labels only.
pub fn error_text(status: i32, response: &Value) -> String {
    error_text_with_labels(status, response, &|_| None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pads_by_characters() {
        let t = render(
            &["a", "b"],
            &[
                vec!["João".into(), "x".into()],
                vec!["Zé".into(), "y".into()],
            ],
        );
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(lines[0], "  a     b");
        assert_eq!(lines[2], "  João  x");
        assert_eq!(lines[3], "  Zé    y");
    }

    #[test]
    fn long_last_column_wraps_within_the_width() {
        let long = "palavra ".repeat(60);
        let t = render(
            &["Contrato", "Mensagem"],
            &[vec!["1;2026001;145".into(), long]],
        );
        assert!(t.lines().count() > 3, "{t}");
        for l in t.lines() {
            assert!(l.chars().count() <= MAX_WIDTH, "{l}");
        }
        // Continuation lines start under the column.
        let col = t.lines().next().unwrap().find("Mensagem").unwrap();
        assert_eq!(t.lines().nth(3).unwrap().find("palavra"), Some(col), "{t}");
    }

    #[test]
    fn long_lines_fit() {
        let line = format!("  resumo: {}", "palavra ".repeat(40));
        let t = fit(&line);
        assert!(t.lines().count() >= 3, "{t}");
        assert!(t.lines().all(|l| l.chars().count() <= MAX_WIDTH), "{t}");
        assert!(t.lines().nth(1).unwrap().starts_with("    palavra"), "{t}");
        assert_eq!(fit("  curta"), "  curta");
    }

    #[test]
    fn execute_tables() {
        let r = json!({"ok": true, "summary": {"total": 2, "sent": 1, "skipped": 0, "failed": 1, "not_processed": 0, "elapsed_ms": 5},
            "results": [{"contract_key": "1;a;1", "outcome": "sent", "document_id": 9, "message": "ok"},
                        {"contract_key": "1;b;2", "outcome": "failed", "field": "financial_responsible.email",
                         "message": "sem e-mail (campo financial_responsible.email)."}]});
        let t = execute_results(&r);
        assert!(t.contains("Enviado") && t.contains("Falhou"), "{t}");
        assert!(
            t.contains("(campo e-mail do responsável financeiro)"),
            "{t}"
        );
        assert!(!t.contains("financial_responsible"), "{t}");
        assert_eq!(
            execute_summary(&r),
            "2 contratos: 1 enviado, 1 com falha, 0 não processados (5 ms)"
        );
        let e = error_text(
            9,
            &json!({"ok": false, "error": {"code": "AUTH_FAILED", "message": "Falhou", "detail": "d"}}),
        );
        assert!(e.starts_with("Falhou"), "{e}");
        assert!(
            e.contains("detalhe técnico: AUTH_FAILED (status 9): d"),
            "{e}"
        );
    }

    #[test]
    fn summary_of_an_interrupted_run_with_held_contracts() {
        let r = json!({"summary": {"total": 5, "sent": 2, "held": 1, "documents_cancelled": 1,
            "failed": 0, "not_processed": 1, "cancelled": true, "elapsed_ms": 9}});
        assert_eq!(
            execute_summary(&r),
            "5 contratos: 2 enviados, 1 documento cancelado, 1 em processamento por outra execução, \
             0 com falha, 1 não processado — execução interrompida a pedido (9 ms)"
        );
    }

    #[test]
    fn sizes_in_messages_get_a_decimal_comma() {
        assert_eq!(
            humanize_message(
                "o PDF tem 11.4 MB, acima do limite de 10 MB (versão 1.2)",
                None
            ),
            "o PDF tem 11,4 MB, acima do limite de 10 MB (versão 1.2)"
        );
    }

    #[test]
    fn statuses_by_label_in_any_case() {
        assert_eq!(parse_record_status("Pendente"), Ok("pendente"));
        assert_eq!(parse_record_status("PENDENTE"), Ok("pendente"));
        assert_eq!(
            parse_record_status("assinado parcialmente"),
            Ok("assinado_parcialmente")
        );
        assert_eq!(
            parse_record_status("Assinado_parcialmente"),
            Ok("assinado_parcialmente")
        );
        let e = parse_record_status("assinada").unwrap_err();
        assert!(
            e.contains("\"assinada\"") && e.contains("Finalizado"),
            "{e}"
        );
    }

    #[test]
    fn dates_and_sizes_as_read_in_brazil() {
        assert_eq!(br_datetime("2026-12-02T05:57:11.419Z"), "02/12/2026 02:57");
        assert_eq!(br_datetime("2026-01-01T01:00:00Z"), "31/12/2025 22:00");
        assert_eq!(br_datetime(""), "");
        assert_eq!(parse_br_date("05/02/2026"), Ok("2026-02-05".into()));
        assert_eq!(parse_br_date("2026-02-05"), Ok("2026-02-05".into()));
        assert!(parse_br_date("31/02/2026").is_err());
        assert_eq!(br_size(11_953_766), "11,4 MB");
        assert_eq!(br_size(48_213), "47,1 KB");
        assert_eq!(br_size(850), "850 bytes");
    }

    #[test]
    fn records_table_has_the_record_id_and_portuguese_states() {
        let recs = vec![
            json!({"id": "r-20261202072339-0bq7izoxlgnj", "record_key": "1;2026001;145",
            "document_id": 100005, "status": "pendente", "status_label": "Pendente",
            "sent_at": "2026-12-02T07:23:39.903Z",
            "recipients": [{"email": "maria@example.com", "role": "signer", "state": "signed"},
                           {"email": "coordenacao@example.com", "role": "validator", "state": "pending"}]}),
        ];
        let t = records(&recs);
        assert!(t.contains("r-20261202072339-0bq7izoxlgnj"), "{t}");
        assert!(t.contains("02/12/2026 04:23"), "{t}");
        assert!(t.contains("maria@example.com (assinante, assinou)"), "{t}");
        assert!(
            t.contains("coordenacao@example.com (validador, pendente)"),
            "{t}"
        );
        for l in t.lines() {
            assert!(l.chars().count() <= MAX_WIDTH, "{l}");
        }
    }
}

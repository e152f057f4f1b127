//! Plain-text tables of the plugin's answers, for the terminal.

use serde_json::Value;

/// Renders rows under headers, columns padded to their widest cell (counted in characters);
/// the last column is not padded.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(n) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == n {
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![line(headers.to_vec())];
    out.push(line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// The Portuguese label of an execute outcome.
pub fn outcome_label(outcome: &str) -> &str {
    match outcome {
        "sent" => "Enviado",
        "skipped" => "Ignorado",
        "deleted" => "Excluído",
        "updated" => "Atualizado",
        "signed" => "Assinado",
        "pending" => "Pendente",
        "partially_signed" => "Assinado parcialmente",
        "rejected" => "Rejeitado",
        "cancelled" => "Cancelado",
        "downloaded" => "Baixado",
        "failed" => "Falhou",
        "not_processed" => "Não processado",
        other => other,
    }
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The per-contract results of an `execute` response.
pub fn execute_results(response: &Value) -> String {
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
            vec![
                s(r, "contract_key"),
                outcome_label(&s(r, "outcome")).to_string(),
                s(r, "document_id"),
                s(r, "message"),
            ]
        })
        .collect();
    render(&["Contrato", "Resultado", "Documento", "Mensagem"], &rows)
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
                .map(|n| format!("  aviso: {n}"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// One line with the summary of an `execute` response.
pub fn execute_summary(response: &Value) -> String {
    let sm = response.get("summary").cloned().unwrap_or(Value::Null);
    let n = |k: &str| sm.get(k).and_then(Value::as_i64).unwrap_or(0);
    let mut parts = vec![format!("total {}", n("total"))];
    // The counters the plugin reported: the known ones in a fixed order, then any others.
    const ORDER: [&str; 12] = [
        "sent",
        "skipped",
        "deleted",
        "updated",
        "signed",
        "partially_signed",
        "pending",
        "rejected",
        "cancelled",
        "downloaded",
        "failed",
        "not_processed",
    ];
    if let Some(obj) = sm.as_object() {
        let mut keys: Vec<&String> = obj
            .keys()
            .filter(|k| !matches!(k.as_str(), "total" | "elapsed_ms"))
            .collect();
        keys.sort_by_key(|k| {
            (
                ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()),
                k.to_string(),
            )
        });
        for k in keys {
            if let Some(x) = obj[k.as_str()].as_i64() {
                parts.push(format!("{k} {x}"));
            }
        }
    }
    if sm.get("cancelled").and_then(Value::as_bool) == Some(true) {
        parts.push("CANCELADO".into());
    }
    format!("{} ({} ms)", parts.join(", "), n("elapsed_ms"))
}

/// The integration records (attachment list).
pub fn records(records: &[Value]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let recipients = r
                .get("recipients")
                .and_then(Value::as_array)
                .map(|rs| {
                    rs.iter()
                        .map(|x| format!("{} ({})", s(x, "email"), s(x, "state")))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            let label = match s(r, "status_label") {
                l if l.is_empty() => s(r, "status"),
                l => l,
            };
            let mut extra = recipients;
            for k in ["rejection_reason", "last_error"] {
                let v = s(r, k);
                if !v.is_empty() {
                    extra = format!("{extra} [{v}]");
                }
            }
            vec![
                s(r, "record_key"),
                s(r, "document_id"),
                label,
                s(r, "sent_at"),
                extra,
            ]
        })
        .collect();
    render(
        &[
            "Contrato",
            "Documento",
            "Situação",
            "Enviado em",
            "Destinatários",
        ],
        &rows,
    )
}

/// A whole-call error of the plugin: `{"ok": false, "error": {...}}`.
pub fn error_text(status: i32, response: &Value) -> String {
    let e = response.get("error").cloned().unwrap_or(Value::Null);
    let mut text = format!(
        "status {status} {}: {}",
        s(&e, "code"),
        match s(&e, "message") {
            m if m.is_empty() => response.to_string(),
            m => m,
        }
    );
    let detail = s(&e, "detail");
    if !detail.is_empty() {
        text.push_str(&format!("\n  detalhe técnico: {detail}"));
    }
    if let Some(fields) = e.get("fields").and_then(Value::as_object) {
        for (k, v) in fields {
            text.push_str(&format!(
                "\n  campo {k}: {}",
                v.as_str().unwrap_or(&v.to_string())
            ));
        }
    }
    text
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
    fn execute_tables() {
        let r = json!({"ok": true, "summary": {"total": 2, "sent": 1, "failed": 1, "elapsed_ms": 5},
            "results": [{"contract_key": "1;a;1", "outcome": "sent", "document_id": 9, "message": "ok"},
                        {"contract_key": "1;b;2", "outcome": "failed", "message": "sem e-mail"}]});
        let t = execute_results(&r);
        assert!(t.contains("Enviado") && t.contains("Falhou") && t.contains("sem e-mail"));
        assert_eq!(execute_summary(&r), "total 2, sent 1, failed 1 (5 ms)");
        let e = error_text(
            9,
            &json!({"ok": false, "error": {"code": "AUTH_FAILED", "message": "Falhou", "detail": "d"}}),
        );
        assert!(e.contains("AUTH_FAILED") && e.contains("detalhe técnico: d"));
    }
}

//! The RM screens the plugin asks the host to show: authentication and CPF. Answered from a
//! script (tests, demo, `--script`), or interactively in the terminal.

use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, Write};

/// One answer to the authentication screen.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum AuthAnswer {
    Credentials { email: String, password: String },
    Cancel { cancel: bool },
}

/// One answer to the CPF screen.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CpfAnswer {
    Cpf { cpf: String },
    Cancel { cancel: bool },
}

/// Scripted answers. Each queue is consumed in order and its last answer is repeated when it
/// runs out. An empty queue means: ask in the terminal when `interactive`, else cancel.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiScript {
    #[serde(default)]
    pub auth: VecDeque<AuthAnswer>,
    #[serde(default)]
    pub cpf: VecDeque<CpfAnswer>,
    #[serde(default)]
    pub interactive: bool,
}

impl UiScript {
    /// Answers every screen in the terminal.
    pub fn interactive() -> Self {
        UiScript {
            interactive: true,
            ..Default::default()
        }
    }

    /// Cancels every screen.
    pub fn cancel_all() -> Self {
        UiScript::default()
    }

    /// Always logs in with these credentials.
    pub fn with_credentials(email: &str, password: &str) -> Self {
        UiScript::default().then_credentials(email, password)
    }

    pub fn then_credentials(mut self, email: &str, password: &str) -> Self {
        self.auth.push_back(AuthAnswer::Credentials {
            email: email.into(),
            password: password.into(),
        });
        self
    }

    pub fn then_cancel_auth(mut self) -> Self {
        self.auth.push_back(AuthAnswer::Cancel { cancel: true });
        self
    }

    pub fn then_cpf(mut self, cpf: &str) -> Self {
        self.cpf.push_back(CpfAnswer::Cpf { cpf: cpf.into() });
        self
    }

    pub fn then_cancel_cpf(mut self) -> Self {
        self.cpf.push_back(CpfAnswer::Cancel { cancel: true });
        self
    }

    /// Parses a script file: `{"auth": [{"email","password"} | {"cancel": true}], "cpf":
    /// [{"cpf"} | {"cancel": true}], "interactive": bool}`.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("roteiro das telas inválido: {e}"))
    }

    fn next<T: Clone>(q: &mut VecDeque<T>) -> Option<T> {
        if q.len() > 1 {
            q.pop_front()
        } else {
            q.front().cloned()
        }
    }

    /// The answer to `ui.authenticate`.
    pub fn authenticate(&mut self, request: &Value) -> Value {
        match Self::next(&mut self.auth) {
            Some(AuthAnswer::Credentials { email, password }) => {
                json!({"cancelled": false, "email": email, "password": password})
            }
            Some(AuthAnswer::Cancel { .. }) => json!({"cancelled": true}),
            None if self.interactive => prompt_auth(request),
            None => json!({"cancelled": true}),
        }
    }

    /// The answer to `ui.ask_cpf`.
    pub fn ask_cpf(&mut self, request: &Value) -> Value {
        match Self::next(&mut self.cpf) {
            Some(CpfAnswer::Cpf { cpf }) => json!({"cancelled": false, "cpf": cpf}),
            Some(CpfAnswer::Cancel { .. }) => json!({"cancelled": true}),
            None if self.interactive => prompt_cpf(request),
            None => json!({"cancelled": true}),
        }
    }
}

fn read_line(prompt: &str) -> Option<String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut s = String::new();
    match std::io::stdin().lock().read_line(&mut s) {
        Ok(0) | Err(_) => {
            // End of input (Ctrl-D): end the prompt's line so what follows starts on its own.
            eprintln!();
            None
        }
        Ok(_) => Some(s.trim_end_matches(['\r', '\n']).to_string()),
    }
}

fn set_echo(on: bool) {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status();
    }
}

/// The authentication screen's sentence for each `reason` of `ui.authenticate`.
fn auth_reason_text(reason: &str) -> &'static str {
    match reason {
        "expired" => "Sua sessão no TOTVS Assinatura Eletrônica expirou. Entre novamente.",
        "unauthorized" => "O TOTVS Assinatura Eletrônica recusou a sessão atual. Entre novamente.",
        "retry" => "Não foi possível entrar. Verifique o e-mail e a senha.",
        _ => "Informe seu usuário do TOTVS Assinatura Eletrônica.",
    }
}

fn prompt_auth(request: &Value) -> Value {
    let reason = request
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("first");
    eprintln!();
    eprintln!("=== TOTVS Assinatura Eletrônica - Autenticação ===");
    // The plugin's message says why the screen is shown; the screen's own sentence only when
    // it sent none (never both: they say the same thing).
    match request
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.trim().is_empty())
    {
        Some(m) => eprintln!("{m}"),
        None => eprintln!("{}", auth_reason_text(reason)),
    }
    let hint = request
        .get("email_hint")
        .and_then(Value::as_str)
        .unwrap_or("");
    let prompt = if hint.is_empty() {
        "E-mail (vazio cancela): ".to_string()
    } else {
        format!("E-mail [{hint}] (\"-\" cancela): ")
    };
    let Some(mut email) = read_line(&prompt) else {
        return json!({"cancelled": true});
    };
    if email.is_empty() && !hint.is_empty() {
        email = hint.to_string();
    }
    if email.is_empty() || email == "-" {
        return json!({"cancelled": true});
    }
    set_echo(false);
    let password = read_line("Senha: ");
    set_echo(true);
    if password.is_some() {
        // The Enter typed with echo off was not shown (at end of input read_line ended the line).
        eprintln!();
    }
    match password {
        Some(p) => json!({"cancelled": false, "email": email, "password": p}),
        None => json!({"cancelled": true}),
    }
}

fn prompt_cpf(request: &Value) -> Value {
    let s = |k: &str| {
        request
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    eprintln!();
    eprintln!("=== Cadastro no TOTVS Assinatura Eletrônica ===");
    // The plugin's message, or the screen's own sentence when it sent none (never both).
    if s("message").trim().is_empty() {
        eprintln!(
            "O usuário {} ({}) ainda não está cadastrado no TOTVS Assinatura Eletrônica.",
            s("name"),
            s("email")
        );
    } else {
        eprintln!("{}", s("message"));
    }
    match read_line("Informe o CPF para o cadastro (vazio cancela): ") {
        Some(cpf) if !cpf.trim().is_empty() => json!({"cancelled": false, "cpf": cpf.trim()}),
        _ => json!({"cancelled": true}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_consume_then_repeat_last() {
        let mut s = UiScript::default()
            .then_credentials("a@x", "errada")
            .then_credentials("a@x", "certa");
        let r = json!({});
        assert_eq!(s.authenticate(&r)["password"], "errada");
        assert_eq!(s.authenticate(&r)["password"], "certa");
        assert_eq!(s.authenticate(&r)["password"], "certa");
        assert_eq!(s.ask_cpf(&r)["cancelled"], true);
    }

    #[test]
    fn script_file_format() {
        let mut s = UiScript::from_json(
            r#"{"auth": [{"cancel": true}, {"email": "e@x", "password": "p"}], "cpf": [{"cpf": "529.982.247-25"}]}"#,
        )
        .unwrap();
        let r = json!({});
        assert_eq!(s.authenticate(&r), json!({"cancelled": true}));
        assert_eq!(s.authenticate(&r)["email"], "e@x");
        assert_eq!(s.ask_cpf(&r)["cpf"], "529.982.247-25");
        assert!(UiScript::from_json(r#"{"autenticacao": []}"#).is_err());
    }
}

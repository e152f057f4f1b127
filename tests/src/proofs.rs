//! Helpers of the integrity tests (`tests/tests/integrity_*.rs`): simulated RM application
//! servers as separate processes (`proof-host`, `tests/src/bin/proof_host.rs`), each loading
//! the plugin over a shared school database, watched line by line from the test.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The screens' answers of an interactive user.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UiAnswers {
    pub email: String,
    pub password: String,
    pub cpf: String,
}

impl UiAnswers {
    /// tae-sim's administrator and the demo secretary's CPF.
    pub fn demo() -> UiAnswers {
        UiAnswers {
            email: tae_sim::ADMIN_EMAIL.into(),
            password: tae_sim::ADMIN_PASSWORD.into(),
            cpf: host_sim::seed::DEMO_RM_USER_CPF.into(),
        }
    }
}

/// What one `proof-host` process runs: one `execute` as `login` over the database `db`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostSpec {
    pub db: String,
    pub login: String,
    pub session: String,
    pub option: String,
    pub invoked_from: Value,
    pub params: Value,
    /// Screens of an interactive user (`None`: every screen cancelled — a job never shows one).
    pub ui: Option<UiAnswers>,
    /// Echo the plugin's log lines up to this level on stderr (0 none).
    #[serde(default)]
    pub echo_log_level: i32,
}

impl HostSpec {
    /// The demo secretary sending `keys` (contract view) with the contract report.
    pub fn send(db: &Path, session: &str, keys: &[String]) -> HostSpec {
        HostSpec {
            db: db.display().to_string(),
            login: host_sim::seed::DEMO_RM_USER.into(),
            session: session.into(),
            option: "send".into(),
            invoked_from: json!({"kind": "contract_view", "contract_keys": keys}),
            params: json!({"source": {"kind": "report", "report_code": host_sim::CONTRACT_REPORT_CODE}}),
            ui: Some(UiAnswers::demo()),
            echo_log_level: 0,
        }
    }

    /// The scheduled job (the seed's non-interactive RM user, acting through the service user)
    /// checking every contract of the demo period from the menu.
    pub fn scheduled_check(db: &Path, session: &str) -> HostSpec {
        HostSpec {
            db: db.display().to_string(),
            login: host_sim::seed::DEMO_RM_USER_JOB.into(),
            session: session.into(),
            option: "check".into(),
            invoked_from: json!({"kind": "menu", "filter": {"codcoligada": 1, "period": host_sim::seed::DEMO_PERIOD}}),
            params: json!({}),
            ui: None,
            echo_log_level: 0,
        }
    }
}

/// What a finished process answered.
#[derive(Clone, Debug)]
pub struct HostRun {
    pub name: String,
    /// The export's status.
    pub status: i32,
    pub response: Value,
    /// Measured inside the child, around `execute`.
    pub elapsed_ms: u64,
    /// How many screens (authentication, CPF) the plugin asked the host for.
    pub ui_requests: u64,
    pub progress: Vec<Value>,
    pub stderr: String,
}

impl HostRun {
    /// (contract key → outcome).
    pub fn outcomes(&self) -> BTreeMap<String, String> {
        crate::outcomes(&self.response)
    }

    /// Count of each outcome.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for o in self.outcomes().values() {
            *m.entry(o.clone()).or_insert(0) += 1;
        }
        m
    }

    /// The result of one contract.
    pub fn result(&self, key: &str) -> Option<&Value> {
        self.response["results"]
            .as_array()?
            .iter()
            .find(|r| r["contract_key"] == key)
    }
}

enum Line {
    Progress(Value),
    Result(Value),
}

/// A running `proof-host`.
pub struct HostProcess {
    pub name: String,
    child: Child,
    lines: Receiver<Line>,
    progress: Vec<Value>,
    result: Option<Value>,
    stderr: Arc<Mutex<String>>,
    eof: bool,
}

impl HostProcess {
    /// Starts `bin` (the `proof-host` of this build: `env!("CARGO_BIN_EXE_proof-host")` in a
    /// test) with `spec`, loading the plugin at `lib`.
    pub fn spawn(bin: &str, lib: &Path, name: &str, spec: &HostSpec) -> HostProcess {
        let mut child = Command::new(bin)
            .arg(serde_json::to_string(spec).expect("spec JSON"))
            .env("TAE_EDU_LIB", lib)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let (tx, rx) = channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let parsed = if let Some(rest) = line.strip_prefix("PROGRESS ") {
                    serde_json::from_str(rest).ok().map(Line::Progress)
                } else if let Some(rest) = line.strip_prefix("RESULT ") {
                    serde_json::from_str(rest).ok().map(Line::Result)
                } else {
                    None
                };
                if let Some(p) = parsed {
                    if tx.send(p).is_err() {
                        break;
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        HostProcess {
            name: name.to_string(),
            child,
            lines: rx,
            progress: Vec::new(),
            result: None,
            stderr,
            eof: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The progress reports received so far.
    pub fn progress(&self) -> &[Value] {
        &self.progress
    }

    /// Reports so far whose outcome is `outcome`.
    pub fn progress_with(&self, outcome: &str) -> usize {
        self.progress
            .iter()
            .filter(|p| p["detail"]["outcome"] == outcome)
            .count()
    }

    /// Reads what the child printed until `until` holds for it, it finished, or `deadline`.
    /// Answers whether `until` held.
    pub fn pump_until(&mut self, deadline: Instant, until: impl Fn(&HostProcess) -> bool) -> bool {
        loop {
            if until(self) {
                return true;
            }
            if self.eof || self.result.is_some() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            match self.lines.recv_timeout(deadline - now) {
                Ok(Line::Progress(p)) => self.progress.push(p),
                Ok(Line::Result(r)) => self.result = Some(r),
                Err(RecvTimeoutError::Timeout) => return until(self),
                Err(RecvTimeoutError::Disconnected) => self.eof = true,
            }
        }
    }

    /// Reads whatever is already printed, without waiting.
    pub fn pump(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            match line {
                Line::Progress(p) => self.progress.push(p),
                Line::Result(r) => self.result = Some(r),
            }
        }
    }

    /// Whether the child printed its result.
    pub fn finished(&mut self) -> bool {
        self.pump();
        self.result.is_some()
    }

    /// Sends a signal by name (`"STOP"`, `"CONT"`) with the system's `kill` command (Unix).
    pub fn signal(&self, name: &str) {
        let st = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{name} {} failed", self.child.id());
    }

    /// SIGKILL (on Unix), then reaps the child. Answers false when it had already exited.
    pub fn sigkill(mut self) -> bool {
        let running = matches!(self.child.try_wait(), Ok(None));
        let _ = self.child.kill();
        let _ = self.child.wait();
        running
    }

    /// Waits for the child's result (at most `timeout`; then kills it and panics).
    pub fn finish(mut self, timeout: Duration) -> HostRun {
        let deadline = Instant::now() + timeout;
        self.pump_until(deadline, |p| p.result.is_some());
        if self.result.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "{}: no result within {timeout:?} ({} progress reports); stderr:\n{}",
                self.name,
                self.progress.len(),
                self.stderr.lock().unwrap()
            );
        }
        let st = self.child.wait().expect("wait for the child");
        let stderr = self.stderr.lock().unwrap().clone();
        assert!(st.success(), "{} exited with {st}: {stderr}", self.name);
        let r = self.result.take().unwrap();
        HostRun {
            name: self.name.clone(),
            status: r["status"].as_i64().unwrap_or(-1) as i32,
            response: r["response"].clone(),
            elapsed_ms: r["elapsed_ms"].as_u64().unwrap_or(0),
            ui_requests: r["ui_requests"].as_u64().unwrap_or(0),
            progress: std::mem::take(&mut self.progress),
            stderr,
        }
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A size knob: `$name` when set and valid, else `default`; `TAE_EDU_LONG=1` picks `long`.
pub fn size(name: &str, default: usize, long: usize) -> usize {
    if let Some(n) = std::env::var(name).ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    if std::env::var("TAE_EDU_LONG").is_ok_and(|v| v == "1") {
        long
    } else {
        default
    }
}

//! The plugin's `log` records, forwarded to the host's `log` callback.
//!
//! The cdylib has its own copy of the `log` global, so one forwarding logger is installed once
//! ([`install`], `log::set_logger(..).ok()`: a static logger, no allocation). While an export runs, [`with_sink`] makes the host's callback the "current
//! sink" of the calling thread: records logged on that thread go straight to the host. Records
//! logged on any other thread (the runtime's blocking pool for DNS, a host's own threads) must not call the
//! host there (host callbacks run only on the thread that entered the plugin), so they are queued
//! and delivered on the calling thread: before the next record or host call made on it, and at the
//! end of the export at the latest ([`flush_pending`]). Every line passes through
//! [`redact::redact`] before it is delivered or queued.
//!
//! The level comes from the environment variable `TAE_EDU_LOG` (`off`, `error`, `warn`, `info`,
//! `debug`, `trace`; default `info`), read once, when the logger is installed.

use crate::host::LogLevel;
use crate::redact;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Once;

/// Delivers one (already redacted) line to the host, on the calling thread.
pub type HostSink = Rc<dyn Fn(LogLevel, &str)>;

/// Lines logged off the calling thread wait here; beyond this many, the oldest are dropped
/// (and the drop is reported) so a host that never calls again cannot grow memory without bound.
const MAX_PENDING_LINES: usize = 10_000;

thread_local! {
    static CURRENT_SINK: RefCell<Option<HostSink>> = const { RefCell::new(None) };
}

struct Pending {
    lines: VecDeque<(LogLevel, String)>,
    dropped: u64,
}

static PENDING: Mutex<Pending> = Mutex::new(Pending {
    lines: VecDeque::new(),
    dropped: 0,
});

static INSTALL: Once = Once::new();

/// Installs the forwarding logger once per process (per copy of the plugin). If another logger
/// is already installed (the plugin linked as an rlib into a program with its own logger), that
/// one is kept and the plugin's records go to it.
pub fn install() {
    INSTALL.call_once(|| {
        let level = level_from_env(std::env::var("TAE_EDU_LOG").ok().as_deref());
        if log::set_logger(&FORWARDER).is_ok() {
            log::set_max_level(level);
        }
    });
}

/// Parses a `TAE_EDU_LOG` value; unknown or missing values mean `info`.
pub fn level_from_env(value: Option<&str>) -> log::LevelFilter {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("off") | Some("none") => log::LevelFilter::Off,
        Some("error") => log::LevelFilter::Error,
        Some("warn") | Some("warning") => log::LevelFilter::Warn,
        Some("debug") => log::LevelFilter::Debug,
        Some("trace") => log::LevelFilter::Trace,
        _ => log::LevelFilter::Info,
    }
}

/// Runs `f` with `sink` as the calling thread's log sink, then delivers every queued line and
/// restores the previous sink (also when `f` panics). A host without a `log` callback passes a
/// sink that discards.
pub fn with_sink<R>(sink: HostSink, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<HostSink>);
    impl Drop for Restore {
        fn drop(&mut self) {
            flush_pending();
            let previous = self.0.take();
            let _ = CURRENT_SINK.try_with(|current| {
                if let Ok(mut current) = current.try_borrow_mut() {
                    *current = previous;
                }
            });
        }
    }
    let previous = CURRENT_SINK.with(|current| current.replace(Some(sink)));
    let _restore = Restore(previous);
    flush_pending();
    f()
}

/// Whether the calling thread currently has a host sink (it is inside an export).
pub fn has_sink() -> bool {
    current_sink().is_some()
}

fn current_sink() -> Option<HostSink> {
    CURRENT_SINK
        .try_with(|current| current.try_borrow().ok().and_then(|sink| sink.clone()))
        .ok()
        .flatten()
}

/// Delivers the lines queued by other threads to the calling thread's sink, if it has one.
pub fn flush_pending() {
    let Some(sink) = current_sink() else {
        return;
    };
    let (lines, dropped) = {
        let mut pending = PENDING.lock();
        if pending.lines.is_empty() && pending.dropped == 0 {
            return;
        }
        let dropped = std::mem::take(&mut pending.dropped);
        (std::mem::take(&mut pending.lines), dropped)
    };
    if dropped > 0 {
        sink(
            LogLevel::Warn,
            &format!(
                "tae_edu::logging: {dropped} linha(s) de log de tarefas em segundo plano foram \
                 descartadas (fila cheia: {MAX_PENDING_LINES} linhas). ({dropped} background log \
                 lines dropped, queue full)"
            ),
        );
    }
    for (level, line) in lines {
        sink(level, &line);
    }
}

/// Sends one line to the host: directly when the calling thread is inside an export, queued
/// otherwise. The line is redacted first.
pub fn emit(level: LogLevel, line: &str) {
    let line = redact::redact(line);
    match current_sink() {
        Some(sink) => {
            flush_pending();
            sink(level, &line);
        }
        None => enqueue(level, line),
    }
}

fn enqueue(level: LogLevel, line: String) {
    let mut pending = PENDING.lock();
    if pending.lines.len() >= MAX_PENDING_LINES {
        pending.lines.pop_front();
        pending.dropped += 1;
    }
    pending.lines.push_back((level, line));
}

fn to_host_level(level: log::Level) -> LogLevel {
    match level {
        log::Level::Error => LogLevel::Error,
        log::Level::Warn => LogLevel::Warn,
        log::Level::Info => LogLevel::Info,
        log::Level::Debug => LogLevel::Debug,
        log::Level::Trace => LogLevel::Trace,
    }
}

struct Forwarder;

static FORWARDER: Forwarder = Forwarder;

impl log::Log for Forwarder {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!("{}: {}", record.target(), record.args());
        emit(to_host_level(record.level()), &line);
    }

    fn flush(&self) {
        flush_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_from_env_defaults_to_info() {
        assert_eq!(level_from_env(None), log::LevelFilter::Info);
        assert_eq!(level_from_env(Some("bogus")), log::LevelFilter::Info);
        assert_eq!(level_from_env(Some(" DEBUG ")), log::LevelFilter::Debug);
        assert_eq!(level_from_env(Some("off")), log::LevelFilter::Off);
        assert_eq!(level_from_env(Some("warn")), log::LevelFilter::Warn);
    }
}

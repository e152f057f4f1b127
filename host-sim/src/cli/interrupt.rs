//! Ctrl-C during `execute`: the first one asks the plugin to stop through the progress
//! callback's answer (`docs/abi.md`: non-zero asks for cancellation) — the contracts in flight
//! finish, the rest come back `not_processed`, the summary prints; the second one exits at once.
//!
//! The signal is taken by tokio's signal support (already a dependency) on a thread of its own,
//! so the thread inside the plugin is never disturbed.

use super::exit;
use std::sync::atomic::{AtomicUsize, Ordering};

static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

/// Whether Ctrl-C was pressed since [`install`].
pub fn requested() -> bool {
    INTERRUPTS.load(Ordering::SeqCst) > 0
}

/// Takes over SIGINT (Ctrl-C) for the rest of the process. Returns once the handler is in
/// place, so a Ctrl-C right after it is never the default "kill".
pub fn install() -> Result<(), String> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("ctrl-c".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!(
                        "não foi possível preparar o tratamento do Ctrl-C: {e}"
                    )));
                    return;
                }
            };
            rt.block_on(async move {
                #[cfg(unix)]
                let mut signal = {
                    use tokio::signal::unix::{signal, SignalKind};
                    match signal(SignalKind::interrupt()) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!(
                                "não foi possível preparar o tratamento do Ctrl-C: {e}"
                            )));
                            return;
                        }
                    }
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    #[cfg(unix)]
                    let got = signal.recv().await.is_some();
                    #[cfg(not(unix))]
                    let got = tokio::signal::ctrl_c().await.is_ok();
                    if !got {
                        return;
                    }
                    if INTERRUPTS.fetch_add(1, Ordering::SeqCst) == 0 {
                        eprintln!(
                            "\n{}",
                            host_sim::table::fit(
                                "host-sim: interrupção pedida (Ctrl-C). Os contratos em \
                                 andamento terminam; os demais ficam como não processados. \
                                 Ctrl-C de novo encerra na hora."
                            )
                        );
                    } else {
                        eprintln!("\nhost-sim: encerrado por um segundo Ctrl-C.");
                        std::process::exit(exit::INTERRUPTED as i32);
                    }
                }
            });
        })
        .map_err(|e| format!("não foi possível preparar o tratamento do Ctrl-C: {e}"))?;
    ready_rx
        .recv()
        .map_err(|_| "não foi possível preparar o tratamento do Ctrl-C".to_string())?
}

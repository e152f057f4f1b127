//! The host's own cost per contract, without the plugin or the network: the host methods a
//! send calls per contract (three fenced `records.put`, each one `BEGIN IMMEDIATE`
//! transaction, as the plugin does at c = 1), served by `RmHost::handle` over a file database
//! in WAL mode. Ignored by default (a measurement, not a check); run it in release:
//!
//! `cargo test --release -p host-sim --test host_cost -- --ignored --nocapture`
//!
//! It prints wall and CPU time (user + system, getrusage of the process) per contract.

use host_sim::seed::DEMO_RM_USER;
use host_sim::{RmHost, SchoolDb};
use serde_json::{json, Value};
use std::time::Instant;

const CONTRACTS: usize = 1000;

/// `struct rusage` of Linux on 64-bit targets: two timevals, then 14 longs.
#[repr(C)]
struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    rest: [i64; 14],
}

extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}

/// User + system CPU of the process, in milliseconds (getrusage, RUSAGE_SELF).
fn cpu_ms() -> f64 {
    let mut u = Rusage {
        utime: [0; 2],
        stime: [0; 2],
        rest: [0; 14],
    };
    // SAFETY: getrusage writes one `struct rusage` into the struct we own; 0 is RUSAGE_SELF.
    assert_eq!(unsafe { getrusage(0, &mut u) }, 0);
    let ms = |t: [i64; 2]| t[0] as f64 * 1000.0 + t[1] as f64 / 1000.0;
    ms(u.utime) + ms(u.stime)
}

/// A record the way the plugin writes it at one step of a send.
fn record(i: usize, step: usize) -> Value {
    let status = ["enviando", "rascunho", "pendente"][step];
    let label = ["Enviando", "Rascunho", "Pendente"][step];
    let kinds = ["created", "uploaded", "published"];
    let events: Vec<Value> = (0..=step)
        .map(|e| {
            json!({"at": "2026-12-02T10:00:00.123Z", "by": "secretaria",
                   "kind": kinds[e], "detail": format!("passo {e} do contrato {i}")})
        })
        .collect();
    json!({
        "id": format!("rec-{i:06}"), "data_server": "EduContratoData",
        "record_key": format!("1;2026{i:05};{i}"), "document_id": if step > 0 { json!(1000 + i) } else { Value::Null },
        "status": status, "status_label": label, "sent_by": "secretaria",
        "sent_at": if step == 2 { json!("2026-12-02T10:00:01Z") } else { Value::Null },
        "created_at": "2026-12-02T10:00:00Z", "updated_at": "2026-12-02T10:00:01Z",
        "document_name": format!("Contrato {i} - Aluno de Teste"),
        "recipients": [{"name": "Responsável Financeiro de Teste", "email": format!("resp{i}@example.com"),
                        "cpf": "529.982.247-25", "action": "sign", "status": "pending"}],
        "attempts": step + 1, "last_error": null,
        "events": events,
    })
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
#[test]
#[ignore]
fn host_cost_per_contract() {
    let dir = tempfile::tempdir().unwrap();
    let db = SchoolDb::open(dir.path().join("escola.db")).unwrap();
    let host = RmHost::new(db, DEMO_RM_USER);
    let contracts: Vec<Value> = (0..CONTRACTS)
        .map(|i| json!({"data_server": "EduContratoData", "key": format!("1;2026{i:05};{i}")}))
        .collect();
    let owner = json!({"run_id": "run-1", "session": "s", "user": "secretaria", "machine": "m", "option": "send"});
    let req = json!({"owner": owner, "ttl_secs": 600, "contracts": contracts});
    host.handle("leases.acquire", &serde_json::to_vec(&req).unwrap())
        .unwrap();
    // The requests are made before the clock starts: only the host's work is timed.
    let requests: Vec<Vec<u8>> = (0..CONTRACTS)
        .flat_map(|i| (0..3).map(move |step| (i, step)))
        .map(|(i, step)| {
            serde_json::to_vec(&json!({"lease_token": "run-1", "records": [record(i, step)]}))
                .unwrap()
        })
        .collect();
    let c0 = cpu_ms();
    let t = Instant::now();
    for r in &requests {
        host.handle("records.put", r).unwrap();
    }
    let wall = t.elapsed().as_secs_f64() * 1000.0;
    let cpu = cpu_ms() - c0;
    assert!(
        host.host_warnings().is_empty(),
        "{:?}",
        host.host_warnings()
    );
    let keys: Vec<String> = (0..CONTRACTS)
        .map(|i| format!("1;2026{i:05};{i}"))
        .collect();
    let t = Instant::now();
    let got = host
        .handle(
            "records.get",
            &serde_json::to_vec(&json!({"keys": keys})).unwrap(),
        )
        .unwrap();
    let get_ms = t.elapsed().as_secs_f64() * 1000.0;
    let got: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(got["records"].as_array().unwrap().len(), CONTRACTS);
    println!(
        "host_cost: {CONTRACTS} contracts, 3 records.put each: wall {:.3} ms, CPU {:.3} ms per contract; records.get of all: {get_ms:.1} ms",
        wall / CONTRACTS as f64,
        cpu / CONTRACTS as f64
    );
}

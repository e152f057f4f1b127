//! A storm of 429s: tae-sim answers bursts of `429 Too Many Requests` with `Retry-After` on
//! every route, while the plugin sends, checks, updates e-mails and deletes. A proxy in this test process
//! (`tests/src/tap.rs`) notes when each request arrives and when each answer came back, so
//! every repetition of a request that got a 429 is measured against the `Retry-After` it
//! received: **no request is repeated sooner** (the header is a floor, on every route and every
//! retry path). Requests are matched by method, path and body (multipart boundary aside).
//! Then a clean rerun: one document per contract, records agree.
//!
//! Size: `TAE_EDU_STORM_CONTRACTS` (default 40; 200 with `TAE_EDU_LONG=1`).

#[path = "integrity_support.rs"]
mod integrity;

use integrity::support::*;
use integrity::{few, summary};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tae_edu_tests::proofs::size;
use tae_edu_tests::tap::{Exchange, TapProxy};
use tae_sim::{FaultConfig, Latency, RateLimit, SimOptions};

/// What the storm did to one phase, measured from the proxy's notes.
#[derive(Debug, Default)]
struct Storm {
    rate_limited: usize,
    /// Repetitions measured (a later request identical to one that got a 429).
    retries: usize,
    /// Repetitions that came sooner than the `Retry-After`: (route, waited, asked).
    too_soon: Vec<(String, Duration, Duration)>,
    /// 429s never repeated (the plugin gave up on that request).
    not_repeated: usize,
    /// Smallest (waited − asked), in ms.
    min_margin_ms: Option<i128>,
    max_wait_ms: u128,
    per_route: BTreeMap<String, usize>,
}

fn measure(exchanges: &[Exchange]) -> Storm {
    let mut s = Storm::default();
    for (i, e) in exchanges.iter().enumerate() {
        if e.status != Some(429) {
            continue;
        }
        s.rate_limited += 1;
        // The route, with document ids folded ("/publicacoes/100006" → "/publicacoes/{id}").
        let path: Vec<String> = e
            .path
            .split('?')
            .next()
            .unwrap_or("")
            .split('/')
            .map(|seg| {
                if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                    "{id}".to_string()
                } else {
                    seg.to_string()
                }
            })
            .collect();
        let route = format!("{} {}", e.method, path.join("/"));
        *s.per_route.entry(route.clone()).or_insert(0) += 1;
        let asked = Duration::from_secs(
            e.retry_after
                .as_deref()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("a 429 without Retry-After seconds: {e:?}")),
        );
        let answered = e.answered.expect("a 429 has its answer time");
        let next = exchanges[i + 1..]
            .iter()
            .find(|f| f.identity() == e.identity() && f.arrived >= e.arrived);
        let Some(next) = next else {
            s.not_repeated += 1;
            continue;
        };
        s.retries += 1;
        let waited = next.arrived.saturating_duration_since(answered);
        let margin = waited.as_millis() as i128 - asked.as_millis() as i128;
        s.min_margin_ms = Some(s.min_margin_ms.map_or(margin, |m| m.min(margin)));
        s.max_wait_ms = s.max_wait_ms.max(waited.as_millis());
        if waited < asked {
            s.too_soon.push((route, waited, asked));
        }
    }
    s
}

fn storm(retry_after_secs: u64) -> FaultConfig {
    FaultConfig {
        latency_ms: Some(Latency::Range { min: 0, max: 3 }),
        rate_limit: Some(RateLimit {
            rate: 0.12,
            burst: 3,
            retry_after_secs,
        }),
        ..FaultConfig::default()
    }
}

#[test]
fn a_429_storm_every_retry_waits_at_least_the_retry_after_it_received() {
    let n = size("TAE_EDU_STORM_CONTRACTS", 40, 200);
    let started = Instant::now();
    let w = World::new(
        n,
        SimOptions {
            seed: 429,
            ..SimOptions::default()
        },
    );
    let proxy = TapProxy::start(w.sim.addr()).expect("proxy");
    w.host
        .db()
        .configure_tae(
            &proxy.base_url(),
            tae_sim::ADMIN_EMAIL,
            tae_sim::ADMIN_PASSWORD,
        )
        .unwrap();
    // A client timeout longer than any Retry-After here, so waits are the plugin's choice.
    w.host
        .db()
        .set_param("request_timeout_secs", &json!(10))
        .unwrap();
    w.warm_up();

    let mut phases = Vec::new();
    // Send (upload, publish, and whatever the send reads), Retry-After: 1.
    let from = proxy.request_count();
    w.set_faults(storm(1));
    let sent = w.send(&w.keys);
    w.set_faults(FaultConfig::default());
    phases.push(("send", sent, proxy.exchanges()[from..].to_vec()));
    // Check (reads; D5 off, so each document is read on its own), Retry-After: 2.
    let from = proxy.exchanges().len();
    w.sim.state().set_many_ids(false);
    w.set_faults(storm(2));
    let checked = w.run_keys("check", &w.keys, json!({}));
    w.set_faults(FaultConfig::default());
    w.sim.state().set_many_ids(true);
    phases.push(("check", checked, proxy.exchanges()[from..].to_vec()));
    // Update e-mails (add and remove recipients): new e-mails for the responsibles of every
    // third contract (and their siblings), Retry-After: 2.
    let to_update: Vec<String> = {
        let db = open_db(&w.db_path);
        let mut keys = Vec::new();
        for key in w.keys.iter().step_by(3) {
            let c = db.contract(key).unwrap().unwrap();
            let r = c.financial_responsible.unwrap();
            db.set_responsible_email(&r.code, Some(&format!("novo.{}@escola.example", r.code)))
                .unwrap();
            keys.push(key.clone());
        }
        keys
    };
    let from = proxy.exchanges().len();
    w.set_faults(storm(2));
    let updated = w.run_keys("update_emails", &w.keys, json!({}));
    w.set_faults(FaultConfig::default());
    let by_key = results_by_key(&updated);
    let sent_first = results_by_key(&phases[0].1);
    for key in &to_update {
        let outcome = by_key[key]["outcome"].as_str().unwrap_or("");
        assert!(
            sent_first[key]["outcome"] != "sent" || outcome == "updated" || outcome == "failed",
            "{key}: its responsible's e-mail changed, so updated (or failed under the storm): {}",
            by_key[key]
        );
    }
    phases.push(("update", updated, proxy.exchanges()[from..].to_vec()));
    // Delete a quarter (cancel), Retry-After: 1.
    let to_delete: Vec<String> = w.keys.iter().step_by(4).cloned().collect();
    let from = proxy.exchanges().len();
    w.set_faults(storm(1));
    let deleted = w.run_keys("delete", &to_delete, json!({}));
    w.set_faults(FaultConfig::default());
    phases.push(("delete", deleted, proxy.exchanges()[from..].to_vec()));

    let mut lines = Vec::new();
    let mut too_soon = Vec::new();
    let mut total = Storm::default();
    for (name, response, exchanges) in &phases {
        let counts = outcome_counts(response);
        let s = measure(exchanges);
        lines.push(format!(
            "{name}: requests={} 429={} retries_measured={} too_soon={} not_repeated={} min_margin_ms={:?} max_wait_ms={} outcomes={counts:?}",
            exchanges.len(),
            s.rate_limited,
            s.retries,
            s.too_soon.len(),
            s.not_repeated,
            s.min_margin_ms,
            s.max_wait_ms
        ));
        too_soon.extend(s.too_soon.iter().map(|x| format!("{name}: {x:?}")));
        total.rate_limited += s.rate_limited;
        total.retries += s.retries;
        for (route, k) in s.per_route {
            *total.per_route.entry(route).or_insert(0) += k;
        }
        // Only the outcomes of the operation (or failed / skipped: a contract whose send failed
        // under the storm has nothing to check or delete).
        for (outcome, _) in counts.iter() {
            assert!(
                ["sent", "failed", "pending", "updated", "deleted", "skipped"]
                    .contains(&outcome.as_str()),
                "{name}: unexpected outcome {outcome}: {counts:?}"
            );
        }
        for r in response["results"].as_array().unwrap() {
            if r["outcome"] == "failed" {
                let msg = r["message"].as_str().unwrap_or("");
                assert!(msg.len() > 10, "{name}: a failure gives its reason: {r}");
            }
        }
    }
    for l in &lines {
        println!("{l}");
    }
    assert!(
        total.rate_limited >= 20 && total.retries >= 10,
        "the storm was a storm: {} × 429, {} retries measured",
        total.rate_limited,
        total.retries
    );
    assert!(
        too_soon.is_empty(),
        "requests repeated sooner than the Retry-After they received: {}",
        few(&too_soon)
    );

    // A clean rerun of the send: every contract not deleted has exactly one live document.
    let rerun = w.send(&w.keys);
    let counts = outcome_counts(&rerun);
    assert!(
        counts.keys().all(|k| k == "sent" || k == "skipped"),
        "{counts:?}"
    );
    let a = audit(w.host.db(), &w.sim);
    assert!(a.is_clean(), "{}", summary(&a));
    for k in &w.keys {
        let live = a.published.get(k).map_or(0, |ids| {
            ids.iter()
                .filter(|id| w.sim.state().document_status(**id) != Some(TAE_CANCELLED))
                .count()
        });
        assert_eq!(live, 1, "{k}: one live document");
    }
    figures(&format!(
        "retry-after contracts={n} {} routes_429={:?} elapsed_s={}",
        lines.join(" | "),
        total.per_route,
        started.elapsed().as_secs()
    ));
}

/// The measure itself: a repetition 300 ms after a `Retry-After: 1` is caught, one after
/// 1 s is not, and a different request in between is not taken for a repetition.
#[test]
fn the_measure_catches_a_retry_sooner_than_its_retry_after() {
    let t0 = Instant::now();
    let ex = |ms: u64, path: &str, status: u16, retry_after: Option<&str>| Exchange {
        conn: 0,
        method: "POST".into(),
        path: path.into(),
        body_hash: 7,
        arrived: t0 + Duration::from_millis(ms),
        answered: Some(t0 + Duration::from_millis(ms + 5)),
        status: Some(status),
        retry_after: retry_after.map(str::to_string),
    };
    let s = measure(&[
        ex(0, "/documents/v1/publicacoes", 429, Some("1")),
        ex(100, "/documents/v1/envelopes/upload", 200, None),
        ex(305, "/documents/v1/publicacoes", 429, Some("1")),
        ex(1400, "/documents/v1/publicacoes", 200, None),
    ]);
    assert_eq!(s.rate_limited, 2);
    assert_eq!(s.retries, 2);
    assert_eq!(s.too_soon.len(), 1, "{s:?}");
    assert_eq!(s.too_soon[0].1, Duration::from_millis(300));
    assert_eq!(s.min_margin_ms, Some(-700));
}

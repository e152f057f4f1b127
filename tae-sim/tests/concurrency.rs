//! Many clients at once: unique ids, exact counters, every document finalised. The size comes
//! from `TAE_SIM_LOAD_DOCS` (default 40, small for CI); the rate is printed.

mod common;

use common::{publication, Target};
use std::time::Instant;
use tae_sim::api;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upload_publish_read() {
    let t = Target::new();
    let docs: usize = std::env::var("TAE_SIM_LOAD_DOCS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    let concurrency = 8;
    let token = t.token().await;
    let t = std::sync::Arc::new(t);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let t = t.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (worker..docs).step_by(concurrency) {
                let email = format!("resp{i}@example.com");
                let id = t.upload(&token, &format!("Contrato {i}")).await;
                let (status, body) = t
                    .post(
                        api::PUBLISH_V1,
                        &token,
                        publication(id, &[(email.as_str(), 0)]),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(t.read(&token, id).await["status"], api::STATUS_PENDING);
                ids.push((id, email));
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    let mut ids: Vec<u64> = all.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), docs, "unique ids");
    let state = t.state();
    assert_eq!(state.counter("POST", api::UPLOAD), docs as u64);
    assert_eq!(state.counter("POST", api::PUBLISH_V1), docs as u64);
    assert_eq!(state.counter("GET", api::READ_V2), docs as u64);
    for (id, email) in &all {
        state.act(*id, email).unwrap();
    }
    let (status, body) = t
        .post(api::MANY_DOCUMENTS, &token, serde_json::json!(ids))
        .await;
    assert_eq!(status, 200);
    let list = body["data"].as_array().unwrap();
    assert_eq!(list.len(), docs);
    assert!(list.iter().all(|d| d["status"] == api::STATUS_FINALISED));
    println!(
        "{docs} documents × 3 requests with {concurrency} clients in {:?} ({:.0} requests/s)",
        elapsed,
        (docs * 3) as f64 / elapsed.as_secs_f64()
    );
}

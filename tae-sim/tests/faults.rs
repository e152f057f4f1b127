//! Fault injection, TLS, token expiry, shutdown and the binary. Stand-in only (these control
//! the server), so nothing here runs against a live service.

mod common;

use common::{client, Target};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};
use tae_sim::{api, DropMode, FaultConfig, Latency, RateLimit, RateMap, SimOptions, SimServer};

fn sim_target(faults: FaultConfig) -> Target {
    Target::with_options(SimOptions {
        faults,
        ..SimOptions::default()
    })
}

#[tokio::test]
async fn latency_fixed_and_range() {
    let t = sim_target(FaultConfig {
        latency_ms: Some(Latency::Fixed(120)),
        ..FaultConfig::default()
    });
    let started = Instant::now();
    let (status, _) = t.login_as(&t.user, &t.password).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(120));
    // The portal is never slowed down.
    let started = Instant::now();
    t.portal(Method::GET, "/_sim/counters", None).await;
    assert!(started.elapsed() < Duration::from_millis(100));

    t.state().set_faults(FaultConfig {
        latency_ms: Some(Latency::Range { min: 30, max: 60 }),
        ..FaultConfig::default()
    });
    for _ in 0..3 {
        let started = Instant::now();
        t.send(Method::GET, api::PROFILE, None, None).await;
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(30), "{elapsed:?}");
    }
}

/// The timeline is off by default; once on, each TAE request gets its route, connection and
/// arrival/answer times, and with a fixed latency the answer leaves at arrival + L (never
/// earlier; handling runs inside L, so only the timer's tick and scheduling are added).
#[tokio::test]
async fn timeline_records_arrival_and_answer_at_arrival_plus_latency() {
    let t = sim_target(FaultConfig {
        latency_ms: Some(Latency::Fixed(25)),
        ..FaultConfig::default()
    });
    let token = t.token().await;
    assert!(t.state().timeline().entries.is_empty(), "off by default");
    let (status, body) = t
        .portal(
            Method::POST,
            "/_sim/timeline",
            Some(json!({"recording": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = t
        .portal(Method::POST, "/_sim/timeline", Some(json!({"nope": 1})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let before = tae_sim::unix_micros();
    for i in 0..4 {
        t.upload(&token, &format!("linha do tempo {i}")).await;
    }
    t.send(Method::GET, api::PROFILE, Some(&token), None).await;
    let after = tae_sim::unix_micros();
    let (status, dump) = t.portal(Method::GET, "/_sim/timeline", None).await;
    assert_eq!(status, StatusCode::OK);
    let dump: tae_sim::TimelineDump = serde_json::from_value(dump).unwrap();
    assert!(dump.recording);
    assert!(dump.connections >= 1);
    assert_eq!(dump.entries.len(), 5, "{:?}", dump.entries);
    assert_eq!(
        dump.entries
            .iter()
            .filter(|e| e.route == format!("POST {}", api::UPLOAD))
            .count(),
        4
    );
    for e in &dump.entries {
        assert!(e.arrival_us >= before && e.answer_us <= after, "{e:?}");
        let server_us = e.answer_us - e.arrival_us;
        assert!(server_us >= 25_000, "answered early: {e:?}");
        assert!(server_us < 25_000 + 20_000, "far too late: {e:?}");
        assert_eq!(e.status, 200);
        assert!(e.connection >= 1);
    }
    // Off again: nothing more is recorded.
    t.state().set_timeline(false);
    t.send(Method::GET, api::PROFILE, Some(&token), None).await;
    assert_eq!(t.state().timeline().entries.len(), 5);
}

#[tokio::test]
async fn error_rate_per_route_gives_5xx_only_there() {
    let t = sim_target(FaultConfig::default());
    let token = t.token().await;
    let (status, _) = t
        .portal(
            Method::PUT,
            "/_sim/faults",
            Some(json!({"error_rate": {"POST /documents/v1/envelopes/upload": 1.0}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..5 {
        let (status, body) = t
            .upload_bytes(&token, "x", "x.pdf", common::sample_pdf("x"))
            .await;
        assert!(
            [500, 502, 503].contains(&status.as_u16()),
            "{status} {body}"
        );
        assert_eq!(body["success"], false);
    }
    assert!(t.state().documents().is_empty(), "a 5xx never took effect");
    let (status, _) = t.get(api::PROFILE, &token).await;
    assert_eq!(status, StatusCode::OK, "other routes unaffected");
    assert_eq!(
        t.state().counter("POST", api::UPLOAD),
        5,
        "faulted requests are counted"
    );
    // Specific statuses; identity routes use their own envelope.
    t.state().set_faults(FaultConfig {
        error_rate: RateMap::all(1.0),
        error_statuses: vec![503],
        ..FaultConfig::default()
    });
    let (status, body) = t.get(api::PROFILE, &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["succeeded"], false);
    let (status, _) = t.portal(Method::GET, "/_sim/documents", None).await;
    assert_eq!(status, StatusCode::OK, "the portal is never faulted");
}

#[tokio::test]
async fn rate_limit_bursts_of_429_with_retry_after() {
    let t = sim_target(FaultConfig::default());
    let token = t.token().await;
    t.state().set_faults(FaultConfig {
        rate_limit: Some(RateLimit {
            rate: 1.0,
            burst: 2,
            retry_after_secs: 3,
        }),
        ..FaultConfig::default()
    });
    let response = t
        .client
        .get(t.url(api::PROFILE))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "3");
    // The burst ends when the fault is lifted.
    t.state().set_faults(FaultConfig::default());
    let (status, _) = t.get(api::PROFILE, &token).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn hang_outlasts_the_client_timeout() {
    let t = sim_target(FaultConfig::default());
    let token = t.token().await;
    t.state().set_faults(FaultConfig {
        hang_rate: RateMap::all(1.0),
        hang_ms: Some(2_000),
        ..FaultConfig::default()
    });
    let short = client(Duration::from_millis(300));
    let started = Instant::now();
    let result = short
        .get(t.url(api::PROFILE))
        .bearer_auth(&token)
        .send()
        .await;
    let err = result.expect_err("must time out");
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(1_500));
}

#[test]
fn a_hang_ends_when_the_server_shuts_down() {
    let sim = SimServer::start(SimOptions {
        faults: FaultConfig {
            hang_rate: RateMap::all(1.0),
            ..FaultConfig::default()
        },
        ..SimOptions::default()
    })
    .unwrap();
    let url = format!("{}{}", sim.base_url(), api::PROFILE);
    let request = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            client(Duration::from_secs(60))
                .get(url)
                .send()
                .await
                .is_err()
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        sim.state().counter("GET", api::PROFILE),
        1,
        "request is hanging"
    );
    let started = Instant::now();
    sim.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        request.join().unwrap(),
        "the hung request ends without an answer"
    );
}

#[tokio::test]
async fn dropped_connection_before_and_after_processing() {
    let t = sim_target(FaultConfig::default());
    let token = t.token().await;
    for (mode, takes_effect) in [(DropMode::Before, false), (DropMode::After, true)] {
        t.state().set_faults(FaultConfig {
            drop_rate: RateMap(
                [(format!("POST {}", api::UPLOAD), 1.0)]
                    .into_iter()
                    .collect(),
            ),
            drop_mode: mode,
            ..FaultConfig::default()
        });
        let before = t.state().documents().len();
        let part = reqwest::multipart::Part::bytes(common::sample_pdf("drop"))
            .file_name("drop.pdf")
            .mime_str("application/pdf")
            .unwrap();
        let form = reqwest::multipart::Form::new()
            .text("NomeEnvelope", "drop")
            .part("Envelope", part);
        let err = t
            .client
            .post(t.url(api::UPLOAD))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .expect_err("connection dropped");
        assert!(!err.is_timeout(), "{err:?}");
        let after = t.state().documents().len();
        assert_eq!(after - before, usize::from(takes_effect), "{mode:?}");
    }
    t.state().set_faults(FaultConfig::default());
    let (status, _) = t.get(api::PROFILE, &token).await;
    assert_eq!(status, StatusCode::OK, "the server still answers");
}

#[tokio::test]
async fn token_ttl_and_forced_expiry_give_401() {
    let t = sim_target(FaultConfig {
        token_ttl_secs: Some(1),
        ..FaultConfig::default()
    });
    let (_, body) = t.login_as(&t.user, &t.password).await;
    let token = body["data"]["token"].as_str().unwrap().to_string();
    let (status, _) = t.get(api::PROFILE, &token).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, body) = t.get(api::PROFILE, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = t.get("/documents/v2/publicacoes/1", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["success"], false);

    t.state().set_faults(FaultConfig::default());
    let token = t.token().await;
    let (status, _) = t.get(api::PROFILE, &token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = t.portal(Method::POST, "/_sim/tokens/expire", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = t.get(api::PROFILE, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn faults_are_deterministic_for_a_seed() {
    let faults = FaultConfig {
        error_rate: RateMap::all(0.5),
        ..FaultConfig::default()
    };
    let mut runs = Vec::new();
    for seed in [42, 42, 43] {
        let t = Target::with_options(SimOptions {
            seed,
            faults: faults.clone(),
            ..SimOptions::default()
        });
        let mut statuses = Vec::new();
        for _ in 0..24 {
            let (status, _) = t.send(Method::GET, api::PROFILE, None, None).await;
            statuses.push(status.as_u16());
        }
        assert!(statuses.contains(&401) && statuses.iter().any(|s| *s >= 500));
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert_ne!(runs[0], runs[2]);
}

#[tokio::test]
async fn tls_with_the_generated_ca() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimServer::start(SimOptions {
        tls: true,
        cert_dir: Some(dir.path().to_path_buf()),
        ..SimOptions::default()
    })
    .unwrap();
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));
    let ca_path = sim.ca_cert_path().unwrap();
    assert_eq!(ca_path, dir.path().join("ca.pem"));
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_path).unwrap()).unwrap();
    common::install_crypto();
    let trusting = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let body = json!({"userName": tae_sim::ADMIN_EMAIL, "password": tae_sim::ADMIN_PASSWORD});
    let response = trusting
        .post(format!("{}{}", sim.base_url(), api::LOGIN_V3))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let localhost = sim.base_url().replace("127.0.0.1", "localhost");
    let response = trusting
        .post(format!("{localhost}{}", api::LOGIN_V3))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A client that does not trust the CA refuses the connection.
    let empty: [reqwest::Certificate; 0] = [];
    let distrusting = reqwest::Client::builder()
        .tls_certs_only(empty)
        .build()
        .unwrap();
    assert!(distrusting
        .post(format!("{}{}", sim.base_url(), api::LOGIN_V3))
        .json(&body)
        .send()
        .await
        .is_err());
}

#[test]
fn binary_prints_the_base_url_first_and_serves() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tae-sim"))
        .args(["--addr", "127.0.0.1:0", "--seed", "7"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines.next().unwrap().unwrap();
    let admin = lines.next().unwrap().unwrap();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(admin.contains(tae_sim::ADMIN_EMAIL) && admin.contains(tae_sim::ADMIN_PASSWORD));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = runtime.block_on(async {
        client(Duration::from_secs(10))
            .post(format!("{base}{}", api::LOGIN_V3))
            .json(&json!({"userName": tae_sim::ADMIN_EMAIL, "password": tae_sim::ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, StatusCode::OK);
    // SIGTERM stops it cleanly.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let started = Instant::now();
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "{exit:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

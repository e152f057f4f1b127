//! `Retry-After` is a floor on every retry: a scripted TAE answers 429 (and 503) with
//! `Retry-After` and records when each request arrives; every retry's delay is measured
//! against the `Retry-After` the previous answer carried. The retry policy's own backoff is
//! set far shorter (10 ms), so only the floor can explain the waits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tae_edu::tae::{Action, NewRecipient, Publication, RecipientAuth, TaeClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One scripted answer: status, Retry-After seconds, JSON body.
type Answer = (u16, Option<u64>, &'static str);

/// A minimal HTTP/1.1 server answering `script` in order (then the last answer again) and
/// recording each request's arrival time and request line.
async fn scripted(script: Vec<Answer>) -> (String, Arc<Mutex<Vec<(Instant, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let script = Arc::new(script);
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (log, script) = (log.clone(), script.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // Read one request: head, then Content-Length bytes.
                    let head_end = loop {
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + len);
                    let n = {
                        let mut log = log.lock().unwrap();
                        log.push((
                            Instant::now(),
                            head.lines().next().unwrap_or("").to_string(),
                        ));
                        log.len() - 1
                    };
                    let (status, retry_after, body) = script[n.min(script.len() - 1)];
                    let mut resp = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                        body.len()
                    );
                    if let Some(s) = retry_after {
                        resp.push_str(&format!("Retry-After: {s}\r\n"));
                    }
                    resp.push_str("\r\n");
                    resp.push_str(body);
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

fn client(url: &str) -> TaeClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tae_edu::tae::client::set_retry_policy(tae_edu::tae::RetryPolicy {
        attempts: 6,
        budget: Duration::from_secs(30),
        base_delay: Duration::from_millis(10),
    });
    let http = tae_edu::tae::client::build_http(Duration::from_secs(10), None).unwrap();
    TaeClient::new(http, url, url)
}

/// Asserts that each request after the first came no sooner than the Retry-After of the
/// answer before it; answers the gaps.
fn assert_floors(seen: &[(Instant, String)], script: &[Answer]) -> Vec<Duration> {
    let mut gaps = Vec::new();
    for i in 1..seen.len() {
        let gap = seen[i].0 - seen[i - 1].0;
        if let Some(s) = script[(i - 1).min(script.len() - 1)].1 {
            assert!(
                gap >= Duration::from_secs(s),
                "request {i} ({}) came {gap:?} after an answer with Retry-After: {s}",
                seen[i].1
            );
        }
        gaps.push(gap);
    }
    gaps
}

const DOC: &str = r#"{"success":true,"data":{"id":5,"status":0}}"#;
const RATE: &str = r#"{"success":false,"errors":["Muitas requisições."]}"#;

#[tokio::test(flavor = "current_thread")]
async fn every_retry_waits_at_least_the_retry_after_it_received() {
    // An idempotent read: two 429 then a 503, each with Retry-After 1, then the answer.
    let script: Vec<Answer> = vec![
        (429, Some(1), RATE),
        (429, Some(1), RATE),
        (503, Some(1), "{}"),
        (200, None, DOC),
    ];
    let (url, seen) = scripted(script.clone()).await;
    let c = client(&url);
    let started = Instant::now();
    let doc = c.document("t", 5).await.unwrap();
    assert_eq!(doc.id, 5);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    let gaps = assert_floors(&seen, &script);
    eprintln!("read: gaps {gaps:?}, total {:?}", started.elapsed());

    // A publish (not idempotent: only a 429, refused before processing, is retried).
    let script: Vec<Answer> = vec![
        (429, Some(1), RATE),
        (429, Some(2), RATE),
        (200, None, r#"{"success":true,"data":null}"#),
    ];
    let (url, seen) = scripted(script.clone()).await;
    let c = client(&url);
    let publication = Publication {
        document_id: 5,
        recipients: vec![NewRecipient {
            email: "a@b.example".into(),
            name: "A".into(),
            cpf: None,
            action: Action::Sign,
            financial_responsible: true,
        }],
        auth: RecipientAuth::Login,
        expires: None,
        subject: "s".into(),
        body: "b".into(),
        reminder_days: 0,
    };
    c.publish("t", &publication).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let gaps = assert_floors(&seen, &script);
    assert!(gaps[1] >= Duration::from_secs(2), "{gaps:?}");
    eprintln!("publish: gaps {gaps:?}");

    // When the budget cannot honour the Retry-After, the call fails at once and the error
    // carries the floor for its caller.
    tae_edu::tae::client::set_retry_policy(tae_edu::tae::RetryPolicy {
        attempts: 6,
        budget: Duration::from_millis(500),
        base_delay: Duration::from_millis(10),
    });
    let script: Vec<Answer> = vec![(429, Some(3), RATE)];
    let (url, seen) = scripted(script).await;
    let http = tae_edu::tae::client::build_http(Duration::from_secs(10), None).unwrap();
    let c = TaeClient::new(http, &url, &url);
    let e = c.document("t", 5).await.unwrap_err();
    assert_eq!(e.kind, tae_edu::tae::ErrorKind::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "no retry sooner than Retry-After"
    );
}

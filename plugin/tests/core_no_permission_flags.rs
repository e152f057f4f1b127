//! A TAE whose profile reports no permission flags (as the real service may): the run is not
//! refused up front, and the first HTTP 403 on a route becomes the permission error of the run
//! (no new contract is started). Served by a tiny canned HTTP stub.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tae_edu::api;

fn answer(path: &str) -> (u16, String) {
    if path.contains("/auth/login") {
        (200, r#"{"succeeded":true,"description":"","data":{"token":"tok-abcdef-123456","expirationDate":"2099-01-01T00:00:00"},"messages":[]}"#.into())
    } else if path.contains("/users/profile") {
        (200, r#"{"succeeded":true,"description":"","data":{"email":"admin@escola.example","fullName":"Admin"},"messages":[]}"#.into())
    } else if path.contains("email-list") {
        let email = if path.contains("admin") {
            "admin@escola.example"
        } else {
            "x"
        };
        (
            200,
            format!(r#"{{"success":true,"data":[{{"email":"{email}"}}],"errors":[]}}"#),
        )
    } else if path.contains("/users/register") {
        (
            200,
            r#"{"succeeded":true,"description":"","data":{},"messages":[]}"#.into(),
        )
    } else if path.contains("envelopes/upload") {
        (403, r#"{"success":false,"data":null,"errors":["Usuário sem permissão para enviar documentos."]}"#.into())
    } else {
        (404, String::new())
    }
}

fn stub() -> (String, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let uploads = Arc::new(AtomicU32::new(0));
    let counter = uploads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                if path.contains("upload") {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                let (status, body) = answer(&path);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (base, uploads)
}

#[test]
fn a_403_without_permission_flags_stops_the_run() {
    let (base, uploads) = stub();
    let host = MockHost::new(&base);
    host.add_contracts(6);
    host.set_param("max_concurrency", serde_json::json!(1));
    let r = api::execute(&host, send_request(&session("403"), &host.keys())).unwrap();
    let o = outcomes(&r);
    assert_eq!(o[0], "failed", "{r:#}");
    assert!(
        r["results"][0]["message"]
            .as_str()
            .unwrap()
            .contains("permissão"),
        "{r:#}"
    );
    assert_eq!(o[1..], ["not_processed"; 5], "{r:#}");
    assert!(r["results"][1]["message"]
        .as_str()
        .unwrap()
        .contains("sem permissão para enviar documentos"));
    assert_eq!(
        uploads.load(Ordering::SeqCst),
        1,
        "no other contract was tried"
    );
}

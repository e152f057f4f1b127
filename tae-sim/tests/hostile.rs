//! A hostile TAE: each hostile answer of `FaultConfig::hostile` (`PUT /_sim/faults`), per route
//! or for every route, answered as configured — and whether the request took effect. Stand-in
//! only.

mod common;

use common::{client, Target};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Read;
use std::time::{Duration, Instant};
use tae_sim::{api, FaultConfig};

const READ: &str = "GET /documents/v2/publicacoes/{id}";
const UPLOAD: &str = "POST /documents/v1/envelopes/upload";

/// Puts `hostile` (the JSON of `FaultConfig::hostile`) in force through the portal.
async fn hostile(t: &Target, hostile: Value) {
    let (status, body) = t
        .portal(
            Method::PUT,
            "/_sim/faults",
            Some(json!({"hostile": hostile})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hostile"]["routes"], hostile["routes"], "{body}");
}

async fn clear(t: &Target) {
    t.state().set_faults(FaultConfig::default());
}

/// A document and the raw bytes of its normal D3 answer.
async fn document(t: &Target, token: &str) -> (u64, Vec<u8>) {
    let id = t.upload(token, "Contrato hostil").await;
    let normal = raw_read(t, token, id).await.2;
    serde_json::from_slice::<Value>(&normal).expect("normal answer is JSON");
    (id, normal)
}

/// A D3 request without following redirects or decoding: status, headers, body bytes.
async fn raw_read(
    t: &Target,
    token: &str,
    id: u64,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    raw(
        t,
        Method::GET,
        &format!("/documents/v2/publicacoes/{id}"),
        token,
    )
    .await
}

async fn raw(
    t: &Target,
    method: Method,
    path: &str,
    token: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let response = client
        .request(method, t.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn truncated_json_is_a_prefix_of_the_real_answer_on_that_route_only() {
    let t = Target::new();
    let token = t.token().await;
    let (id, normal) = document(&t, &token).await;
    hostile(&t, json!({"routes": {READ: "truncated_json"}})).await;
    let (status, headers, body) = raw_read(&t, &token, id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), normal.len() / 2);
    assert_eq!(body, normal[..body.len()]);
    assert_eq!(header(&headers, "content-length"), body.len().to_string());
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    // Another route answers normally; the portal is never hostile.
    let (status, profile) = t.get(api::PROFILE, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(profile["succeeded"], true);
    assert_eq!(t.state().faults().hostile.routes.len(), 1);
    // The upload takes effect under it: the document exists though its answer was cut.
    hostile(&t, json!({"routes": {UPLOAD: "truncated_json"}})).await;
    let before = t.state().documents().len();
    let (status, body) = t
        .upload_bytes(&token, "Cortado", "c.pdf", common::sample_pdf("c"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, Value::Null, "the client cannot parse it");
    assert_eq!(t.state().documents().len(), before + 1);
}

#[tokio::test]
async fn wrong_types_flip_every_leaf_of_data() {
    let t = Target::new();
    let token = t.token().await;
    let (id, normal) = document(&t, &token).await;
    let normal: Value = serde_json::from_slice(&normal).unwrap();
    hostile(&t, json!({"routes": {READ: "wrong_types"}})).await;
    let (status, _, body) = raw_read(&t, &token, id).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["success"], true, "the envelope says all is well");
    assert_eq!(body["data"]["id"], true);
    assert_eq!(body["data"]["status"], true, "status 5 → true");
    assert_eq!(
        body["data"]["nomeArquivo"],
        json!("Contrato hostil".chars().count())
    );
    assert_eq!(body["data"]["assinantes"], json!({}));
    assert_eq!(body["data"]["motivoRejeicao"], Value::Null);
    assert_eq!(
        body["data"].as_object().unwrap().len(),
        normal["data"].as_object().unwrap().len()
    );
    // On the identity envelope too: the token is a number.
    hostile(&t, json!({"routes": {"*": "wrong_types"}})).await;
    let (status, login) = t.login_as(&t.user, &t.password).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(login["succeeded"], true);
    assert_eq!(login["data"]["token"], 48);
}

#[tokio::test]
async fn missing_fields_drop_data_or_the_named_properties() {
    let t = Target::new();
    let token = t.token().await;
    let (id, _) = document(&t, &token).await;
    hostile(&t, json!({"routes": {READ: "missing_fields"}})).await;
    let (status, _, body) = raw_read(&t, &token, id).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["success"], true);
    assert!(body.get("data").is_none(), "{body}");
    hostile(
        &t,
        json!({"routes": {READ: "missing_fields"}, "fields": ["status", "nomeArquivo"]}),
    )
    .await;
    let (_, _, body) = raw_read(&t, &token, id).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    let data = body["data"].as_object().unwrap();
    assert!(!data.contains_key("status") && !data.contains_key("nomeArquivo"));
    assert_eq!(data["id"], id);
}

#[tokio::test]
async fn html_error_page_with_200_and_nothing_done() {
    let t = Target::new();
    let token = t.token().await;
    hostile(&t, json!({"routes": {UPLOAD: "html_error"}})).await;
    let (status, body) = t
        .upload_bytes(&token, "Nunca", "n.pdf", common::sample_pdf("n"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, Value::Null, "not JSON");
    assert!(
        t.state().documents().is_empty(),
        "the upload did not happen"
    );
    let (status, headers, body) = raw(&t, Method::POST, api::UPLOAD, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&headers, "content-type").starts_with("text/html"));
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("<!DOCTYPE html>"), "{text}");
    assert!(text.contains("indisponível"));
}

#[tokio::test]
async fn huge_body_is_ten_mebibytes_of_valid_json() {
    let t = Target::new();
    let token = t.token().await;
    let (id, normal) = document(&t, &token).await;
    let normal: Value = serde_json::from_slice(&normal).unwrap();
    hostile(&t, json!({"routes": {READ: "huge_body"}})).await;
    let (status, headers, body) = raw_read(&t, &token, id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), 10 * 1024 * 1024);
    assert_eq!(header(&headers, "content-length"), body.len().to_string());
    let value: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["data"], normal["data"]);
    assert!(value["preenchimento"].as_str().unwrap().len() > 10_000_000);
    hostile(
        &t,
        json!({"routes": {READ: "huge_body"}, "body_bytes": 4096}),
    )
    .await;
    assert_eq!(raw_read(&t, &token, id).await.2.len(), 4096);
}

#[tokio::test]
async fn slow_drip_sends_a_byte_a_second() {
    let t = Target::new();
    let token = t.token().await;
    let (id, normal) = document(&t, &token).await;
    hostile(&t, json!({"routes": {READ: "slow_drip"}})).await;
    let started = Instant::now();
    let mut response = client(Duration::from_secs(60))
        .get(t.url(&format!("/documents/v2/publicacoes/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "headers at once"
    );
    assert_eq!(response.content_length(), Some(normal.len() as u64));
    // Read for 2.5 s: the first byte at once, then one a second.
    let window = Duration::from_millis(2500);
    let mut received = Vec::new();
    while started.elapsed() < window {
        match tokio::time::timeout(window - started.elapsed(), response.chunk()).await {
            Ok(Ok(Some(chunk))) => received.extend_from_slice(&chunk),
            Ok(other) => panic!("the drip ended early: {other:?}"),
            Err(_) => break,
        }
    }
    assert!(
        (2..=4).contains(&received.len()),
        "{} bytes in 2.5 s",
        received.len()
    );
    assert_eq!(received, normal[..received.len()]);
    drop(response);
    // Faster, to the end: the whole real answer, byte by byte.
    hostile(&t, json!({"routes": {READ: "slow_drip"}, "drip_ms": 1})).await;
    let (status, _, body) = raw_read(&t, &token, id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, normal);
}

#[tokio::test]
async fn redirect_points_at_another_host_and_nothing_is_done() {
    let t = Target::new();
    let token = t.token().await;
    let (id, _) = document(&t, &token).await;
    hostile(&t, json!({"routes": {"*": "redirect"}})).await;
    let (status, headers, _) = raw_read(&t, &token, id).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        header(&headers, "location"),
        format!("http://tae-sim-redirect.invalid/documents/v2/publicacoes/{id}")
    );
    hostile(
        &t,
        json!({"routes": {"*": "redirect"}, "redirect_to": "http://127.0.0.1:9/"}),
    )
    .await;
    let (status, headers, _) = raw(
        &t,
        Method::POST,
        &format!("/documents/v1/publicacoes/{id}/cancelar?x=1"),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        header(&headers, "location"),
        format!("http://127.0.0.1:9/documents/v1/publicacoes/{id}/cancelar?x=1")
    );
    assert_eq!(t.state().document_status(id), Some(api::STATUS_DRAFT));
}

#[tokio::test]
async fn gzip_bomb_expands_to_the_configured_size() {
    let t = Target::new();
    let token = t.token().await;
    let (id, _) = document(&t, &token).await;
    let size: u64 = 64 * 1024 * 1024;
    hostile(
        &t,
        json!({"routes": {READ: "gzip_bomb"}, "bomb_bytes": size}),
    )
    .await;
    let (status, headers, body) = raw_read(&t, &token, id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    assert!(
        body.len() < (size / 500) as usize,
        "{} bytes on the wire",
        body.len()
    );
    let mut decoder = flate2::read::GzDecoder::new(&body[..]);
    let mut head = [0u8; 32];
    decoder.read_exact(&mut head).unwrap();
    assert_eq!(&head[..], b"{\"success\":true,\"data\":\"AAAAAAAA");
    let rest = std::io::copy(&mut decoder, &mut std::io::sink()).unwrap();
    assert_eq!(rest + 32, size);
    // The default: 1 GiB, told by the gzip trailer (ISIZE, the size modulo 2^32).
    hostile(&t, json!({"routes": {READ: "gzip_bomb"}})).await;
    let (_, _, body) = raw_read(&t, &token, id).await;
    let isize = u32::from_le_bytes(body[body.len() - 4..].try_into().unwrap());
    assert_eq!(isize, 1 << 30);
    assert!(
        body.len() < 2 * 1024 * 1024,
        "{} bytes on the wire",
        body.len()
    );
}

#[tokio::test]
async fn success_false_with_200_in_each_envelope_and_nothing_done() {
    let t = Target::new();
    let token = t.token().await;
    hostile(&t, json!({"routes": {UPLOAD: "success_false", "POST /identityintegration/v3/auth/login": "success_false"}})).await;
    let (status, body) = t
        .upload_bytes(&token, "Falhou", "f.pdf", common::sample_pdf("f"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], false);
    assert_eq!(body["errors"], json!([api::MSG_PROCESSING_FAILED]));
    assert!(t.state().documents().is_empty());
    let (status, body) = t.login_as(&t.user, &t.password).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["succeeded"], false);
    assert_eq!(body["description"], api::MSG_PROCESSING_FAILED);
}

#[tokio::test]
async fn a_rate_picks_the_same_requests_for_the_same_seed() {
    async fn pattern(seed: u64) -> Vec<bool> {
        let t = Target::with_options(tae_sim::SimOptions {
            seed,
            ..Default::default()
        });
        let token = t.token().await;
        hostile(&t, json!({"routes": {"*": "success_false"}, "rate": 0.5})).await;
        let mut out = Vec::new();
        for _ in 0..30 {
            let (_, body) = t.get(api::PROFILE, &token).await;
            out.push(body["succeeded"] == false);
        }
        clear(&t).await;
        assert_eq!(t.get(api::PROFILE, &token).await.1["succeeded"], true);
        out
    }
    let a = pattern(11).await;
    assert_eq!(a, pattern(11).await);
    let hits = a.iter().filter(|h| **h).count();
    assert!((5..=25).contains(&hits), "{hits} of 30");
}

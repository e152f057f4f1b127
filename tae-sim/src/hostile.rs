//! The hostile answers of the fault layer (see [`Hostile`]): built from the route's real
//! answer when the request takes effect, or instead of it when it does not.

use crate::api;
use crate::faults::{Hostile, HostileConfig};
use crate::routes::{sleep_or_shutdown, AppState};
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

/// The hostile answer `mode` to `request` on the route `template`.
pub(crate) async fn answer(
    state: &AppState,
    mode: Hostile,
    template: &str,
    request: Request,
    next: Next,
) -> Response {
    let config = state.sim.faults().hostile;
    let identity = template.starts_with("/identityintegration");
    if !mode.takes_effect() {
        return match mode {
            Hostile::HtmlError => html_error(),
            Hostile::Redirect => redirect(&config, &request),
            Hostile::GzipBomb => gzip_bomb(&config),
            _ => success_false(identity),
        };
    }
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let (mut parts, body) = next.run(request).await.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("tae-sim: hostile {}: {path_and_query}: {e}", mode.name());
            Bytes::new()
        }
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = match mode {
        Hostile::TruncatedJson => Body::from(bytes.slice(..bytes.len() / 2)),
        Hostile::WrongTypes => Body::from(edit_data(&bytes, wrong_types)),
        Hostile::MissingFields => Body::from(edit_envelope(&bytes, |envelope| {
            missing_fields(envelope, &config.fields)
        })),
        Hostile::HugeBody => Body::from(huge(
            &bytes,
            config
                .body_bytes
                .unwrap_or(HostileConfig::DEFAULT_BODY_BYTES),
        )),
        _ => {
            let drip =
                Duration::from_millis(config.drip_ms.unwrap_or(HostileConfig::DEFAULT_DRIP_MS));
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            slow_drip(state, bytes, drip)
        }
    };
    Response::from_parts(parts, body)
}

/// The answer's JSON with `edit` applied to the whole envelope; not JSON → unchanged.
fn edit_envelope(bytes: &Bytes, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut value) => {
            edit(&mut value);
            serde_json::to_vec(&value).unwrap_or_else(|_| bytes.to_vec())
        }
        Err(_) => bytes.to_vec(),
    }
}

/// The answer's JSON with `edit` applied to its `data`.
fn edit_data(bytes: &Bytes, edit: impl Fn(&mut Value)) -> Vec<u8> {
    edit_envelope(bytes, |envelope| {
        if let Some(data) = envelope.get_mut("data") {
            edit(data);
        }
    })
}

/// Every leaf of another JSON type: number → boolean, string → number (its length), boolean →
/// string, array → object keyed by index; objects keep their keys; null stays null.
fn wrong_types(value: &mut Value) {
    *value = match std::mem::take(value) {
        Value::Number(n) => Value::Bool(n.as_f64() != Some(0.0)),
        Value::String(s) => json!(s.chars().count()),
        Value::Bool(b) => Value::String(if b { "sim" } else { "não" }.to_string()),
        Value::Array(list) => Value::Object(
            list.into_iter()
                .enumerate()
                .map(|(i, mut v)| {
                    wrong_types(&mut v);
                    (i.to_string(), v)
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Object(mut map) => {
            map.values_mut().for_each(wrong_types);
            Value::Object(map)
        }
        Value::Null => Value::Null,
    };
}

/// Without `fields`: the envelope loses `data`. With them: every property of those names under
/// `data`, at any depth.
fn missing_fields(envelope: &mut Value, fields: &[String]) {
    fn strip(value: &mut Value, fields: &[String]) {
        match value {
            Value::Object(map) => {
                map.retain(|k, _| !fields.iter().any(|f| f == k));
                map.values_mut().for_each(|v| strip(v, fields));
            }
            Value::Array(list) => list.iter_mut().for_each(|v| strip(v, fields)),
            _ => {}
        }
    }
    let Some(map) = envelope.as_object_mut() else {
        return;
    };
    if fields.is_empty() {
        map.remove("data");
    } else if let Some(data) = map.get_mut("data") {
        strip(data, fields);
    }
}

/// The answer grown to `size` bytes: an object gets a string property `preenchimento`; other
/// JSON gets trailing spaces.
fn huge(bytes: &Bytes, size: usize) -> Vec<u8> {
    let text = bytes.trim_ascii_end();
    const KEY: &[u8] = b",\"preenchimento\":\"\"}";
    let mut out = Vec::with_capacity(size.max(text.len() + KEY.len()));
    if text.ends_with(b"}") && text.len() > 2 {
        out.extend_from_slice(&text[..text.len() - 1]);
        out.extend_from_slice(&KEY[..KEY.len() - 2]);
        let pad = size.saturating_sub(out.len() + 2);
        out.resize(out.len() + pad, b'x');
        out.extend_from_slice(b"\"}");
    } else {
        out.extend_from_slice(text);
        let pad = size.saturating_sub(out.len());
        out.resize(out.len() + pad, b' ');
    }
    out
}

/// The body a byte at a time, `every` apart; ends early (the connection is cut) when the
/// server stops.
fn slow_drip(state: &AppState, bytes: Bytes, every: Duration) -> Body {
    let sim = state.sim.clone();
    let stream = futures_util::stream::unfold(0usize, move |sent| {
        let (sim, bytes) = (sim.clone(), bytes.clone());
        async move {
            if sent >= bytes.len() {
                return None;
            }
            if sent > 0 {
                sleep_or_shutdown(&sim, every).await;
            }
            if sim.is_shutting_down() {
                let cut = std::io::Error::other("tae-sim: slow drip cut by shutdown");
                return Some((Err(cut), bytes.len()));
            }
            Some((Ok(bytes.slice(sent..sent + 1)), sent + 1))
        }
    });
    Body::from_stream(stream)
}

fn html_error() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!DOCTYPE html>\n<html lang=\"pt-BR\"><head><title>Erro</title></head>\
         <body><h1>Serviço temporariamente indisponível</h1>\
         <p>Tente novamente em alguns instantes.</p></body></html>\n",
    )
        .into_response()
}

fn redirect(config: &HostileConfig, request: &Request) -> Response {
    let to = config
        .redirect_to
        .as_deref()
        .unwrap_or(HostileConfig::DEFAULT_REDIRECT_TO)
        .trim_end_matches('/');
    let target = format!(
        "{to}{}",
        request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(&target) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn success_false(identity: bool) -> Response {
    let body = if identity {
        json!({"succeeded": false, "description": api::MSG_PROCESSING_FAILED, "data": null,
               "messages": [{"description": api::MSG_PROCESSING_FAILED}]})
    } else {
        json!({"success": false, "data": null, "errors": [api::MSG_PROCESSING_FAILED], "code": 200})
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// A gzip stream that expands to `size` bytes of `{"success":true,"data":"AAAA…"}`, made once
/// per size and kept. Written by hand, not by a compressor, so that a 1 GiB bomb costs
/// milliseconds: a fixed-Huffman block with the head and one `A`, a dynamic-Huffman block whose
/// only codes are "length 258" and "distance 1" (one bit each: 2 bits per 258 bytes, as deflate
/// allows at best), and a fixed block with the rest and the tail.
fn bomb(size: u64) -> Bytes {
    static CACHE: OnceLock<Mutex<HashMap<u64, Bytes>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(b) = cache.lock().get(&size) {
        return b.clone();
    }
    let bytes = Bytes::from(gzip_of_a_run(
        b"{\"success\":true,\"data\":\"",
        b'A',
        b"\"}",
        size,
    ));
    cache.lock().insert(size, bytes.clone());
    bytes
}

/// Deflate's bit order: fields LSB first, Huffman codes MSB first.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u64, bits: u32) {
        self.acc |= value << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    fn code(&mut self, code: u64, bits: u32) {
        let reversed = (0..bits).fold(0, |r, i| r | ((code >> i) & 1) << (bits - 1 - i));
        self.put(reversed, bits);
    }
    /// A literal byte below 144 in the fixed Huffman code.
    fn fixed_literal(&mut self, byte: u8) {
        debug_assert!(byte < 144);
        self.code(0x30 + u64::from(byte), 8);
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A gzip member whose content is `head`, `size - head - tail` times `fill`, `tail` (every
/// byte below 144); at least `head + tail + 1` bytes.
fn gzip_of_a_run(head: &[u8], fill: u8, tail: &[u8], size: u64) -> Vec<u8> {
    let run = size.saturating_sub((head.len() + tail.len()) as u64).max(1);
    let matches = (run - 1) / 258;
    let rest = (run - 1) % 258;
    let mut bits = Bits::default();
    // Block 1, fixed Huffman: the head and one fill byte.
    bits.put(0, 1);
    bits.put(1, 2);
    head.iter().for_each(|b| bits.fixed_literal(*b));
    bits.fixed_literal(fill);
    bits.code(0, 7);
    // Block 2, dynamic Huffman: literal/length codes 256 (end) and 285 (length 258), one bit
    // each; distance codes 0 (distance 1) and 1, one bit each.
    bits.put(0, 1);
    bits.put(2, 2);
    bits.put(286 - 257, 5);
    bits.put(2 - 1, 5);
    bits.put(18 - 4, 4);
    // Code length code lengths in deflate's order 16,17,18,0,8,7,9,6,10,5,11,4,12,3,13,2,14,1:
    // only 18 (a run of zeros) and 1 are used, one bit each (18 → "1", 1 → "0").
    for symbol in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1] {
        bits.put(u64::from(symbol == 18 || symbol == 1), 3);
    }
    let zeros = |bits: &mut Bits, count: u64| {
        bits.code(1, 1);
        bits.put(count - 11, 7);
    };
    let one = |bits: &mut Bits| bits.code(0, 1);
    zeros(&mut bits, 138); // literals 0..137
    zeros(&mut bits, 118); // literals 138..255
    one(&mut bits); // 256
    zeros(&mut bits, 28); // 257..284
    one(&mut bits); // 285
    one(&mut bits); // distance 0
    one(&mut bits); // distance 1
                    // Each match: "1" (length 258) then "0" (distance 1); four make one byte.
    let mut left = matches;
    while left > 0 && (bits.n != 0 || left < 8) {
        bits.put(0b01, 2);
        left -= 1;
    }
    let groups = left / 4;
    bits.out
        .resize(bits.out.len() + groups as usize, 0b0101_0101);
    for _ in 0..left % 4 {
        bits.put(0b01, 2);
    }
    bits.code(0, 1); // end of block
                     // Block 3, fixed Huffman, final: the rest of the run and the tail.
    bits.put(1, 1);
    bits.put(1, 2);
    (0..rest).for_each(|_| bits.fixed_literal(fill));
    tail.iter().for_each(|b| bits.fixed_literal(*b));
    bits.code(0, 7);
    let deflate = bits.finish();

    let mut crc = crc32fast::Hasher::new();
    crc.update(head);
    let mut block = crc32fast::Hasher::new();
    block.update(&[fill]);
    let mut count = run;
    while count > 0 {
        if count & 1 == 1 {
            crc.combine(&block);
        }
        let copy = block.clone();
        block.combine(&copy);
        count >>= 1;
    }
    crc.update(tail);
    let total = head.len() as u64 + run + tail.len() as u64;
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(&deflate);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out
}

fn gzip_bomb(config: &HostileConfig) -> Response {
    let bytes = bomb(
        config
            .bomb_bytes
            .unwrap_or(HostileConfig::DEFAULT_BOMB_BYTES),
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CONTENT_ENCODING, "gzip"),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_changes_every_leaf() {
        let mut v = json!({"id": 7, "nome": "abc", "ok": true, "lista": [1, "x"], "nada": null});
        wrong_types(&mut v);
        assert_eq!(
            v,
            json!({"id": true, "nome": 3, "ok": "sim", "lista": {"0": true, "1": 1}, "nada": null})
        );
    }

    #[test]
    fn missing_fields_whole_data_or_named_ones() {
        let mut v = json!({"success": true, "data": {"id": 1, "status": 0, "l": [{"status": 2}]}});
        missing_fields(&mut v, &["status".to_string()]);
        assert_eq!(v, json!({"success": true, "data": {"id": 1, "l": [{}]}}));
        missing_fields(&mut v, &[]);
        assert_eq!(v, json!({"success": true}));
    }

    #[test]
    fn the_hand_made_gzip_decodes_to_exactly_the_run() {
        use std::io::Read;
        for size in [3u64, 4, 27, 28, 283, 284, 285, 1000, 258 * 8 + 30, 1 << 20] {
            let gz = gzip_of_a_run(b"{\"a\":\"", b'A', b"\"}", size);
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut text)
                .unwrap_or_else(|e| panic!("size {size}: {e}"));
            let run = size.saturating_sub(8).max(1) as usize;
            let mut expected = b"{\"a\":\"".to_vec();
            expected.resize(expected.len() + run, b'A');
            expected.extend_from_slice(b"\"}");
            assert_eq!(text, expected, "size {size}");
        }
        let gz = gzip_of_a_run(b"{", b'A', b"}", 1 << 30);
        assert!(gz.len() < 1_100_000, "{} bytes", gz.len());
    }

    #[test]
    fn huge_is_exactly_the_size_and_still_json() {
        let body = Bytes::from_static(br#"{"success":true,"data":1}"#);
        let out = huge(&body, 1000);
        assert_eq!(out.len(), 1000);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["data"], 1);
        let out = huge(&Bytes::from_static(b"12"), 10);
        assert_eq!(out, b"12        ");
    }
}

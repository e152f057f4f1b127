//! The three ways of not reaching TAE — nothing listening at the API's address (connection
//! refused), a server that answers too late (timeout), and `https://` against a plain-http
//! server — each give their own Portuguese message, in `configure test` and in `execute`.
//! (Its own test binary: the plugin's in-process claims are process-wide, and the other
//! integrity tests use the same contract keys.)

#[path = "integrity_support.rs"]
mod integrity;

use integrity::support::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tae_sim::{FaultConfig, RateMap, SimOptions};

fn point_at(w: &World, base_url: &str) {
    w.host
        .db()
        .configure_tae(base_url, tae_sim::ADMIN_EMAIL, tae_sim::ADMIN_PASSWORD)
        .expect("configure TAE");
}

/// (`configure test`'s message, `execute`'s message, how long each took).
type Messages = (String, String, [Duration; 2]);

/// The bound from TAE being unreachable to the end of a call.
const CALL_BOUND: Duration = Duration::from_secs(15);

/// The message a secretary reads when TAE cannot be reached: `configure test`'s, and the
/// error of an `execute` (or, if the run went on, the message of its one contract); both
/// without the URLs they quote.
fn messages(w: &World) -> Messages {
    let t = Instant::now();
    let (status, test) = w.plugin.configure(&w.host, &json!({"action": "test"}));
    let configure_took = t.elapsed();
    let t = Instant::now();
    assert_eq!(status, 0, "{test}");
    assert_eq!(test["login_ok"], false, "{test}");
    let configure = test["message"].as_str().unwrap_or("").to_string();
    let (status, run) = w.execute(
        "send",
        json!({"kind": "contract_view", "contract_keys": [w.keys[0]]}),
        report_source(),
    );
    let execute = if status == 0 {
        run["results"][0]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    } else {
        run["error"]["message"].as_str().unwrap_or("").to_string()
    };
    (
        without_urls(&configure),
        without_urls(&execute),
        [configure_took, t.elapsed()],
    )
}

/// A message without the URLs it quotes (so that "https" or a port in a URL never counts as
/// the message telling two cases apart).
fn without_urls(m: &str) -> String {
    m.split_whitespace()
        .filter(|w| !w.contains("://"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn world_with_timeout(secs: u64, options: SimOptions) -> World {
    let w = World::new(1, options);
    w.host
        .db()
        .set_param("request_timeout_secs", &json!(secs))
        .unwrap();
    w
}

/// Nothing listens at the API's address; the server answers slowly; the URL says https to a
/// plain-http server. Each gives its own message, in both `configure test` and `execute`.
/// (The wording — "recus…", "tempo", "HTTPS"/"protocolo" — is the breaker work's.)
#[test]
fn refused_timeout_and_https_against_http_each_have_their_own_message() {
    // Connection refused: a port nobody listens on.
    let refused = {
        let w = world_with_timeout(5, SimOptions::default());
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        point_at(&w, &format!("http://127.0.0.1:{port}"));
        messages(&w)
    };
    // Timeout: tae-sim answers nothing within the 1 s client timeout.
    let timeout = {
        let w = world_with_timeout(
            1,
            SimOptions {
                faults: FaultConfig {
                    hang_rate: RateMap::all(1.0),
                    hang_ms: Some(30_000),
                    ..FaultConfig::default()
                },
                ..SimOptions::default()
            },
        );
        messages(&w)
    };
    // https:// against a plain-http server.
    let protocol = {
        let w = world_with_timeout(5, SimOptions::default());
        point_at(&w, &format!("https://{}", w.sim.addr()));
        messages(&w)
    };
    println!("refused: {refused:?}\ntimeout: {timeout:?}\nprotocol: {protocol:?}");
    for (what, (configure, execute, _)) in [
        ("refused", &refused),
        ("timeout", &timeout),
        ("protocol", &protocol),
    ] {
        assert!(
            !configure.is_empty(),
            "{what}: configure test has a message"
        );
        assert!(!execute.is_empty(), "{what}: execute has a message");
    }
    // Three different messages, in each place.
    let pickers: [fn(&Messages) -> String; 2] = [|m| m.0.clone(), |m| m.1.clone()];
    for pick in pickers {
        let (r, t, p) = (pick(&refused), pick(&timeout), pick(&protocol));
        assert_ne!(r, t, "refused and timeout read the same");
        assert_ne!(r, p, "refused and https-vs-http read the same");
        assert_ne!(t, p, "timeout and https-vs-http read the same");
    }
    let has = |m: &str, words: &[&str]| {
        let m = m.to_lowercase();
        words.iter().any(|w| m.contains(w))
    };
    for m in [&refused.0, &refused.1] {
        assert!(
            has(m, &["recus"]),
            "refused: says the connection was refused: {m}"
        );
        assert!(
            has(m, &["url", "endereço"]),
            "refused: says to check the API URL: {m}"
        );
        assert!(!has(m, &["tempo"]), "refused: not a timeout: {m}");
    }
    for m in [&timeout.0, &timeout.1] {
        assert!(has(m, &["tempo"]), "timeout: says it timed out: {m}");
        assert!(!has(m, &["recus"]), "timeout: not refused: {m}");
    }
    for m in [&protocol.0, &protocol.1] {
        assert!(
            has(m, &["https", "protocolo"]),
            "https vs http: names the protocol: {m}"
        );
        assert!(!has(m, &["recus"]), "https vs http: not refused: {m}");
    }
    // Each call ends within the bound, however TAE is unreachable.
    for (what, m) in [
        ("refused", &refused),
        ("timeout", &timeout),
        ("protocol", &protocol),
    ] {
        for (call, took) in ["configure test", "execute"].iter().zip(m.2) {
            assert!(took <= CALL_BOUND, "{what}: {call} took {took:?}");
        }
    }
    figures(&format!(
        "messages configure_test+execute_ms refused={:?} timeout={:?} protocol={:?}",
        refused.2.map(|d| d.as_millis()),
        timeout.2.map(|d| d.as_millis()),
        protocol.2.map(|d| d.as_millis())
    ));
}

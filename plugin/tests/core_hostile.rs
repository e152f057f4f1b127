//! A hostile TAE (tae-sim's hostile answers): each answer gives every contract of the batch a
//! Portuguese error naming what TAE answered, within the request timeout, without a panic; the
//! records keep what happened (nothing lost) and a rerun without the fault sends every contract
//! with exactly one published document each.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tae_edu::api;
use tae_sim::{FaultConfig, Hostile, HostileConfig};

const UPLOAD: &str = "POST /documents/v1/envelopes/upload";

/// Sends two contracts with `hostile` on `route`; answers the first run's results.
fn under(
    mode: Hostile,
    route: &str,
    tune: impl Fn(&mut HostileConfig),
) -> (tae_sim::SimServer, MockHost, String, Value, Duration) {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.set_param("request_timeout_secs", json!(1));
    host.add_contracts(2);
    let mut hostile = HostileConfig {
        routes: BTreeMap::from([(route.to_string(), mode)]),
        ..Default::default()
    };
    tune(&mut hostile);
    sim.state().set_faults(FaultConfig {
        hostile,
        ..Default::default()
    });
    let s = session("hostile");
    let started = Instant::now();
    let r = api::execute(&host, send_request(&s, &host.keys())).unwrap();
    let took = started.elapsed();
    (sim, host, s, r, took)
}

/// Every contract failed with a message naming `phrase`; its record says it failed (kept).
fn each_failed_naming(host: &MockHost, r: &Value, phrase: &str) {
    assert_eq!(outcomes(r), ["failed", "failed"], "{r:#}");
    for res in r["results"].as_array().unwrap() {
        let m = res["message"].as_str().unwrap();
        assert!(m.contains(phrase), "{m:?} lacks {phrase:?}");
        assert!(m.contains("Contrato") || m.contains("Aluno"), "{m}");
    }
    for key in host.keys() {
        let recs = host.records_of(&key);
        assert_eq!(recs.len(), 1, "{key}: {recs:?}");
        assert_eq!(recs[0]["status"], "falhou", "{key}: {:#}", recs[0]);
    }
}

/// Without the fault the rerun sends both: one published document per contract, the record's.
fn rerun_completes(sim: &tae_sim::SimServer, host: &MockHost, s: &str) {
    sim.state().set_faults(FaultConfig::default());
    let r = api::execute(host, send_request(s, &host.keys())).unwrap();
    assert_eq!(outcomes(&r), ["sent", "sent"], "{r:#}");
    let docs = sim.state().documents();
    for key in host.keys() {
        // The failed attempt's record stays (history); one record is active.
        let recs: Vec<Value> = host
            .records_of(&key)
            .into_iter()
            .filter(|r| r["status"] != "falhou")
            .collect();
        assert_eq!(recs.len(), 1, "{key}: {:#?}", host.records_of(&key));
        let name = recs[0]["document_name"].as_str().unwrap();
        let live: Vec<u64> = docs
            .iter()
            .filter(|d| d["name"] == name && d["status"] != 5 && d["status"] != 7)
            .map(|d| d["id"].as_u64().unwrap())
            .collect();
        assert_eq!(live.len(), 1, "{key}: {live:?}");
        assert_eq!(recs[0]["document_id"].as_u64(), Some(live[0]));
        assert_eq!(recs[0]["status"], "pendente");
    }
}

fn case(mode: Hostile, phrase: &str, tune: impl Fn(&mut HostileConfig)) -> Duration {
    let (sim, host, s, r, took) = under(mode, UPLOAD, tune);
    each_failed_naming(&host, &r, phrase);
    rerun_completes(&sim, &host, &s);
    sim.shutdown();
    took
}

#[test]
fn truncated_json() {
    case(
        Hostile::TruncatedJson,
        "o envio do PDF falhou: o TOTVS Assinatura Eletrônica enviou uma resposta truncada",
        |_| {},
    );
}

#[test]
fn wrong_types() {
    case(
        Hostile::WrongTypes,
        // The id turned into `true`: neither a number nor an object with the id.
        "o TOTVS Assinatura Eletrônica respondeu sem o campo idDocumento (campo idDocumento ausente)",
        |_| {},
    );
}

#[test]
fn missing_data() {
    case(
        Hostile::MissingFields,
        "o TOTVS Assinatura Eletrônica respondeu sem o campo data (campo data ausente)",
        |_| {},
    );
}

#[test]
fn html_error_page() {
    case(
        Hostile::HtmlError,
        "o TOTVS Assinatura Eletrônica respondeu com uma página HTML em vez de JSON",
        |_| {},
    );
}

#[test]
fn huge_body() {
    case(
        Hostile::HugeBody,
        "o TOTVS Assinatura Eletrônica enviou uma resposta maior que o limite de 8 MB",
        |h| h.body_bytes = Some(10 * 1024 * 1024),
    );
}

#[test]
fn slow_drip_ends_at_the_request_timeout() {
    // 200 ms a byte: the ~50-byte answer would take 10 s; the timeout is 1 s for the whole
    // answer (not per byte), and the upload is retried within the test policy's 8 s budget.
    let took = case(
        Hostile::SlowDrip,
        "o TOTVS Assinatura Eletrônica não respondeu dentro do tempo limite",
        |h| h.drip_ms = Some(200),
    );
    // Two contracts at once, each at most budget (8 s) + one timeout (1 s).
    assert!(took < Duration::from_secs(12), "{took:?}");
}

#[test]
fn redirect_to_another_host() {
    case(
        Hostile::Redirect,
        "o TOTVS Assinatura Eletrônica pediu um redirecionamento para outro endereço (tae-sim-redirect.invalid), recusado",
        |_| {},
    );
}

#[test]
fn gzip_bomb_is_refused_unread() {
    case(
        Hostile::GzipBomb,
        "o TOTVS Assinatura Eletrônica enviou uma resposta compactada (gzip) que não foi pedida",
        |_| {},
    );
}

#[test]
fn success_false_carries_tae_message() {
    case(
        Hostile::SuccessFalse,
        "o TOTVS Assinatura Eletrônica recusou a operação: Não foi possível processar a solicitação",
        |_| {},
    );
}

/// A read (D3) without `status` is not "document not found": the check reports the answer and
/// changes no record; nothing is uploaded again.
#[test]
fn check_with_a_missing_status_changes_nothing() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(2);
    let s = session("hostile-check");
    let r = api::execute(&host, send_request(&s, &host.keys())).unwrap();
    assert_eq!(outcomes(&r), ["sent", "sent"], "{r:#}");
    let before = host.all_records();
    sim.state().set_faults(FaultConfig {
        hostile: HostileConfig {
            routes: BTreeMap::from([
                (
                    "GET /documents/v2/publicacoes/{id}".to_string(),
                    Hostile::MissingFields,
                ),
                (
                    format!("POST {}", tae_sim::api::MANY_DOCUMENTS),
                    Hostile::MissingFields,
                ),
            ]),
            fields: vec!["status".into()],
            ..Default::default()
        },
        ..Default::default()
    });
    sim.state().reset_counters();
    let r = api::execute(&host, option_request(&s, "check", &host.keys())).unwrap();
    for res in r["results"].as_array().unwrap() {
        assert_ne!(res["outcome"], "updated", "{res}");
        let m = res["message"].as_str().unwrap();
        assert!(m.contains("campo status ausente"), "{m}");
    }
    let statuses = |v: &[Value]| -> Vec<(Value, Value)> {
        v.iter()
            .map(|r| (r["document_id"].clone(), r["status"].clone()))
            .collect()
    };
    assert_eq!(statuses(&host.all_records()), statuses(&before));
    assert_eq!(sim.state().counter("POST", tae_sim::api::UPLOAD), 0);
    sim.shutdown();
}

/// A redirect to the same address is followed, at most 3 times: a loop ends refused (the check
/// reads each document on its own; no record changes).
#[test]
fn redirect_loop_on_the_same_host_ends_refused() {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(1);
    let s = session("hostile-loop");
    let r = api::execute(&host, send_request(&s, &host.keys())).unwrap();
    assert_eq!(outcomes(&r), ["sent"], "{r:#}");
    sim.state().set_many_ids(false);
    sim.state().set_faults(FaultConfig {
        hostile: HostileConfig {
            routes: BTreeMap::from([(format!("GET {}", tae_sim::api::READ_V2), Hostile::Redirect)]),
            redirect_to: Some(sim.base_url()),
            ..Default::default()
        },
        ..Default::default()
    });
    sim.state().reset_counters();
    let r = api::execute(&host, option_request(&s, "check", &host.keys())).unwrap();
    let m = r["results"][0]["message"].as_str().unwrap();
    assert!(
        m.contains("o TOTVS Assinatura Eletrônica pediu um redirecionamento, recusado"),
        "{m}"
    );
    // The first request and 3 redirects followed; not retried.
    assert_eq!(sim.state().counter("GET", tae_sim::api::READ_V2), 4);
    assert_eq!(host.all_records()[0]["status"], "pendente");
    sim.shutdown();
}

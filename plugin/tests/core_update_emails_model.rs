//! A model-based test of update e-mails against tae-sim: documents with a signer (the
//! financial responsible), a validator and two witnesses; seeded random sequences of changes —
//! fresh addresses, collisions with another recipient, case variants, swaps between two
//! recipients, changes back — with and without injected faults (connections dropped after the
//! add or remove took effect) followed by a clean rerun. After every step TAE's recipients,
//! the record's recipients and the model agree, and a refused step changed nothing.

mod common;

use common::*;
use serde_json::{json, Value};
use tae_edu::api;

/// One slot of the model: (TAE `acao`, record role, e-mail as last written).
type Slot = (i64, &'static str, String);

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The model's answer to an update: `None` when refused (a collision), else the new slots.
fn apply(cur: &[Slot], desired: &[String]) -> Option<Vec<Slot>> {
    let changed: Vec<usize> = (0..cur.len())
        .filter(|&i| !same(&cur[i].2, &desired[i]))
        .collect();
    for &i in &changed {
        let with_current = (0..cur.len()).any(|j| j != i && same(&cur[j].2, &desired[i]));
        let with_new = changed
            .iter()
            .any(|&k| k != i && same(&desired[k], &desired[i]));
        if with_current || with_new {
            return None;
        }
    }
    let mut next = cur.to_vec();
    for &i in &changed {
        next[i].2 = desired[i].clone();
    }
    Some(next)
}

fn normalise(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.iter_mut().for_each(|(e, _)| *e = e.to_lowercase());
    v.sort();
    v
}

fn tae_view(sim: &tae_sim::SimServer, id: u64) -> Vec<(String, String)> {
    normalise(
        sim.state().document(id).unwrap()["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["email"].as_str().unwrap().to_string(),
                    r["acao"].as_i64().unwrap().to_string(),
                )
            })
            .collect(),
    )
}

fn record_view(rec: &Value) -> Vec<(String, String)> {
    normalise(
        rec["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["email"].as_str().unwrap().to_string(),
                    r["role"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
    )
}

/// (e-mail, acao or role) pairs, sorted.
type View = Vec<(String, String)>;

fn model_views(m: &[Slot]) -> (View, View) {
    (
        normalise(m.iter().map(|s| (s.2.clone(), s.0.to_string())).collect()),
        normalise(m.iter().map(|s| (s.2.clone(), s.1.to_string())).collect()),
    )
}

fn run_seed(seed: u64, faults: bool, steps: usize) {
    let sim = sim();
    let host = MockHost::new(&sim.base_url());
    host.add_contracts(2);
    let keys = host.keys();
    let s = session(&format!("model-{seed}"));
    let mut req = send_request(&s, &keys);
    req["params"]["validators"] = json!([{"name": "V", "email": "v0@m.example"}]);
    req["params"]["witnesses"] =
        json!([{"name": "W1", "email": "w1@m.example"}, {"name": "W2", "email": "w2@m.example"}]);
    let r = api::execute(&host, req).unwrap();
    assert_eq!(outcomes(&r), ["sent", "sent"], "{r:#}");
    let ids: Vec<u64> = keys
        .iter()
        .map(|k| host.records_of(k)[0]["document_id"].as_u64().unwrap())
        .collect();
    let mut model: Vec<Vec<Slot>> = (0..2)
        .map(|i| {
            vec![
                (0, "signer", format!("resp{}@familia.example", i + 1)),
                (1, "validator", "v0@m.example".to_string()),
                (2, "witness", "w1@m.example".to_string()),
                (2, "witness", "w2@m.example".to_string()),
            ]
        })
        .collect();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut fresh = 0u32;
    let (mut refused, mut updated, mut faulted) = (0, 0, 0);
    for step in 0..steps {
        // Candidate addresses: fresh, any current one (collision or swap), a case variant,
        // or an earlier one (change back).
        let all: Vec<String> = model.iter().flatten().map(|s| s.2.clone()).collect();
        let mut pick = |current: &str| -> String {
            match rng.u8(0..10) {
                0..=2 => {
                    fresh += 1;
                    format!("n{seed}x{fresh}@m.example")
                }
                3..=4 => all[rng.usize(0..all.len())].clone(),
                5 => {
                    let (l, d) = current.split_once('@').unwrap();
                    format!("{}@{d}", l.to_uppercase())
                }
                6 => format!("n{seed}x{}@m.example", rng.u32(1..=fresh.max(1))),
                _ => current.to_string(),
            }
        };
        // The process's lists (shared by both contracts) and each responsible's address.
        let base = model[0].clone();
        let v = pick(&base[1].2);
        let w1 = pick(&base[2].2);
        let w2 = pick(&base[3].2);
        let resp: Vec<String> = (0..2).map(|i| pick(&model[i][0].2.clone())).collect();
        for (i, e) in resp.iter().enumerate() {
            host.contracts.borrow_mut()[i]["financial_responsible"]["email"] = json!(e);
        }
        let params = json!({"validators": [{"name": "V", "email": v}],
                            "witnesses": [{"name": "W1", "email": w1}, {"name": "W2", "email": w2}]});
        let expected: Vec<Option<Vec<Slot>>> = (0..2)
            .map(|i| {
                apply(
                    &model[i],
                    &[resp[i].clone(), v.clone(), w1.clone(), w2.clone()],
                )
            })
            .collect();
        let mut req = option_request(&s, "update_emails", &keys);
        req["params"] = params.clone();
        let with_faults = faults && rng.bool();
        if with_faults {
            faulted += 1;
            sim.state().set_faults(tae_sim::FaultConfig {
                drop_rate: tae_sim::RateMap(std::collections::BTreeMap::from([
                    (format!("POST {}", tae_sim::api::ADD_RECIPIENTS), 0.5),
                    (format!("DELETE {}", tae_sim::api::REMOVE_RECIPIENT), 0.5),
                ])),
                drop_mode: tae_sim::DropMode::After,
                ..Default::default()
            });
            let r = api::execute(&host, req.clone()).unwrap();
            assert!(!outcomes(&r).iter().any(|o| o == "held"), "{r:#}");
            sim.state().set_faults(tae_sim::FaultConfig::default());
        }
        // The (clean) run, or the rerun after the faulty one.
        let r = api::execute(&host, req).unwrap();
        let got = outcomes(&r);
        for i in 0..2 {
            let ctx = format!(
                "seed {seed} step {step} contract {i}: {} / {params} → {}",
                resp[i], r["results"][i]
            );
            match &expected[i] {
                None => {
                    refused += 1;
                    assert_eq!(got[i], "failed", "{ctx}");
                    let m = r["results"][i]["message"].as_str().unwrap();
                    assert!(m.contains("nenhuma alteração foi feita"), "{ctx}");
                }
                Some(next) => {
                    if !with_faults {
                        let changed = next != &model[i];
                        assert_eq!(got[i], if changed { "updated" } else { "skipped" }, "{ctx}");
                    } else {
                        assert!(["updated", "skipped"].contains(&got[i].as_str()), "{ctx}");
                    }
                    if next != &model[i] {
                        updated += 1;
                    }
                    model[i] = next.clone();
                }
            }
            let (tae, record) = model_views(&model[i]);
            assert_eq!(tae_view(&sim, ids[i]), tae, "TAE vs model: {ctx}");
            assert_eq!(
                record_view(&host.records_of(&keys[i])[0]),
                record,
                "record vs model: {ctx}"
            );
        }
    }
    eprintln!(
        "seed {seed} (faults {faults}): {steps} steps × 2 contracts: {updated} updated, {refused} refused, {faulted} faulty steps then reruns"
    );
    // The model met every kind of step at least once.
    assert!(
        updated > 0 && refused > 0,
        "seed {seed}: {updated} updated, {refused} refused"
    );
    sim.shutdown();
}

#[test]
fn update_emails_model_without_faults() {
    for seed in [1, 2, 3] {
        run_seed(seed, false, 25);
    }
}

#[test]
fn update_emails_model_with_faults_and_reruns() {
    for seed in [11, 12] {
        run_seed(seed, true, 25);
    }
}

//! A model-based (stateful, seeded) test of "update e-mails" against tae-sim.
//!
//! A few documents are sent with the financial responsible as signer and one or two validators
//! and witnesses each. Then a random sequence of changes, one contract at a time: the
//! responsible's e-mail changed in RM, or new validator / witness lists — fresh addresses,
//! case variants of the recipient's own address, **collisions** with another recipient of the
//! same document (also in another case), **swaps** between two recipients, and **changes back**
//! to an address the position had before. About a third of the steps run with injected faults
//! (5xx, dropped connections) and are followed by a clean rerun.
//!
//! The model is the rule of the issue: a change whose new address is already used by another
//! recipient of the same document (case-insensitively), or that would put one address twice on
//! it, is refused for that contract before any change, with a Portuguese message naming both
//! roles, and the document is untouched; an address equal to the old one but for case is no
//! change; otherwise each changed position gets its new recipient (added before the old one is
//! removed) and recipients beyond the new lists are kept.
//!
//! After every step: TAE's recipients, the record's and the model's are the same (as sets of
//! role and lower-case e-mail). After a faulty attempt, before its rerun: no position lost its
//! recipient (TAE has the old or the new address of each), and a refused change left the
//! document exactly as it was.
//!
//! Knobs: `TAE_EDU_MODEL_SEED` (default 13), `TAE_EDU_MODEL_STEPS` (default 60; 200 with
//! `TAE_EDU_LONG=1`).

#[path = "integrity_support.rs"]
mod integrity;

use integrity::support::*;
use integrity::SplitMix;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Instant;
use tae_edu_tests::proofs::size;
use tae_sim::{DropMode, FaultConfig, RateMap, SimOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Signer,
    Validator,
    Witness,
}

impl Role {
    fn from_acao(acao: i64) -> Role {
        match acao {
            0 => Role::Signer,
            1 => Role::Validator,
            _ => Role::Witness,
        }
    }

    fn from_record(role: &str) -> Role {
        match role {
            "signer" => Role::Signer,
            "validator" => Role::Validator,
            _ => Role::Witness,
        }
    }

    /// The words a Portuguese message may use for the role (the signer here is always the
    /// financial responsible).
    fn words(self) -> &'static [&'static str] {
        match self {
            Role::Signer => &["assinante", "responsável financeiro"],
            Role::Validator => &["validador"],
            Role::Witness => &["testemunha"],
        }
    }

    fn named_in(self, message: &str) -> bool {
        self.words().iter().any(|w| message.contains(w))
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Person {
    name: String,
    email: String,
    cpf: String,
}

impl Person {
    fn json(&self) -> Value {
        json!({"name": self.name, "email": self.email, "cpf": self.cpf})
    }

    fn with_email(&self, email: String) -> Person {
        Person {
            email,
            ..self.clone()
        }
    }
}

/// What the document of one contract must hold.
#[derive(Clone, Debug, PartialEq)]
struct Doc {
    signer: Person,
    validators: Vec<Person>,
    witnesses: Vec<Person>,
}

impl Doc {
    fn positions(&self) -> Vec<(Role, &Person)> {
        std::iter::once((Role::Signer, &self.signer))
            .chain(self.validators.iter().map(|p| (Role::Validator, p)))
            .chain(self.witnesses.iter().map(|p| (Role::Witness, p)))
            .collect()
    }

    fn set(&self) -> BTreeSet<(Role, String)> {
        self.positions()
            .into_iter()
            .map(|(r, p)| (r, p.email.to_lowercase()))
            .collect()
    }

    fn emails(&self) -> Vec<String> {
        self.positions()
            .into_iter()
            .map(|(_, p)| p.email.to_lowercase())
            .collect()
    }
}

/// One change asked of the plugin.
#[derive(Clone, Debug)]
struct Change {
    /// The responsible's new e-mail in RM (signer).
    responsible: Option<String>,
    validators: Option<Vec<Person>>,
    witnesses: Option<Vec<Person>>,
    what: String,
}

/// What the model expects from a change.
#[derive(Debug, PartialEq)]
enum Expect {
    /// Refused, naming the two roles of one of these collisions.
    Refused(Vec<(Role, Role)>),
    Unchanged,
    Updated(Doc),
}

/// The model: the rule of the issue applied to `doc`, with the responsible's RM e-mail `rm`.
fn expect(doc: &Doc, rm_email: &str, c: &Change) -> Expect {
    let want_signer = doc.signer.with_email(rm_email.to_string());
    let want_v = c
        .validators
        .clone()
        .unwrap_or_else(|| doc.validators.clone());
    let want_w = c.witnesses.clone().unwrap_or_else(|| doc.witnesses.clone());
    // (role, index in role, old person, wanted person) for every changed position.
    let mut changes: Vec<(Role, usize, Option<&Person>, &Person)> = Vec::new();
    let mut fin: Vec<(Role, Person)> = Vec::new();
    let roles: [(Role, Vec<&Person>, Vec<&Person>); 3] = [
        (Role::Signer, vec![&doc.signer], vec![&want_signer]),
        (
            Role::Validator,
            doc.validators.iter().collect(),
            want_v.iter().collect(),
        ),
        (
            Role::Witness,
            doc.witnesses.iter().collect(),
            want_w.iter().collect(),
        ),
    ];
    for (role, old, want) in &roles {
        for (i, w) in want.iter().enumerate() {
            match old.get(i) {
                Some(o) if o.email.eq_ignore_ascii_case(&w.email) => {
                    fin.push((*role, (*o).clone()))
                }
                o => {
                    changes.push((*role, i, o.copied(), w));
                    fin.push((*role, (*w).clone()));
                }
            }
        }
        // Beyond the new list: kept.
        for o in old.iter().skip(want.len()) {
            fin.push((*role, (*o).clone()));
        }
    }
    if changes.is_empty() {
        return Expect::Unchanged;
    }
    // A new address used by another recipient of the document now, or one address twice in
    // the result: every such pair of roles.
    let mut collisions = Vec::new();
    let current = doc.positions();
    for (role, i, _, w) in &changes {
        let own_index = current
            .iter()
            .enumerate()
            .filter(|(_, (r, _))| r == role)
            .nth(*i)
            .map(|(k, _)| k);
        for (k, (r, p)) in current.iter().enumerate() {
            if Some(k) != own_index && p.email.eq_ignore_ascii_case(&w.email) {
                collisions.push((*role, *r));
            }
        }
    }
    for (a, (ra, pa)) in fin.iter().enumerate() {
        for (rb, pb) in fin.iter().skip(a + 1) {
            if pa.email.eq_ignore_ascii_case(&pb.email) {
                collisions.push((*ra, *rb));
            }
        }
    }
    if !collisions.is_empty() {
        collisions.sort();
        collisions.dedup();
        return Expect::Refused(collisions);
    }
    let pick = |role: Role| -> Vec<Person> {
        fin.iter()
            .filter(|(r, _)| *r == role)
            .map(|(_, p)| p.clone())
            .collect()
    };
    Expect::Updated(Doc {
        signer: pick(Role::Signer).remove(0),
        validators: pick(Role::Validator),
        witnesses: pick(Role::Witness),
    })
}

/// A case variant of an address (at least one letter changed).
fn case_variant(email: &str, rng: &mut SplitMix) -> String {
    let mut out: String = email
        .chars()
        .map(|c| {
            if rng.next_u64().is_multiple_of(2) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    if out == email {
        out = email.to_uppercase();
    }
    out
}

struct Subject {
    key: String,
    responsible_code: String,
    doc: Doc,
    /// The responsible's e-mail in RM now.
    rm_email: String,
    /// Every address each position ever had (for changes back).
    history: Vec<String>,
}

fn tae_set(w: &World, id: u64) -> BTreeSet<(Role, String)> {
    let d = w.sim.state().document(id).expect("document in TAE");
    d["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                Role::from_acao(r["acao"].as_i64().unwrap()),
                r["email"].as_str().unwrap().to_lowercase(),
            )
        })
        .collect()
}

fn tae_count(w: &World, id: u64) -> usize {
    w.sim.state().document(id).unwrap()["recipients"]
        .as_array()
        .unwrap()
        .len()
}

fn record_of(w: &World, key: &str) -> Value {
    let recs: Vec<Value> = w
        .records()
        .into_iter()
        .filter(|r| r["record_key"] == key && r["status"] == "pendente")
        .collect();
    assert_eq!(recs.len(), 1, "{key}: one pendente record");
    recs[0].clone()
}

fn record_set(rec: &Value) -> BTreeSet<(Role, String)> {
    rec["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                Role::from_record(r["role"].as_str().unwrap()),
                r["email"].as_str().unwrap().to_lowercase(),
            )
        })
        .collect()
}

/// The `update_emails` params of a change (the responsible's e-mail comes from RM).
fn params_of(c: &Change) -> Value {
    let mut params = serde_json::Map::new();
    if let Some(v) = &c.validators {
        params.insert("validators".into(), v.iter().map(Person::json).collect());
    }
    if let Some(v) = &c.witnesses {
        params.insert("witnesses".into(), v.iter().map(Person::json).collect());
    }
    Value::Object(params)
}

fn run_change(w: &World, s: &Subject, c: &Change) -> Value {
    let response = w.run_keys("update_emails", std::slice::from_ref(&s.key), params_of(c));
    response["results"][0].clone()
}

#[test]
fn update_emails_against_a_model_never_loses_a_recipient() {
    let seed = std::env::var("TAE_EDU_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(13u64);
    let steps = size("TAE_EDU_MODEL_STEPS", 60, 200);
    let started = Instant::now();
    let mut rng = SplitMix(seed);
    // Contracts 0, 1, 4, 5 of the bulk seed have a responsible of their own (every 4th student
    // is a sibling of the one before).
    let w = World::new(
        6,
        SimOptions {
            seed,
            ..SimOptions::default()
        },
    );
    let pool: Vec<Person> = (0..10)
        .map(|i| Person {
            name: format!("Pessoa {i} Modelo"),
            email: format!("pessoa{i}@escola.example"),
            cpf: host_sim::seed::cpf_from_base(310_000_000 + i * 7907),
        })
        .collect();
    let db = open_db(&w.db_path);
    let mut subjects: Vec<Subject> = Vec::new();
    for (n, idx) in [0usize, 1, 4, 5].into_iter().enumerate() {
        let key = w.keys[idx].clone();
        let contract = db.contract(&key).unwrap().unwrap();
        let fr = contract.financial_responsible.clone().unwrap();
        // Validators and witnesses: distinct people of the pool, one or two each.
        let mut people: Vec<Person> = Vec::new();
        let count = 2 + (rng.next_u64() % 3) as usize; // 2..=4
        while people.len() < count {
            let p = pool[(rng.next_u64() % pool.len() as u64) as usize].clone();
            if !people.contains(&p) {
                people.push(p);
            }
        }
        let nv = 1 + (n + rng.next_u64() as usize) % (count - 1);
        let validators = people[..nv].to_vec();
        let witnesses = people[nv..].to_vec();
        let sent = w.run_keys(
            "send",
            std::slice::from_ref(&key),
            json!({
                "source": {"kind": "report", "report_code": host_sim::CONTRACT_REPORT_CODE},
                "validators": validators.iter().map(Person::json).collect::<Vec<_>>(),
                "witnesses": witnesses.iter().map(Person::json).collect::<Vec<_>>(),
            }),
        );
        assert_eq!(sent["results"][0]["outcome"], "sent", "{sent}");
        let signer = Person {
            name: fr.name.clone(),
            email: fr.email.clone().unwrap(),
            cpf: fr.cpf.clone().unwrap(),
        };
        let doc = Doc {
            signer: signer.clone(),
            validators,
            witnesses,
        };
        let id = sent["results"][0]["document_id"].as_u64().unwrap();
        assert_eq!(tae_set(&w, id), doc.set(), "{key}: as sent");
        subjects.push(Subject {
            key,
            responsible_code: fr.code.clone(),
            history: doc.emails(),
            rm_email: signer.email.clone(),
            doc,
        });
    }
    let faults = FaultConfig {
        error_rate: RateMap::all(0.25),
        drop_rate: RateMap::all(0.1),
        drop_mode: DropMode::Random,
        ..FaultConfig::default()
    };

    let mut log: Vec<String> = Vec::new();
    let (mut refused, mut updated, mut unchanged, mut faulty) = (0, 0, 0, 0);
    for step in 0..steps {
        let si = (rng.next_u64() % subjects.len() as u64) as usize;
        let s = &subjects[si];
        let doc = s.doc.clone();
        let others: Vec<(Role, Person)> = doc
            .positions()
            .into_iter()
            .map(|(r, p)| (r, p.clone()))
            .collect();
        // A new address for position `(role, i)`.
        let address_for = |own: &Person, rng: &mut SplitMix| -> (Person, &'static str) {
            match rng.next_u64() % 8 {
                0 => {
                    // Fresh from the pool (maybe someone on the document: a collision).
                    let p = pool[(rng.next_u64() % pool.len() as u64) as usize].clone();
                    (p, "pool")
                }
                1 => (own.with_email(case_variant(&own.email, rng)), "own-case"),
                2 => {
                    let (_, o) = &others[(rng.next_u64() % others.len() as u64) as usize];
                    (own.with_email(o.email.clone()), "collision")
                }
                3 => {
                    let (_, o) = &others[(rng.next_u64() % others.len() as u64) as usize];
                    (
                        own.with_email(case_variant(&o.email, rng)),
                        "collision-case",
                    )
                }
                4 => {
                    let back = &s.history[(rng.next_u64() % s.history.len() as u64) as usize];
                    (own.with_email(back.clone()), "back")
                }
                _ => (
                    own.with_email(format!("novo{step}.{si}@escola.example")),
                    "fresh",
                ),
            }
        };
        let change = match rng.next_u64() % 6 {
            0 => {
                let (p, how) = address_for(&doc.signer, &mut rng);
                Change {
                    responsible: Some(p.email.clone()),
                    validators: None,
                    witnesses: None,
                    what: format!("responsible → {} ({how})", p.email),
                }
            }
            1 | 2 => {
                let i = (rng.next_u64() % doc.validators.len() as u64) as usize;
                let (p, how) = address_for(&doc.validators[i], &mut rng);
                let mut v = doc.validators.clone();
                v[i] = p.clone();
                Change {
                    responsible: None,
                    validators: Some(v),
                    witnesses: None,
                    what: format!("validator {i} → {} ({how})", p.email),
                }
            }
            3 | 4 => {
                let i = (rng.next_u64() % doc.witnesses.len() as u64) as usize;
                let (p, how) = address_for(&doc.witnesses[i], &mut rng);
                let mut v = doc.witnesses.clone();
                v[i] = p.clone();
                Change {
                    responsible: None,
                    validators: None,
                    witnesses: Some(v),
                    what: format!("witness {i} → {} ({how})", p.email),
                }
            }
            _ => {
                // Swap a validator and a witness.
                let i = (rng.next_u64() % doc.validators.len() as u64) as usize;
                let j = (rng.next_u64() % doc.witnesses.len() as u64) as usize;
                let mut v = doc.validators.clone();
                let mut t = doc.witnesses.clone();
                std::mem::swap(&mut v[i], &mut t[j]);
                Change {
                    responsible: None,
                    validators: Some(v),
                    witnesses: Some(t),
                    what: format!(
                        "swap validator {i} ({}) and witness {j} ({})",
                        doc.validators[i].email, doc.witnesses[j].email
                    ),
                }
            }
        };
        let subject = &mut subjects[si];
        if let Some(e) = &change.responsible {
            db.set_responsible_email(&subject.responsible_code, Some(e))
                .unwrap();
            subject.rm_email = e.clone();
        }
        let expected = expect(&subject.doc, &subject.rm_email, &change);
        let with_faults = rng.next_u64().is_multiple_of(3);
        log.push(format!(
            "step {step}: {} {}{} → {expected:?}",
            subject.key,
            change.what,
            if with_faults { " [faults]" } else { "" }
        ));
        let ctx = || log[log.len().saturating_sub(6)..].join("\n");
        let id = record_of(&w, &subject.key)["document_id"].as_u64().unwrap();
        let before = tae_set(&w, id);
        if with_faults {
            faulty += 1;
            w.set_faults(faults.clone());
            let (status, response) = w.execute(
                "update_emails",
                json!({"kind": "contract_view", "contract_keys": [subject.key]}),
                params_of(&change),
            );
            w.set_faults(FaultConfig::default());
            let after = tae_set(&w, id);
            match &expected {
                Expect::Refused(..) | Expect::Unchanged => assert_eq!(
                    after, before,
                    "a refused or empty change touched the document under faults ({status}: {response})\n{}",
                    ctx()
                ),
                Expect::Updated(new) => {
                    // No position lost its recipient: TAE has its old or its new address.
                    let old_doc = &subject.doc;
                    for (role, old) in old_doc.positions() {
                        let idx = old_doc
                            .positions()
                            .iter()
                            .filter(|(r, _)| *r == role)
                            .position(|(_, p)| p.email == old.email)
                            .unwrap();
                        let new_of_pos = new
                            .positions()
                            .into_iter()
                            .filter(|(r, _)| *r == role)
                            .nth(idx)
                            .map(|(_, p)| p.email.to_lowercase());
                        let has_old = after.contains(&(role, old.email.to_lowercase()));
                        let has_new = new_of_pos
                            .as_ref()
                            .is_some_and(|e| after.contains(&(role, e.clone())));
                        assert!(
                            has_old || has_new,
                            "under faults the {} {} was lost (neither it nor its replacement {:?} is on the document: {after:?})\n{}",
                            role.words()[0],
                            old.email,
                            new_of_pos,
                            ctx()
                        );
                    }
                }
            }
        }
        // The clean run (the rerun, after faults).
        let result = run_change(&w, subject, &change);
        let outcome = result["outcome"].as_str().unwrap_or("").to_string();
        let message = result["message"].as_str().unwrap_or("").to_lowercase();
        let rec = record_of(&w, &subject.key);
        let tae = tae_set(&w, id);
        match &expected {
            Expect::Refused(pairs) => {
                refused += 1;
                assert_eq!(outcome, "failed", "{result}\n{}", ctx());
                assert!(
                    pairs
                        .iter()
                        .any(|(a, b)| a.named_in(&message) && b.named_in(&message)),
                    "the refusal names both roles of a collision ({pairs:?}): {result}\n{}",
                    ctx()
                );
                assert_eq!(
                    tae,
                    subject.doc.set(),
                    "refused: document untouched\n{}",
                    ctx()
                );
                // The secretary puts the responsible's e-mail back in RM (else every later
                // change of this contract would be refused for the same reason).
                if change.responsible.is_some() {
                    let back = subject.doc.signer.email.clone();
                    db.set_responsible_email(&subject.responsible_code, Some(&back))
                        .unwrap();
                    subject.rm_email = back;
                }
            }
            Expect::Unchanged => {
                unchanged += 1;
                assert!(
                    outcome == "skipped" || (with_faults && outcome == "updated"),
                    "{result}\n{}",
                    ctx()
                );
                assert_eq!(tae, subject.doc.set(), "no change\n{}", ctx());
            }
            Expect::Updated(new) => {
                updated += 1;
                assert!(
                    outcome == "updated" || (with_faults && outcome == "skipped"),
                    "{result}\n{}",
                    ctx()
                );
                assert_eq!(tae, new.set(), "TAE = model\n{}", ctx());
                subject.doc = new.clone();
                for e in subject.doc.emails() {
                    if !subject.history.contains(&e) {
                        subject.history.push(e);
                    }
                }
            }
        }
        assert_eq!(
            tae_count(&w, id),
            subject.doc.positions().len(),
            "no address twice in TAE\n{}",
            ctx()
        );
        assert_eq!(record_set(&rec), tae, "record = TAE\n{}", ctx());
    }
    for l in &log {
        println!("{l}");
    }
    assert!(
        refused > 0 && updated > 0,
        "the sequence exercised refusals and updates"
    );
    figures(&format!(
        "update-emails-model seed={seed} steps={steps} updated={updated} refused={refused} unchanged={unchanged} with_faults={faulty} elapsed_s={}",
        started.elapsed().as_secs()
    ));
}

/// The model itself on the cases the issue names.
#[test]
fn the_model_refuses_collisions_and_swaps_and_ignores_case() {
    let p = |i: u32, e: &str| Person {
        name: format!("P{i}"),
        email: e.into(),
        cpf: String::new(),
    };
    let doc = Doc {
        signer: p(0, "resp@x.example"),
        validators: vec![p(1, "val@x.example")],
        witnesses: vec![p(2, "tes@x.example")],
    };
    let change = |v: Option<Vec<Person>>, t: Option<Vec<Person>>| Change {
        responsible: None,
        validators: v,
        witnesses: t,
        what: String::new(),
    };
    // The validator changed to the witness's address: refused, naming both roles.
    assert_eq!(
        expect(
            &doc,
            "resp@x.example",
            &change(Some(vec![p(1, "TES@x.example")]), None)
        ),
        Expect::Refused(vec![(Role::Validator, Role::Witness)])
    );
    // The responsible changed to the validator's address.
    assert_eq!(
        expect(&doc, "val@x.example", &change(None, None)),
        Expect::Refused(vec![(Role::Signer, Role::Validator)])
    );
    // A swap: refused (each new address is another recipient's now).
    assert!(matches!(
        expect(
            &doc,
            "resp@x.example",
            &change(
                Some(vec![p(2, "tes@x.example")]),
                Some(vec![p(1, "val@x.example")])
            )
        ),
        Expect::Refused(..)
    ));
    // Own address in another case: no change.
    assert_eq!(
        expect(
            &doc,
            "RESP@x.example",
            &change(Some(vec![p(1, "Val@X.example")]), None)
        ),
        Expect::Unchanged
    );
    // A new address: updated.
    let Expect::Updated(new) = expect(
        &doc,
        "resp@x.example",
        &change(None, Some(vec![p(3, "nova@x.example")])),
    ) else {
        panic!("a new address is an update")
    };
    assert_eq!(new.witnesses[0].email, "nova@x.example");
}

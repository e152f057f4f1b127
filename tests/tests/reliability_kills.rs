//! Crashes in every option: an RM application server (`proof-host`, its own process loading the
//! plugin over the school database) running send, check, download, update e-mails, delete and
//! — when the plugin offers it — reconcile is killed with SIGKILL at seeded points, counted in
//! TAE requests on documents since it started (an observable sign, not a delay; the log-in of
//! each new process is left out of the count, so every point lands inside the option's work). Each kill is followed by a
//! rerun (itself killed, until the last one of the option runs to its end) and the audit:
//! no duplicate, no published document unknown to the records after every kill; after the
//! option's complete rerun, nothing lost, the records and TAE one to one, no record `enviando`,
//! and the option's own result (signed ones `finalizado` and `Assinado`, one stored file per
//! download, each new e-mail once on its document with the old one gone and no recipient lost
//! or doubled, deleted ones cancelled in TAE).
//!
//! A killed process never releases its leases; they expire after the lease time
//! (`lease_ttl_secs`, at least 10 s), and the takeover once they expired is proven with real
//! waits by `integrity_multiprocess.rs`. Here the test ends the dead run's leases in the
//! database right after the kill (`expires_at_ms = 0`, what the lease time passing does), so the
//! rerun starts at once.
//!
//! Knobs: `TAE_EDU_KILL_CONTRACTS` (150; 500 with `TAE_EDU_LONG=1`), `TAE_EDU_KILL_SEED`.
//! The send-only crash test with its 10 kills is `reliability_crash.rs`.

#![cfg(unix)]

#[path = "reliability_support.rs"]
mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::*;
use tae_edu_tests::proofs::{HostProcess, HostRun, HostSpec, UiAnswers};
use tae_sim::{FaultConfig, Latency, SimOptions, SimServer};

const PROOF_HOST: &str = env!("CARGO_BIN_EXE_proof-host");

/// A tiny seeded generator (splitmix64), so the kill points are reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

struct Ctx {
    sim: SimServer,
    db_path: std::path::PathBuf,
    lib: std::path::PathBuf,
    rng: SplitMix,
    runs: usize,
    /// Every kill: (option, TAE document requests since the process started, progress lines it
    /// printed).
    kills: Vec<(String, u64, usize)>,
    /// Rounds that ended before their kill point (not counted as kills).
    early_exits: usize,
}

impl Ctx {
    fn spec(&mut self, option: &str, invoked_from: Value, params: Value) -> HostSpec {
        self.runs += 1;
        HostSpec {
            db: self.db_path.display().to_string(),
            login: host_sim::seed::DEMO_RM_USER.into(),
            session: format!("rm-sessao-kill-{}", self.runs),
            option: option.into(),
            invoked_from,
            params,
            ui: Some(UiAnswers::demo()),
            echo_log_level: 0,
        }
    }

    /// The dead run's leases end now (the lease time passing), so the rerun takes them at once.
    fn expire_leases(&self) -> usize {
        expire_leases(&self.db_path)
    }

    /// Runs `option` until `kills` rounds were killed inside their work (a round whose process
    /// ends before its kill point is not counted; at most `3 × kills` rounds), each kill point a
    /// seeded number of TAE document requests within nine tenths of `window` (the expected
    /// requests of the run: the whole batch for check and download, which redo it, what is left
    /// for send, update e-mails and delete); after each kill, the
    /// audit of what must hold at any instant. Then one more run to its end, answered.
    fn kill_phase(
        &mut self,
        option: &str,
        invoked_from: Value,
        params: Value,
        kills: usize,
        window: &dyn Fn(&Ctx, usize) -> u64,
        unit: Unit,
    ) -> HostRun {
        let mut landed = 0usize;
        let mut rounds = 0usize;
        while landed < kills && rounds < 3 * kills {
            rounds += 1;
            // The kill point: anywhere within nine tenths of the run's expected work.
            let w = (window(self, kills - landed) * 9 / 10).max(1);
            let offset = 1 + self.rng.next() % w;
            let spec = self.spec(option, invoked_from.clone(), params.clone());
            let base = work_requests(&self.sim);
            let mut p = HostProcess::spawn(PROOF_HOST, &self.lib, option, &spec);
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut reached = false;
            while Instant::now() < deadline {
                p.pump();
                let progressed = match unit {
                    Unit::Requests => work_requests(&self.sim) - base,
                    Unit::ProgressLines => p.progress().len() as u64,
                };
                if progressed >= offset {
                    reached = true;
                    break;
                }
                if p.finished() {
                    break;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            if !reached {
                let run = p.finish(Duration::from_secs(120));
                println!(
                    "{option}: round {rounds} ended before its kill point ({offset} requests): {:?}",
                    run.counts()
                );
                self.early_exits += 1;
                continue;
            }
            p.pump();
            let lines = p.progress().len();
            assert!(p.sigkill(), "{option}: the process had already exited");
            let at = work_requests(&self.sim) - base;
            landed += 1;
            self.kills.push((option.to_string(), at, lines));
            let expired = self.expire_leases();
            let a = audit(&open_db(&self.db_path), &self.sim);
            println!(
                "{option}: SIGKILL after {at} TAE document requests ({lines} progress lines), {expired} leases left, {} records enviando",
                a.enviando.len()
            );
            assert!(
                a.duplicates.is_empty(),
                "{option}: duplicates after a kill: {:?}",
                a.duplicates
            );
            assert!(
                a.unknown_to_records.is_empty(),
                "{option}: published documents unknown to the records after a kill: {:?}",
                a.unknown_to_records
            );
            assert!(
                a.multiple_active.is_empty(),
                "{option}: contracts with two active records after a kill: {:?}",
                a.multiple_active
            );
        }
        assert_eq!(
            landed, kills,
            "{option}: only {landed} of {kills} kills landed inside a run in {rounds} rounds"
        );
        let spec = self.spec(option, invoked_from, params);
        let base = work_requests(&self.sim);
        let run = HostProcess::spawn(PROOF_HOST, &self.lib, option, &spec)
            .finish(Duration::from_secs(300));
        println!(
            "{option}: the complete rerun made {} TAE document requests",
            work_requests(&self.sim) - base
        );
        assert_eq!(run.status, 0, "{option} rerun: {}", run.response);
        let counts = run.counts();
        // Every result (reconcile answers one per finding, a contract may have several).
        for r in run.response["results"].as_array().expect("results") {
            let o = r["outcome"].as_str().unwrap_or("");
            assert!(
                !["failed", "not_processed", "held"].contains(&o),
                "{option}: the complete rerun left {o}: {r}"
            );
        }
        println!("{option}: complete rerun {counts:?}");
        run
    }

    /// The audit after an option's complete rerun.
    fn full_audit(&self, what: &str, keys: &[String]) -> Audit {
        let db = open_db(&self.db_path);
        let a = audit(&db, &self.sim);
        assert!(a.is_clean(), "{what}: {a:?}");
        let lost: Vec<&String> = keys.iter().filter(|k| a.published_count(k) == 0).collect();
        assert!(
            lost.is_empty(),
            "{what}: contracts without a document: {lost:?}"
        );
        let problems: Vec<String> = one_to_one_problems(&db, &self.sim)
            .into_iter()
            // Drafts of sends cut by a kill are counted as orphan drafts (`Audit`), left for
            // reconcile; every other document must match one record.
            .filter(|p| !p.contains("status 5) has no record"))
            .collect();
        assert!(problems.is_empty(), "{what}: records ≠ TAE: {problems:#?}");
        a
    }
}

/// What a kill point counts.
#[derive(Clone, Copy)]
enum Unit {
    /// TAE requests on documents since the process started.
    Requests,
    /// Progress lines the process printed (one per contract): for reconcile, which reads the
    /// whole selection in one or two TAE requests and then works contract by contract.
    ProgressLines,
}

/// TAE requests on documents (every route but authentication, profile and users): the work of
/// an option, without the log-in each new process does first. Kill points are counted in these.
fn work_requests(sim: &SimServer) -> u64 {
    sim.state()
        .counters()
        .iter()
        .filter(|(route, _)| {
            !route.contains("/identityintegration/")
                && !route.contains(tae_sim::api::USER_EMAIL_LIST)
        })
        .map(|(_, n)| n)
        .sum()
}

fn contract_view(keys: &[String]) -> Value {
    json!({"kind": "contract_view", "contract_keys": keys})
}

fn emails_of(v: &Value) -> Vec<String> {
    v["recipients"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r["email"].as_str().map(str::to_lowercase))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sigkill_during_every_option_then_rerun_and_audit() {
    let n = size_knob("TAE_EDU_KILL_CONTRACTS", 150, 500);
    let seed: u64 = std::env::var("TAE_EDU_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(14_2026);
    let started = Instant::now();
    let lib = host_sim::locate_plugin().expect("plugin");
    let sim = SimServer::start(SimOptions {
        seed,
        faults: FaultConfig {
            latency_ms: Some(Latency::Range { min: 1, max: 6 }),
            ..FaultConfig::default()
        },
        ..SimOptions::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("escola.db");
    let keys = {
        let db = open_db(&db_path);
        let keys = host_sim::seed_bulk(&db, n).unwrap();
        configure_db(&db, &sim);
        db.set_param("lease_ttl_secs", &json!(10)).unwrap();
        keys
    };
    let mut cx = Ctx {
        sim,
        db_path: db_path.clone(),
        lib,
        rng: SplitMix(seed),
        runs: 0,
        kills: Vec::new(),
        early_exits: 0,
    };
    let mut phase_figures: Vec<String> = Vec::new();
    let published = |cx: &Ctx| {
        cx.sim
            .state()
            .documents()
            .iter()
            .filter(|d| d["status"].as_i64() != Some(TAE_DRAFT))
            .count()
    };

    // ---- send: about 5 TAE requests a contract.
    let t = Instant::now();
    let run = cx.kill_phase(
        "send",
        contract_view(&keys),
        report_source(),
        4,
        &|cx, _| 2 * (n - published(cx)) as u64,
        Unit::Requests,
    );
    assert_eq!(
        run.counts().get("sent").copied().unwrap_or(0)
            + run.counts().get("skipped").copied().unwrap_or(0),
        n
    );
    let a = cx.full_audit("after send", &keys);
    for k in &keys {
        assert_eq!(a.published_count(k), 1, "{k}");
    }
    let docs: BTreeMap<String, u64> = keys
        .iter()
        .map(|k| (k.clone(), a.published[k][0]))
        .collect();
    phase_figures.push(format!(
        "send: {} published, orphan_drafts={}, {} ms",
        docs.len(),
        a.orphan_drafts,
        t.elapsed().as_millis()
    ));

    // ---- check: every 4th document signed in the portal; each document read on its own (D5
    // off), about 1 request a contract.
    let state = cx.sim.state();
    let signed: Vec<String> = keys.iter().step_by(4).cloned().collect();
    for k in &signed {
        let id = docs[k];
        let doc = state.document(id).unwrap();
        for e in emails_of(&doc) {
            state.act(id, &e).expect("sign in the portal");
        }
        assert_eq!(state.document_status(id), Some(2), "{k} finalised");
    }
    state.set_many_ids(false);
    let t = Instant::now();
    let run = cx.kill_phase(
        "check",
        contract_view(&keys),
        json!({}),
        4,
        &|_, _| n as u64,
        Unit::Requests,
    );
    state.set_many_ids(true);
    let outcomes = run.outcomes();
    let db = open_db(&db_path);
    for k in &keys {
        let expected = if signed.contains(k) {
            "signed"
        } else {
            "pending"
        };
        assert_eq!(outcomes[k], expected, "{k}");
        if signed.contains(k) {
            assert_eq!(db.contract(k).unwrap().unwrap().status, "Assinado", "{k}");
        }
    }
    cx.full_audit("after check", &keys);
    phase_figures.push(format!(
        "check: {} signed, {} pending, {} ms",
        signed.len(),
        n - signed.len(),
        t.elapsed().as_millis()
    ));

    // ---- download (signed with manifest) of the signed contracts: about 2 requests each.
    let t = Instant::now();
    let m = signed.len();
    let run = cx.kill_phase(
        "download",
        contract_view(&signed),
        json!({"kind": 2}),
        4,
        &move |_, _| m as u64,
        Unit::Requests,
    );
    assert_eq!(
        run.counts().get("downloaded").copied(),
        Some(m),
        "{}",
        run.response
    );
    let records = db.all_records().unwrap();
    let mut files_per_record: BTreeMap<String, usize> = BTreeMap::new();
    for (rid, _name, size) in db.record_files().unwrap() {
        assert!(size > 0, "empty file stored for {rid}");
        *files_per_record.entry(rid).or_insert(0) += 1;
    }
    for k in &signed {
        let rec = records
            .iter()
            .find(|r| r["record_key"] == k.as_str() && r["document_id"].as_u64() == Some(docs[k]))
            .unwrap();
        let rid = rec["id"].as_str().unwrap();
        assert_eq!(files_per_record.get(rid), Some(&1), "{k}: files of {rid}");
    }
    assert_eq!(
        files_per_record.len(),
        m,
        "files stored: {files_per_record:?}"
    );
    cx.full_audit("after download", &keys);
    phase_figures.push(format!(
        "download: {m} downloaded, one file each, {} ms",
        t.elapsed().as_millis()
    ));

    // ---- update e-mails: new e-mails for the responsibles of every 3rd pending contract (and
    // their siblings'); about 5 requests a contract.
    let pending: Vec<String> = keys
        .iter()
        .filter(|k| !signed.contains(k))
        .cloned()
        .collect();
    for k in pending.iter().step_by(3) {
        let fr = db
            .contract(k)
            .unwrap()
            .unwrap()
            .financial_responsible
            .unwrap();
        let e = fr.email.clone().unwrap();
        if !e.starts_with("novo.") {
            db.set_responsible_email(&fr.code, Some(&format!("novo.{e}")))
                .unwrap();
        }
    }
    let mut new_email: BTreeMap<String, String> = BTreeMap::new();
    for k in &pending {
        let e = db
            .contract(k)
            .unwrap()
            .unwrap()
            .financial_responsible
            .unwrap()
            .email
            .unwrap();
        if e.starts_with("novo.") {
            new_email.insert(k.clone(), e.to_lowercase());
        }
    }
    let changed: Vec<String> = new_email.keys().cloned().collect();
    let recipients_before: BTreeMap<String, usize> = changed
        .iter()
        .map(|k| {
            (
                k.clone(),
                emails_of(&state.document(docs[k]).unwrap()).len(),
            )
        })
        .collect();
    let t = Instant::now();
    let c = changed.len();
    let run = cx.kill_phase(
        "update_emails",
        contract_view(&changed),
        json!({}),
        4,
        &|cx, _| {
            let left = changed
                .iter()
                .filter(|k| {
                    !emails_of(&cx.sim.state().document(docs[*k]).unwrap()).contains(&new_email[*k])
                })
                .count();
            3 * left as u64
        },
        Unit::Requests,
    );
    let counts = run.counts();
    assert_eq!(
        counts.get("updated").copied().unwrap_or(0) + counts.get("skipped").copied().unwrap_or(0),
        c,
        "{}",
        run.response
    );
    let records = db.all_records().unwrap();
    let mut recipient_problems = Vec::new();
    for k in &changed {
        let id = docs[k];
        let emails = emails_of(&state.document(id).unwrap());
        let new = &new_email[k];
        let old = new.trim_start_matches("novo.").to_string();
        if emails.iter().filter(|e| *e == new).count() != 1 || emails.contains(&old) {
            recipient_problems.push(format!("{k}: document {id} has {emails:?} (new {new})"));
        }
        if emails.len() != recipients_before[k] {
            recipient_problems.push(format!(
                "{k}: document {id} had {} recipients, now {emails:?}",
                recipients_before[k]
            ));
        }
        let unique: BTreeSet<&String> = emails.iter().collect();
        if unique.len() != emails.len() {
            recipient_problems.push(format!("{k}: a recipient doubled in {id}: {emails:?}"));
        }
        let rec = records
            .iter()
            .find(|r| r["record_key"] == k.as_str() && r["document_id"].as_u64() == Some(id))
            .unwrap();
        let mut rec_emails = emails_of(rec);
        let mut tae_emails = emails.clone();
        rec_emails.sort();
        tae_emails.sort();
        if rec_emails != tae_emails {
            recipient_problems.push(format!(
                "{k}: the record says {rec_emails:?}, TAE {tae_emails:?}"
            ));
        }
    }
    assert!(
        recipient_problems.is_empty(),
        "update e-mails after kills: {recipient_problems:#?}"
    );
    cx.full_audit("after update e-mails", &keys);
    phase_figures.push(format!(
        "update_emails: {c} contracts, new e-mail once, old gone, recipients lost 0, doubled 0, {} ms",
        t.elapsed().as_millis()
    ));

    // ---- delete every 2nd pending contract: about 2 requests each, fewer left after each kill.
    let delete_keys: Vec<String> = pending.iter().skip(1).step_by(2).cloned().collect();
    let t = Instant::now();
    let dk = delete_keys.clone();
    let dd: Vec<u64> = dk.iter().map(|k| docs[k]).collect();
    let run = cx.kill_phase(
        "delete",
        contract_view(&delete_keys),
        json!({}),
        4,
        &move |cx, _| {
            let open = dd
                .iter()
                .filter(|id| cx.sim.state().document_status(**id) != Some(TAE_CANCELLED))
                .count();
            open as u64
        },
        Unit::Requests,
    );
    let counts = run.counts();
    assert_eq!(
        counts.get("deleted").copied().unwrap_or(0) + counts.get("skipped").copied().unwrap_or(0),
        delete_keys.len(),
        "{}",
        run.response
    );
    let records = db.all_records().unwrap();
    for k in &delete_keys {
        assert_eq!(state.document_status(docs[k]), Some(TAE_CANCELLED), "{k}");
        let rec = records
            .iter()
            .find(|r| r["document_id"].as_u64() == Some(docs[k]))
            .unwrap();
        assert_eq!(rec["status"], "cancelado", "{k}: {rec}");
    }
    let a = cx.full_audit("after delete", &keys);
    phase_figures.push(format!(
        "delete: {} cancelled, {} ms",
        delete_keys.len(),
        t.elapsed().as_millis()
    ));
    let orphan_before = a.orphan_drafts;

    // ---- reconcile (fix) over the period, once the plugin offers it: it must leave no orphan
    // draft and the records and TAE one to one, drafts included.
    let plugin = plugin();
    let probe_host = scripted_host(open_db(&db_path));
    let reconcile = match probe_reconcile(
        &plugin,
        &probe_host,
        &unique_session("kill-probe"),
        &keys[0],
    ) {
        Err(reason) => {
            reconcile_skipped("kill points of reconcile", &reason);
            "reconcile: SKIPPED (option not offered)".to_string()
        }
        Ok(_) => {
            let t = Instant::now();
            let before = cx.sim.state().total_requests();
            // A dry run over the period first: it changes nothing (records and TAE's documents
            // compared as a whole), and its progress lines (one per contract) are the expected
            // work the kill points are drawn within (reconcile reads the selection in one or two
            // TAE requests, so requests would not spread the points).
            // Drift first: two pending documents signed in the portal, never checked (records
            // behind TAE: reconcile must mend them as a check would).
            let drift: Vec<String> = pending
                .iter()
                .filter(|k| !delete_keys.contains(k) && !changed.contains(k))
                .take(2)
                .cloned()
                .collect();
            for k in &drift {
                for e in emails_of(&state.document(docs[k]).unwrap()) {
                    state.act(docs[k], &e).expect("sign in the portal");
                }
            }
            let db = open_db(&db_path);
            let (records0, docs0) = (db.all_records().unwrap(), cx.sim.state().documents());
            let spec = cx.spec("reconcile", menu_filter(), json!({"fix": false}));
            let base = work_requests(&cx.sim);
            let dry = HostProcess::spawn(PROOF_HOST, &cx.lib, "reconcile dry run", &spec)
                .finish(Duration::from_secs(300));
            assert_eq!(dry.status, 0, "reconcile dry run: {}", dry.response);
            let dry_requests = work_requests(&cx.sim) - base;
            let dry_lines = dry.progress.len() as u64;
            assert_eq!(
                db.all_records().unwrap(),
                records0,
                "the dry run changed records"
            );
            assert_eq!(cx.sim.state().documents(), docs0, "the dry run changed TAE");
            let run = cx.kill_phase(
                "reconcile",
                menu_filter(),
                json!({"fix": true}),
                3,
                &move |_, _| dry_lines,
                Unit::ProgressLines,
            );
            let a = cx.full_audit("after reconcile", &keys);
            assert_eq!(a.orphan_drafts, 0, "orphan drafts left after reconcile");
            let problems = one_to_one_problems(&open_db(&db_path), &cx.sim);
            assert!(problems.is_empty(), "after reconcile: {problems:#?}");
            for k in &drift {
                assert_eq!(db.contract(k).unwrap().unwrap().status, "Assinado", "{k}");
            }
            format!(
                "reconcile: dry run {dry_requests} document requests / {dry_lines} progress lines; {} requests in all, summary {}, orphan drafts after 0, {} ms",
                cx.sim.state().total_requests() - before,
                run.response["summary"],
                t.elapsed().as_millis()
            )
        }
    };
    let reconcile_ran = cx.kills.iter().any(|k| k.0 == "reconcile");
    assert_eq!(
        reconcile_ran,
        !reconcile.contains("SKIPPED"),
        "reconcile is offered by the plugin but its kill points did not run"
    );
    phase_figures.push(reconcile);

    let mut per_option: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (o, at, lines) in &cx.kills {
        per_option
            .entry(o.as_str())
            .or_default()
            .push(format!("{at}req/{lines}p"));
    }
    let per_option: Vec<String> = per_option
        .iter()
        .map(|(o, v)| format!("{o}:{}=[{}]", v.len(), v.join(",")))
        .collect();
    println!("{}", phase_figures.join("\n"));
    figures(&format!(
        "kills contracts={n} seed={seed} kills={} early_exits={} {} orphan_drafts_before_reconcile={orphan_before} elapsed_s={}",
        cx.kills.len(),
        cx.early_exits,
        per_option.join(" "),
        started.elapsed().as_secs()
    ));
}

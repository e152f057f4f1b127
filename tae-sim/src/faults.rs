//! Fault injection for the TAE routes (never for `/_sim/`): latency, 5xx, 429 bursts with
//! `Retry-After`, hangs, dropped connections, short token lifetimes, and hostile answers
//! (truncated JSON, wrong types, missing fields, an HTML page, a huge body, a slow drip, a
//! redirect, a gzip bomb, a 200 with `success: false`). Every decision is drawn
//! from one seeded RNG stepped a fixed number of times per request, so a given seed and request
//! order always produce the same faults.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latency added before a TAE route answers: a fixed number of milliseconds or a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Latency {
    /// Always this many milliseconds.
    Fixed(u64),
    /// Uniformly drawn from `min..=max` milliseconds.
    Range { min: u64, max: u64 },
}

/// A probability per route template (`"POST /documents/v1/envelopes/upload"`, or the bare
/// template `"/documents/v1/envelopes/upload"` for every method), with `"*"` as the fallback.
/// In JSON either a number (the same rate for every route) or an object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "RateMapRepr", into = "BTreeMap<String, f64>")]
pub struct RateMap(pub BTreeMap<String, f64>);

#[derive(Deserialize)]
#[serde(untagged)]
enum RateMapRepr {
    All(f64),
    PerRoute(BTreeMap<String, f64>),
}

impl From<RateMapRepr> for RateMap {
    fn from(repr: RateMapRepr) -> Self {
        match repr {
            RateMapRepr::All(rate) => RateMap::all(rate),
            RateMapRepr::PerRoute(map) => RateMap(map),
        }
    }
}

impl From<RateMap> for BTreeMap<String, f64> {
    fn from(map: RateMap) -> Self {
        map.0
    }
}

impl RateMap {
    /// The same rate for every route.
    pub fn all(rate: f64) -> Self {
        RateMap(BTreeMap::from([("*".to_string(), rate)]))
    }

    /// The rate of one route: `"<METHOD> <template>"`, else `"<template>"`, else `"*"`, else 0.
    pub fn rate_for(&self, method: &str, template: &str) -> f64 {
        let exact = format!("{method} {template}");
        self.0
            .get(&exact)
            .or_else(|| self.0.get(template))
            .or_else(|| self.0.get("*"))
            .copied()
            .unwrap_or(0.0)
            .clamp(0.0, 1.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(|rate| *rate <= 0.0)
    }
}

/// Bursts of HTTP 429: each request not already in a burst starts one with probability `rate`;
/// a burst answers `burst` consecutive requests (this one included) with 429 and
/// `Retry-After: retry_after_secs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimit {
    pub rate: f64,
    pub burst: u32,
    pub retry_after_secs: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            rate: 0.0,
            burst: 3,
            retry_after_secs: 1,
        }
    }
}

/// Whether a dropped request took effect before the connection was closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropMode {
    /// The connection is closed before the request is processed: nothing changed.
    Before,
    /// The request is processed (state changed, e.g. a document was uploaded), then the
    /// connection is closed instead of answering: the client cannot know it worked.
    After,
    /// Each drop picks `before` or `after` with the seeded RNG (50/50).
    #[default]
    Random,
}

/// A hostile answer: what a broken TAE, or a proxy in front of it, sends instead of the normal
/// answer. In JSON, snake_case (`"truncated_json"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hostile {
    /// The request takes effect; the answer's JSON is cut in half (a complete HTTP message).
    TruncatedJson,
    /// The request takes effect; every leaf of the answer's `data` has the wrong JSON type
    /// (number → boolean, string → number, boolean → string, array → object by index).
    WrongTypes,
    /// The request takes effect; the answer has no `data`, or with `hostile.fields` set, every
    /// property of those names under `data` is gone.
    MissingFields,
    /// Nothing happens; 200 with an HTML error page (`text/html`).
    HtmlError,
    /// The request takes effect; the answer's JSON grows to `hostile.body_bytes` (default
    /// 10 MiB) with an extra string property `preenchimento`.
    HugeBody,
    /// The request takes effect; the answer comes a byte every `hostile.drip_ms` (default
    /// 1000 ms), its `Content-Length` announced up front.
    SlowDrip,
    /// Nothing happens; 302 to the same path and query on `hostile.redirect_to` (default
    /// `http://tae-sim-redirect.invalid`).
    Redirect,
    /// Nothing happens; 200 `Content-Encoding: gzip` whose expansion is `hostile.bomb_bytes`
    /// (default 1 GiB) of JSON (`{"success":true,"data":"AAAA…"}`).
    GzipBomb,
    /// Nothing happens; 200 with the route's envelope saying `success: false` (identity routes:
    /// `succeeded: false`), "Não foi possível processar a solicitação.".
    SuccessFalse,
}

impl Hostile {
    /// The snake_case name (as in JSON and in the request log).
    pub fn name(self) -> &'static str {
        match self {
            Hostile::TruncatedJson => "truncated_json",
            Hostile::WrongTypes => "wrong_types",
            Hostile::MissingFields => "missing_fields",
            Hostile::HtmlError => "html_error",
            Hostile::HugeBody => "huge_body",
            Hostile::SlowDrip => "slow_drip",
            Hostile::Redirect => "redirect",
            Hostile::GzipBomb => "gzip_bomb",
            Hostile::SuccessFalse => "success_false",
        }
    }

    /// Whether the request is processed (takes effect) before the hostile answer is sent.
    pub fn takes_effect(self) -> bool {
        matches!(
            self,
            Hostile::TruncatedJson
                | Hostile::WrongTypes
                | Hostile::MissingFields
                | Hostile::HugeBody
                | Hostile::SlowDrip
        )
    }
}

/// Hostile answers: which routes get which, and their parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostileConfig {
    /// Route key (`"<METHOD> <template>"`, `"<template>"` or `"*"`, as for rates) → the answer.
    pub routes: BTreeMap<String, Hostile>,
    /// Probability that a request of such a route gets it (default 1: every one), drawn from
    /// the seeded RNG.
    pub rate: Option<f64>,
    /// `missing_fields`: the property names to remove under `data` (empty: `data` itself).
    pub fields: Vec<String>,
    /// `huge_body`: the body's size (default 10 MiB).
    pub body_bytes: Option<usize>,
    /// `slow_drip`: milliseconds between two bytes (default 1000).
    pub drip_ms: Option<u64>,
    /// `redirect`: the other host's origin, e.g. `http://127.0.0.1:9` (default
    /// `http://tae-sim-redirect.invalid`).
    pub redirect_to: Option<String>,
    /// `gzip_bomb`: the size the body expands to (default 1 GiB).
    pub bomb_bytes: Option<u64>,
}

impl HostileConfig {
    pub const DEFAULT_BODY_BYTES: usize = 10 * 1024 * 1024;
    pub const DEFAULT_DRIP_MS: u64 = 1000;
    pub const DEFAULT_REDIRECT_TO: &'static str = "http://tae-sim-redirect.invalid";
    pub const DEFAULT_BOMB_BYTES: u64 = 1 << 30;

    /// The hostile answer of one route: `"<METHOD> <template>"`, else `"<template>"`, else `"*"`.
    pub fn mode_for(&self, method: &str, template: &str) -> Option<Hostile> {
        self.routes
            .get(&format!("{method} {template}"))
            .or_else(|| self.routes.get(template))
            .or_else(|| self.routes.get("*"))
            .copied()
    }
}

/// The whole fault configuration (`GET`/`PUT /_sim/faults`). Every field is optional in JSON;
/// the default injects nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultConfig {
    /// Added before every TAE route answers.
    pub latency_ms: Option<Latency>,
    /// Probability of a 5xx per route; the status is drawn from `error_statuses`.
    pub error_rate: RateMap,
    /// The statuses an injected error uses (default 500, 502, 503).
    pub error_statuses: Vec<u16>,
    /// Bursts of 429 with `Retry-After`.
    pub rate_limit: Option<RateLimit>,
    /// Probability that a request hangs for `hang_ms` (then answers normally).
    pub hang_rate: RateMap,
    /// How long a hang lasts (default 120 000 ms); a hang ends early when the server stops.
    pub hang_ms: Option<u64>,
    /// Probability that the connection is closed without an answer.
    pub drop_rate: RateMap,
    /// Whether a dropped request took effect first.
    pub drop_mode: DropMode,
    /// Lifetime of tokens issued from now on (default 12 h).
    pub token_ttl_secs: Option<u64>,
    /// Hostile answers per route.
    pub hostile: HostileConfig,
}

impl FaultConfig {
    pub const DEFAULT_HANG_MS: u64 = 120_000;

    pub fn statuses(&self) -> Vec<u16> {
        if self.error_statuses.is_empty() {
            vec![500, 502, 503]
        } else {
            self.error_statuses.clone()
        }
    }
}

/// What the fault layer decided for one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultDecision {
    pub latency_ms: u64,
    /// Answer 429 with this `Retry-After` (seconds).
    pub rate_limited: Option<u64>,
    /// Answer this 5xx status.
    pub error_status: Option<u16>,
    /// Sleep this long before answering.
    pub hang_ms: Option<u64>,
    /// Close the connection; `true` = after processing the request.
    pub drop_after: Option<bool>,
    /// Answer this hostile answer.
    pub hostile: Option<Hostile>,
}

/// The seeded RNG and the 429 burst in progress.
#[derive(Debug)]
pub struct FaultEngine {
    rng: fastrand::Rng,
    burst_left: u32,
}

impl FaultEngine {
    pub fn new(seed: u64) -> Self {
        FaultEngine {
            rng: fastrand::Rng::with_seed(seed),
            burst_left: 0,
        }
    }

    /// Decides the faults of one request. Always draws the same number of values, so the
    /// sequence does not depend on which faults are configured.
    pub fn decide(&mut self, config: &FaultConfig, method: &str, template: &str) -> FaultDecision {
        let draws: [f64; 6] = std::array::from_fn(|_| self.rng.f64());
        let pick = self.rng.u64(..);
        let mut decision = FaultDecision {
            latency_ms: match &config.latency_ms {
                None => 0,
                Some(Latency::Fixed(ms)) => *ms,
                Some(Latency::Range { min, max }) => {
                    let (lo, hi) = if min <= max {
                        (*min, *max)
                    } else {
                        (*max, *min)
                    };
                    lo + pick % (hi - lo + 1)
                }
            },
            ..FaultDecision::default()
        };
        if let Some(limit) = &config.rate_limit {
            if self.burst_left == 0 && draws[0] < limit.rate.clamp(0.0, 1.0) {
                self.burst_left = limit.burst.max(1);
            }
            if self.burst_left > 0 {
                self.burst_left -= 1;
                decision.rate_limited = Some(limit.retry_after_secs);
                return decision;
            }
        } else {
            self.burst_left = 0;
        }
        if draws[1] < config.error_rate.rate_for(method, template) {
            let statuses = config.statuses();
            decision.error_status = Some(statuses[(pick as usize) % statuses.len()]);
            return decision;
        }
        if let Some(mode) = config.hostile.mode_for(method, template) {
            if draws[5] < config.hostile.rate.unwrap_or(1.0).clamp(0.0, 1.0) {
                decision.hostile = Some(mode);
                return decision;
            }
        }
        if draws[2] < config.hang_rate.rate_for(method, template) {
            decision.hang_ms = Some(config.hang_ms.unwrap_or(FaultConfig::DEFAULT_HANG_MS));
        }
        if draws[3] < config.drop_rate.rate_for(method, template) {
            decision.drop_after = Some(match config.drop_mode {
                DropMode::Before => false,
                DropMode::After => true,
                DropMode::Random => draws[4] < 0.5,
            });
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_map_accepts_a_number_or_a_map_and_falls_back_to_star() {
        let all: RateMap = serde_json::from_str("0.25").unwrap();
        assert_eq!(all.rate_for("GET", "/x"), 0.25);
        let map: RateMap =
            serde_json::from_str(r#"{"POST /a": 1.0, "/b": 0.5, "*": 0.1}"#).unwrap();
        assert_eq!(map.rate_for("POST", "/a"), 1.0);
        assert_eq!(map.rate_for("GET", "/a"), 0.1);
        assert_eq!(map.rate_for("DELETE", "/b"), 0.5);
        assert_eq!(RateMap::default().rate_for("GET", "/a"), 0.0);
    }

    #[test]
    fn same_seed_same_decisions() {
        let config = FaultConfig {
            error_rate: RateMap::all(0.3),
            drop_rate: RateMap::all(0.2),
            latency_ms: Some(Latency::Range { min: 1, max: 50 }),
            ..FaultConfig::default()
        };
        let run = |seed| {
            let mut engine = FaultEngine::new(seed);
            (0..200)
                .map(|_| engine.decide(&config, "GET", "/x"))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let decisions = run(7);
        let errors = decisions
            .iter()
            .filter(|d| d.error_status.is_some())
            .count();
        assert!((30..=90).contains(&errors), "errors = {errors}");
        assert!(decisions.iter().all(|d| (1..=50).contains(&d.latency_ms)));
    }

    #[test]
    fn rate_limit_comes_in_bursts() {
        let config = FaultConfig {
            rate_limit: Some(RateLimit {
                rate: 1.0,
                burst: 3,
                retry_after_secs: 2,
            }),
            ..FaultConfig::default()
        };
        let mut engine = FaultEngine::new(1);
        for _ in 0..5 {
            assert_eq!(engine.decide(&config, "GET", "/x").rate_limited, Some(2));
        }
        let config = FaultConfig::default();
        assert_eq!(
            engine.decide(&config, "GET", "/x"),
            FaultDecision::default()
        );
    }

    #[test]
    fn hostile_answers_per_route_with_a_seeded_rate() {
        let config: FaultConfig = serde_json::from_str(
            r#"{"hostile": {"routes": {"GET /a": "truncated_json", "/b": "gzip_bomb", "*": "html_error"}}}"#,
        )
        .unwrap();
        let mut engine = FaultEngine::new(3);
        assert_eq!(
            engine.decide(&config, "GET", "/a").hostile,
            Some(Hostile::TruncatedJson)
        );
        assert_eq!(
            engine.decide(&config, "POST", "/b").hostile,
            Some(Hostile::GzipBomb)
        );
        assert_eq!(
            engine.decide(&config, "POST", "/a").hostile,
            Some(Hostile::HtmlError)
        );
        // A 5xx wins over a hostile answer; nothing else is drawn with it.
        let config = FaultConfig {
            error_rate: RateMap::all(1.0),
            ..config
        };
        let d = engine.decide(&config, "GET", "/a");
        assert!(d.error_status.is_some() && d.hostile.is_none());
        // With a rate, the same seed gives the same requests.
        let config = FaultConfig {
            hostile: HostileConfig {
                routes: BTreeMap::from([("*".to_string(), Hostile::SuccessFalse)]),
                rate: Some(0.3),
                ..HostileConfig::default()
            },
            ..FaultConfig::default()
        };
        let run = |seed| {
            let mut engine = FaultEngine::new(seed);
            (0..200)
                .map(|_| engine.decide(&config, "GET", "/x").hostile.is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        let hits = run(9).iter().filter(|h| **h).count();
        assert!((30..=90).contains(&hits), "hits = {hits}");
    }

    #[test]
    fn fault_config_json_round_trip() {
        let json = r#"{"latency_ms": {"min": 5, "max": 10}, "error_rate": {"*": 0.5},
            "rate_limit": {"rate": 0.1}, "drop_rate": 0.2, "drop_mode": "after", "token_ttl_secs": 3,
            "hostile": {"routes": {"*": "slow_drip"}, "drip_ms": 5, "fields": ["status"]}}"#;
        let config: FaultConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.latency_ms, Some(Latency::Range { min: 5, max: 10 }));
        assert_eq!(config.rate_limit.as_ref().unwrap().burst, 3);
        assert_eq!(config.drop_mode, DropMode::After);
        assert_eq!(
            config.hostile.mode_for("GET", "/x"),
            Some(Hostile::SlowDrip)
        );
        let back: FaultConfig =
            serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
        assert_eq!(back, config);
    }
}

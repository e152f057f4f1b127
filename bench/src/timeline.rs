//! Where the time goes at the latency bound: from tae-sim's per-request timeline (arrival and
//! answer of each request) and the measured call's start and end, an exact split of
//! `wall − bound` (bound = `R × L / c`) into
//!
//! - **edges**: the call's time before the first request arrives and after the last answer
//!   (`wall − span`, span = first arrival → last answer);
//! - **server overshoot**: `(Σ server time − R × L) / c`, the stand-in answering later than L
//!   (timer tick, scheduling);
//! - **idle slots**: `(c × span − Σ server time) / c`, the time the c request slots were not
//!   all busy, split by phase: *ramp-up* (from the first arrival until the number of requests
//!   in flight first reaches its full level, `min(c, max in flight)`), *tail* (after it last
//!   left that level) and *steady* (between: the client's gaps between a contract's steps,
//!   record writes, the calling thread being busy).
//!
//! The three add up to `wall − bound` exactly (up to the clocks' microsecond).

use tae_sim::TimelineEntry;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decomposition {
    pub requests: usize,
    pub latency_ms: f64,
    pub concurrency: f64,
    pub wall_ms: f64,
    pub bound_ms: f64,
    pub span_ms: f64,
    /// Before the first arrival / after the last answer.
    pub pre_ms: f64,
    pub post_ms: f64,
    pub server_mean_ms: f64,
    pub server_p50_ms: f64,
    pub server_p99_ms: f64,
    pub server_max_ms: f64,
    pub overshoot_ms: f64,
    pub idle_ramp_ms: f64,
    pub idle_steady_ms: f64,
    pub idle_tail_ms: f64,
    pub ramp_ms: f64,
    pub tail_ms: f64,
    /// Time-weighted mean of requests in flight over the span, and over the steady phase.
    pub in_flight_mean: f64,
    pub in_flight_steady: f64,
    pub full_level: f64,
    /// On each connection, from an answer leaving to the next request arriving (the client's
    /// turnaround between two requests on that connection): mean and median, ms.
    pub turnaround_mean_ms: f64,
    pub turnaround_p50_ms: f64,
}

impl Decomposition {
    pub fn edges_ms(&self) -> f64 {
        self.pre_ms + self.post_ms
    }
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn idle_ms(&self) -> f64 {
        self.idle_ramp_ms + self.idle_steady_ms + self.idle_tail_ms
    }
}

/// The split for one run; `None` without entries.
pub fn decompose(
    entries: &[TimelineEntry],
    latency_ms: u64,
    concurrency: u32,
    call_start_us: u64,
    call_end_us: u64,
) -> Option<Decomposition> {
    if entries.is_empty() {
        return None;
    }
    let c = concurrency.max(1) as f64;
    let l = latency_ms as f64;
    let first = entries.iter().map(|e| e.arrival_us).min()?;
    let last = entries.iter().map(|e| e.answer_us).max()?;
    let mut server: Vec<f64> = entries
        .iter()
        .map(|e| e.answer_us.saturating_sub(e.arrival_us) as f64 / 1000.0)
        .collect();
    server.sort_by(f64::total_cmp);
    let sum_server: f64 = server.iter().sum();
    let pct = |p: f64| server[((server.len() - 1) as f64 * p).round() as usize];

    // In-flight steps: +1 at arrival, −1 at answer (answers first at equal times).
    let mut events: Vec<(u64, i32)> = Vec::with_capacity(entries.len() * 2);
    for e in entries {
        events.push((e.arrival_us, 1));
        events.push((e.answer_us.max(e.arrival_us), -1));
    }
    events.sort();
    let mut level = 0i32;
    let mut max_level = 0i32;
    for (_, d) in &events {
        level += d;
        max_level = max_level.max(level);
    }
    let full = (max_level as f64).min(c);
    // Piecewise-constant in-flight: (start, end, level).
    let mut pieces: Vec<(u64, u64, f64)> = Vec::new();
    level = 0;
    for w in 0..events.len() {
        level += events[w].1;
        if let Some(next) = events.get(w + 1) {
            if next.0 > events[w].0 {
                pieces.push((events[w].0, next.0, level as f64));
            }
        }
    }
    let ramp_end = pieces
        .iter()
        .find(|p| p.2 >= full)
        .map(|p| p.0)
        .unwrap_or(last);
    let tail_start = pieces
        .iter()
        .rev()
        .find(|p| p.2 >= full)
        .map(|p| p.1)
        .unwrap_or(last)
        .max(ramp_end);
    let idle_between = |a: u64, b: u64| -> (f64, f64) {
        // (idle slot time / c, busy integral) in ms over [a, b].
        let mut busy = 0.0;
        for &(s, e, lv) in &pieces {
            let s = s.max(a);
            let e = e.min(b);
            if e > s {
                busy += (e - s) as f64 / 1000.0 * lv;
            }
        }
        let dur = b.saturating_sub(a) as f64 / 1000.0;
        ((c * dur - busy) / c, busy)
    };
    let (idle_ramp, _) = idle_between(first, ramp_end);
    let (idle_steady, busy_steady) = idle_between(ramp_end, tail_start);
    let (idle_tail, _) = idle_between(tail_start, last);
    let mut by_conn: std::collections::BTreeMap<u64, Vec<(u64, u64)>> = Default::default();
    for e in entries {
        by_conn
            .entry(e.connection)
            .or_default()
            .push((e.arrival_us, e.answer_us));
    }
    let mut gaps: Vec<f64> = Vec::new();
    for list in by_conn.values_mut() {
        list.sort();
        for w in list.windows(2) {
            gaps.push(w[1].0.saturating_sub(w[0].1) as f64 / 1000.0);
        }
    }
    gaps.sort_by(f64::total_cmp);
    let (turnaround_mean_ms, turnaround_p50_ms) = if gaps.is_empty() {
        (0.0, 0.0)
    } else {
        (
            gaps.iter().sum::<f64>() / gaps.len() as f64,
            gaps[gaps.len() / 2],
        )
    };
    let span_ms = (last - first) as f64 / 1000.0;
    let steady_ms = (tail_start - ramp_end) as f64 / 1000.0;
    Some(Decomposition {
        requests: entries.len(),
        latency_ms: l,
        concurrency: c,
        wall_ms: call_end_us.saturating_sub(call_start_us) as f64 / 1000.0,
        bound_ms: entries.len() as f64 * l / c,
        span_ms,
        pre_ms: first.saturating_sub(call_start_us) as f64 / 1000.0,
        post_ms: call_end_us.saturating_sub(last) as f64 / 1000.0,
        server_mean_ms: sum_server / server.len() as f64,
        server_p50_ms: pct(0.5),
        server_p99_ms: pct(0.99),
        server_max_ms: *server.last()?,
        overshoot_ms: (sum_server - entries.len() as f64 * l) / c,
        idle_ramp_ms: idle_ramp,
        idle_steady_ms: idle_steady,
        idle_tail_ms: idle_tail,
        ramp_ms: (ramp_end - first) as f64 / 1000.0,
        tail_ms: (last - tail_start) as f64 / 1000.0,
        in_flight_mean: if span_ms > 0.0 {
            sum_server / span_ms
        } else {
            0.0
        },
        in_flight_steady: if steady_ms > 0.0 {
            busy_steady / steady_ms
        } else {
            0.0
        },
        full_level: full,
        turnaround_mean_ms,
        turnaround_p50_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(arrival_ms: u64, answer_ms: u64) -> TimelineEntry {
        TimelineEntry {
            route: "GET /x".into(),
            arrival_us: arrival_ms * 1000,
            answer_us: answer_ms * 1000,
            status: 200,
            connection: 1,
        }
    }

    #[test]
    fn parts_add_up_to_wall_minus_bound() {
        // c = 2, L = 10: a lone request (ramp), two waves of 2 with a 5 ms gap, a lone tail
        // request 1 ms late; the call starts 3 ms before the first and ends 2 ms after.
        let entries = vec![
            e(100, 110),
            e(110, 120),
            e(110, 120),
            e(125, 135),
            e(125, 135),
            e(135, 146),
        ];
        let d = decompose(&entries, 10, 2, 97_000, 148_000).unwrap();
        assert_eq!(d.requests, 6);
        assert!((d.bound_ms - 30.0).abs() < 1e-9);
        assert!((d.wall_ms - 51.0).abs() < 1e-9);
        assert!((d.pre_ms - 3.0).abs() < 1e-9 && (d.post_ms - 2.0).abs() < 1e-9);
        assert!((d.overshoot_ms - 0.5).abs() < 1e-9, "{d:?}");
        let total = d.edges_ms() + d.overshoot_ms + d.idle_ms();
        assert!((total - (d.wall_ms - d.bound_ms)).abs() < 1e-6, "{d:?}");
        assert_eq!(d.full_level, 2.0);
        // Ramp: 100..110 one slot idle = 5 ms of wall; tail: 135..146 one slot idle = 5.5.
        assert!((d.ramp_ms - 10.0).abs() < 1e-9 && (d.idle_ramp_ms - 5.0).abs() < 1e-9);
        assert!((d.tail_ms - 11.0).abs() < 1e-9 && (d.idle_tail_ms - 5.5).abs() < 1e-9);
        // Steady: 110..135 with the 5 ms gap (both slots idle) = 5 ms.
        assert!((d.idle_steady_ms - 5.0).abs() < 1e-9, "{d:?}");
        assert!((d.server_max_ms - 11.0).abs() < 1e-9);
    }

    #[test]
    fn no_entries_no_decomposition() {
        assert!(decompose(&[], 20, 16, 0, 1).is_none());
    }
}

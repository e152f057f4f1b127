//! What the measured host process knows about itself: CPU time (getrusage) and resident memory
//! (`/proc/self/status`), with the peak reset just before the measured call.

/// User and system CPU time of this process (every thread), in microseconds.
pub fn cpu_times_us() -> (u64, u64) {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return (0, 0);
        }
        u
    };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(usage.ru_utime), us(usage.ru_stime))
}

/// One `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`, ...).
pub fn status_kb(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Resets the peak resident set size (`VmHWM`) to the current one (Linux ≥ 4.0). Answers
/// whether it worked; when it did not, the peak covers the whole process life.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory_and_cpu() {
        let rss = status_kb("VmRSS").expect("VmRSS");
        assert!(rss > 100, "{rss}");
        let (u0, _) = cpu_times_us();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let (u1, _) = cpu_times_us();
        assert!(u1 > u0, "{u0} {u1}");
    }

    #[test]
    fn peak_reset_follows_allocation() {
        if !reset_peak_rss() {
            return; // kernel without clear_refs 5: nothing to test
        }
        let before = status_kb("VmHWM").unwrap();
        let big = vec![1u8; 64 * 1024 * 1024];
        std::hint::black_box(&big);
        let peak = status_kb("VmHWM").unwrap();
        assert!(peak >= before + 60 * 1024, "{before} {peak}");
        drop(big);
        assert!(reset_peak_rss());
        assert!(status_kb("VmHWM").unwrap() < peak);
    }
}

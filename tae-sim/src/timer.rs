//! A precise timer for the injected latency. tokio's timer fires on a millisecond tick at or
//! after the deadline (on this kind of machine about 1 ms late on average, i.e. 5 % of a 20 ms
//! latency); this one thread sleeps with the OS's microsecond-resolution timeout and wakes
//! each waiter at its deadline, so the answer leaves at arrival + L, never earlier, late only by
//! a thread wake-up (tens of microseconds).

use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Instant;
use tokio::sync::oneshot;

struct Waiter {
    deadline: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

struct Timer {
    heap: Mutex<(BinaryHeap<Reverse<Waiter>>, u64)>,
    thread: Thread,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<&'static Timer>();
        let handle = std::thread::Builder::new()
            .name("tae-sim-timer".into())
            .spawn(move || {
                let Ok(timer) = rx.recv() else { return };
                loop {
                    let next = {
                        let mut guard = timer.heap.lock();
                        let now = Instant::now();
                        while guard.0.peek().is_some_and(|w| w.0.deadline <= now) {
                            if let Some(Reverse(w)) = guard.0.pop() {
                                let _ = w.wake.send(());
                            }
                        }
                        guard.0.peek().map(|w| w.0.deadline)
                    };
                    match next {
                        Some(d) => {
                            std::thread::park_timeout(d.saturating_duration_since(Instant::now()))
                        }
                        None => std::thread::park(),
                    }
                }
            })
            .expect("starting tae-sim's timer thread");
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            heap: Mutex::new((BinaryHeap::new(), 0)),
            thread: handle.thread().clone(),
        }));
        let _ = tx.send(timer);
        timer
    })
}

static TOKIO_TIMER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Use tokio's millisecond timer instead (the behaviour before the timer thread; the
/// `--tokio-timer` flag of the program, to compare the two in one session).
pub fn use_tokio_timer(on: bool) {
    TOKIO_TIMER.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Completes at `deadline` (at once when it has passed).
pub(crate) async fn sleep_until(deadline: Instant) {
    if deadline <= Instant::now() {
        return;
    }
    if TOKIO_TIMER.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep_until(deadline.into()).await;
        return;
    }
    let t = timer();
    let (tx, rx) = oneshot::channel();
    let earliest = {
        let mut guard = t.heap.lock();
        guard.1 += 1;
        let seq = guard.1;
        let earliest = guard.0.peek().is_none_or(|w| deadline < w.0.deadline);
        guard.0.push(Reverse(Waiter {
            deadline,
            seq,
            wake: tx,
        }));
        earliest
    };
    if earliest {
        t.thread.unpark();
    }
    let _ = rx.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_at_the_deadline_never_before() {
        for ms in [3u64, 1, 7, 2] {
            let start = Instant::now();
            let deadline = start + Duration::from_millis(ms);
            sleep_until(deadline).await;
            let now = Instant::now();
            assert!(now >= deadline, "{ms} ms: early");
            assert!(
                now < deadline + Duration::from_millis(50),
                "{ms} ms: far too late"
            );
        }
        // Many at once, in any order.
        let start = Instant::now();
        let tasks: Vec<_> = (0..20u64)
            .map(|i| {
                let d = start + Duration::from_millis(20 - i);
                tokio::spawn(async move {
                    sleep_until(d).await;
                    Instant::now() >= d
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap());
        }
    }
}

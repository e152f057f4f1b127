//! The write gate: a request that changes TAE leaves only while the run still holds its leases,
//! judged when its bytes are written to the socket, not when the run handed it to the client.
//!
//! Why at the write: a run checks its lease (`Run::still_holds`) and then hands the request to
//! the HTTP client; the bytes leave later, when the connection's task is polled. A run frozen in between (a suspended virtual machine, a stopped process, a thread
//! starved for longer than the lease's time to live) would otherwise wake up and send a publish
//! for a contract that another run took over in the meantime. With the gate, the request's body
//! looks at the run's lease deadline in the same poll of the connection that writes its head
//! and body (HTTP/1.1: the head is buffered, the body's first frame is asked for, then both are
//! flushed together), and refuses once the deadline passed: hyper then drops the connection
//! with nothing flushed, so not one byte of the request reaches TAE (unit tests below, with a
//! raw socket).
//!
//! The deadline is the plugin's monotonic clock at the moment before the lease was granted or
//! last renewed, plus the lease's time to live, minus a margin ([`write_margin`]) for the
//! request's flight to TAE and for clocks that run at slightly different rates. The host set
//! the lease's expiry from its own clock *after* that moment, so a write before the deadline is
//! a write before any other run could take the contract over. The monotonic clock keeps running
//! while a process is stopped, so a frozen run's gate is closed when it wakes.
//!
//! A body without bytes (TAE's cancel) has no frame to ask for: its gate is judged when hyper
//! asks whether the body is empty, right before the head is written. While the gate is open
//! the answer is "empty" and the request is the same bytes as without a gate; once closed, the
//! body claims to have a frame, hyper asks for it, and the refusal drops the connection before
//! the head is flushed.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The origin of every deadline (nanoseconds since it).
static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

/// No deadline: the run holds its contracts in this process only (or holds none yet).
const OPEN: u64 = u64::MAX;

/// The part of a lease's time to live a write keeps clear of its expiry: a sixth of it, at
/// most 5 s (a 90 s lease keeps 5 s, not 15; a 10 s lease keeps 1.7 s).
pub fn write_margin(ttl: Duration) -> Duration {
    (ttl / 6).min(Duration::from_secs(5))
}

/// A run's write gate, shared by its claim (which moves the deadline) and its TAE client
/// (whose requests that change TAE look at it when they are written).
///
/// The epoch: a request is judged by the gate as it was when the run handed the request over.
/// When the leases lapsed and came back (a renewal after the deadline: nobody had taken them
/// yet), or when some were lost, the epoch moves, and a request handed over before that is
/// refused even though the gate is open again — it may be for a contract that is no longer
/// this run's.
#[derive(Clone, Debug)]
pub struct WriteGate {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    deadline: AtomicU64,
    epoch: AtomicU64,
}

impl Default for WriteGate {
    fn default() -> Self {
        WriteGate::open()
    }
}

impl WriteGate {
    /// A gate without deadline (a run that holds no host lease).
    pub fn open() -> WriteGate {
        LazyLock::force(&BASE);
        WriteGate {
            inner: Arc::new(Inner {
                deadline: AtomicU64::new(OPEN),
                epoch: AtomicU64::new(0),
            }),
        }
    }

    fn nanos(at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(*BASE).as_nanos()).unwrap_or(OPEN - 1)
    }

    /// Writes may leave until `at` (a grant or a renewal sets it anew). When the gate was
    /// closed (the leases had lapsed), the requests handed over before stay refused.
    pub fn hold_until(&self, at: Instant) {
        if !self.is_open() {
            self.revoke();
        }
        self.inner
            .deadline
            .store(Self::nanos(at), Ordering::Release);
    }

    /// Writes may leave until `at` at the latest (a later lease does not extend an earlier
    /// one's deadline).
    pub fn hold_at_most_until(&self, at: Instant) {
        let at = Self::nanos(at);
        self.inner.deadline.fetch_min(at, Ordering::AcqRel);
    }

    /// The requests handed over so far are refused (some lease was lost: they may be for it).
    pub fn revoke(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// No write leaves any more (the run released or lost its leases).
    pub fn close(&self) {
        self.revoke();
        self.inner.deadline.store(0, Ordering::Release);
    }

    /// Whether a write may leave now.
    pub fn is_open(&self) -> bool {
        let deadline = self.inner.deadline.load(Ordering::Acquire);
        deadline == OPEN || Self::nanos(Instant::now()) < deadline
    }

    /// The epoch a request handed over now belongs to.
    pub(crate) fn ticket(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    /// Whether a request handed over at `ticket` may be written now.
    pub(crate) fn admits(&self, ticket: u64) -> bool {
        self.is_open() && self.ticket() == ticket
    }
}

/// The refusal a gated body answers once its run's leases lapsed.
#[derive(Debug)]
pub struct LeaseLapsed;

impl std::fmt::Display for LeaseLapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the run's leases lapsed before the request was written; nothing was sent")
    }
}

impl std::error::Error for LeaseLapsed {}

/// Whether `e` (or an error under it) is a [`LeaseLapsed`] refusal.
pub fn is_lease_lapsed(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<LeaseLapsed>() {
            return true;
        }
        cur = err.source();
    }
    false
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body that is written only while its gate is open (see the module's docs).
pub struct GatedBody<B> {
    inner: B,
    gate: WriteGate,
    /// The gate's epoch when the request was handed over.
    ticket: u64,
    /// The inner body had no bytes at all.
    empty: bool,
    /// The gate was found closed: the body claims a frame and refuses it.
    refused: AtomicBool,
}

impl<B: http_body::Body> GatedBody<B> {
    pub fn new(inner: B, gate: WriteGate) -> GatedBody<B> {
        GatedBody {
            empty: inner.is_end_stream(),
            inner,
            ticket: gate.ticket(),
            gate,
            refused: AtomicBool::new(false),
        }
    }

    /// The gate, judged now; a refusal sticks.
    fn refuses(&self) -> bool {
        if self.refused.load(Ordering::Acquire) {
            return true;
        }
        if self.gate.admits(self.ticket) {
            return false;
        }
        self.refused.store(true, Ordering::Release);
        true
    }
}

impl<B> http_body::Body for GatedBody<B>
where
    B: http_body::Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.refuses() {
            return Poll::Ready(Some(Err(Box::new(LeaseLapsed))));
        }
        Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map(|frame| frame.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        if self.empty {
            // Asked right before the head is written: the one moment to judge an empty body.
            !self.refuses()
        } else {
            self.inner.is_end_stream()
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.refused.load(Ordering::Acquire) {
            // A frame is claimed (so that hyper asks for it and gets the refusal).
            http_body::SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// What a raw server received for one request sent through `client` (read until the
    /// client closes, or until a whole request arrived and 300 ms passed without more).
    fn capture(
        send: impl FnOnce(String) -> Result<reqwest::Response, reqwest::Error> + Send + 'static,
    ) -> (Vec<u8>, Result<u16, reqwest::Error>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/x");
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match sock.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(_) => {
                        // A complete request and a quiet line: answer it.
                        use std::io::Write;
                        let _ = sock.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                        break;
                    }
                }
            }
            // The port differs from one capture to the next.
            let port = format!(":{port}");
            String::from_utf8_lossy(&got)
                .replace(&port, ":PORT")
                .into_bytes()
        });
        let answer = send(url).map(|r| r.status().as_u16());
        (server.join().unwrap(), answer)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn post(url: String, body: Option<reqwest::Body>) -> Result<reqwest::Response, reqwest::Error> {
        runtime().block_on(async move {
            // The plugin's own client.
            let client = crate::tae::client::build_http(Duration::from_secs(10), None).unwrap();
            let mut rb = client.post(url);
            if let Some(body) = body {
                rb = rb.body(body);
            }
            rb.send().await
        })
    }

    fn gated(bytes: &'static [u8], gate: &WriteGate) -> reqwest::Body {
        reqwest::Body::wrap(GatedBody::new(
            reqwest::Body::from(bytes::Bytes::from_static(bytes)),
            gate.clone(),
        ))
    }

    fn closed() -> WriteGate {
        let gate = WriteGate::open();
        gate.hold_until(Instant::now());
        gate
    }

    #[test]
    fn an_open_gate_sends_the_same_bytes_as_no_gate() {
        for body in [&b""[..], &b"{\"idDocumento\":1}"[..]] {
            let plain = capture(move |url| post(url, Some(reqwest::Body::from(body))));
            let gate = WriteGate::open();
            gate.hold_until(Instant::now() + Duration::from_secs(60));
            let through = capture(move |url| post(url, Some(gated(body, &gate))));
            assert_eq!(plain.1.unwrap(), 200);
            assert_eq!(through.1.unwrap(), 200);
            assert_eq!(
                String::from_utf8_lossy(&through.0),
                String::from_utf8_lossy(&plain.0)
            );
            assert!(plain.0.ends_with(body), "the body arrived");
        }
        // An empty body through the gate is a request without any body, as TAE's cancel is
        // sent without a gate.
        let bare = capture(|url| post(url, None));
        let gate = WriteGate::open();
        let through = capture(move |url| post(url, Some(gated(b"", &gate))));
        assert_eq!(through.0, bare.0);
    }

    #[test]
    fn a_closed_gate_sends_not_one_byte_and_says_why() {
        for body in [&b""[..], &b"{\"idDocumento\":1}"[..]] {
            let gate = closed();
            let (got, answer) = capture(move |url| post(url, Some(gated(body, &gate))));
            assert!(got.is_empty(), "sent {:?}", String::from_utf8_lossy(&got));
            let err = answer.unwrap_err();
            assert!(is_lease_lapsed(&err), "{err:?}");
        }
    }

    #[test]
    fn the_deadline_moves_with_renewals_and_never_past_an_earlier_lease() {
        let gate = WriteGate::open();
        assert!(gate.is_open());
        let now = Instant::now();
        gate.hold_until(now + Duration::from_secs(60));
        assert!(gate.is_open());
        gate.hold_at_most_until(now + Duration::from_secs(120));
        assert!(gate.is_open());
        gate.hold_at_most_until(now);
        assert!(!gate.is_open(), "an earlier lease's deadline wins");
        gate.hold_until(now + Duration::from_secs(60));
        assert!(gate.is_open(), "a renewal opens it again");
        gate.close();
        assert!(!gate.is_open());
        let ticket = gate.ticket();
        gate.hold_until(now + Duration::from_secs(60));
        assert!(gate.is_open());
        assert!(
            !gate.admits(ticket),
            "handed over while closed: refused after the gate opens again"
        );
        let ticket = gate.ticket();
        assert!(gate.admits(ticket));
        gate.hold_until(now + Duration::from_secs(90));
        assert!(gate.admits(ticket), "a renewal in time changes nothing");
        gate.revoke();
        assert!(
            !gate.admits(ticket),
            "a lost lease refuses what was handed over"
        );
        assert_eq!(
            write_margin(Duration::from_secs(90)),
            Duration::from_secs(5)
        );
        assert_eq!(
            write_margin(Duration::from_secs(12)),
            Duration::from_secs(2)
        );
    }
}

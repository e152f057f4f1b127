//! Starting and stopping the server: its own thread and tokio runtime, plain HTTP or TLS with a
//! freshly generated CA, and the connection-level service that can drop a connection.

use crate::faults::FaultConfig;
use crate::routes::{self, AppState, DropConnection, RouteOptions};
use crate::state::SimState;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, Response, Uri};
use axum::Router;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;

/// How to start the stand-in.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Seed of the fault RNG (and of the tokens).
    pub seed: u64,
    /// Faults from the start (changeable at run time).
    pub faults: FaultConfig,
    /// Serve HTTPS with a self-signed CA written to `cert_dir`.
    pub tls: bool,
    /// Default `127.0.0.1:0` (a free port).
    pub addr: Option<SocketAddr>,
    /// Where `ca.pem`, `cert.pem` and `key.pem` go with `tls`; default a new directory under
    /// the system temp dir.
    pub cert_dir: Option<PathBuf>,
    /// Largest accepted PDF (default 20 MB).
    pub max_upload_mb: usize,
    /// D5 (`documentos-empresa`) served (default true).
    pub many_ids: bool,
    /// One stderr line per TAE request (default false).
    pub log_requests: bool,
    /// TAE's clock ahead of (positive) or behind (negative) the host's, in seconds (default 0;
    /// changeable at run time with `POST /_sim/clock`).
    pub clock_offset_secs: i64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 0,
            faults: FaultConfig::default(),
            tls: false,
            addr: None,
            cert_dir: None,
            max_upload_mb: 20,
            many_ids: true,
            log_requests: false,
            clock_offset_secs: 0,
        }
    }
}

/// A running stand-in. Stops on [`SimServer::shutdown`] or on drop.
pub struct SimServer {
    base_url: String,
    addr: SocketAddr,
    ca_cert_path: Option<PathBuf>,
    state: SimState,
    handle: axum_server::Handle<SocketAddr>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SimServer {
    /// Starts on its own thread with its own tokio runtime (usable from sync code, from
    /// `#[test]`, and from inside another tokio runtime); returns once listening.
    pub fn start(options: SimOptions) -> io::Result<SimServer> {
        let addr = options
            .addr
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = std::net::TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let state = SimState::new(options.seed, options.faults.clone(), shutdown_rx);
        state.set_many_ids(options.many_ids);
        state.set_clock_offset(options.clock_offset_secs);
        let tls = if options.tls {
            Some(make_tls(options.cert_dir.clone(), addr)?)
        } else {
            None
        };
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else if addr.is_ipv6() {
            format!("[{}]", addr.ip())
        } else {
            addr.ip().to_string()
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{host}:{}", addr.port());
        let ca_cert_path = tls.as_ref().map(|(_, path)| path.clone());

        let app = routes::router(AppState {
            sim: state.clone(),
            options: RouteOptions {
                max_upload_bytes: options.max_upload_mb.max(1) * 1024 * 1024,
                log_requests: options.log_requests,
            },
        })
        .merge(crate::portal::router(state.clone()))
        .layer(DefaultBodyLimit::max(
            options.max_upload_mb.max(1) * 1024 * 1024 + 1024 * 1024,
        ));
        let service = SimService {
            router: app,
            connection: 0,
        };
        let handle = axum_server::Handle::<SocketAddr>::new();
        let server_handle = handle.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let state_for_connections = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("tae-sim-{}", addr.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("tae-sim-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let make = MakeSimService(service, state_for_connections);
                    let result = match tls {
                        Some((config, _)) => {
                            let config = axum_server::tls_rustls::RustlsConfig::from_config(config);
                            match axum_server::tls_rustls::from_tcp_rustls(listener, config) {
                                Ok(server) => {
                                    let _ = ready_tx.send(Ok(()));
                                    server.handle(server_handle).serve(make).await
                                }
                                Err(e) => Err(e),
                            }
                        }
                        None => match axum_server::from_tcp(listener) {
                            Ok(server) => {
                                let _ = ready_tx.send(Ok(()));
                                server.handle(server_handle).serve(make).await
                            }
                            Err(e) => Err(e),
                        },
                    };
                    if let Err(e) = result {
                        let _ = ready_tx.send(Err(e));
                    }
                });
                runtime.shutdown_timeout(std::time::Duration::from_secs(2));
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(io::Error::other(
                    "tae-sim server thread ended before listening",
                ));
            }
        }
        Ok(SimServer {
            base_url,
            addr,
            ca_cert_path,
            state,
            handle,
            shutdown_tx,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` (`https` with TLS), no trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM of the CA that signed the server certificate, when TLS is on.
    pub fn ca_cert_path(&self) -> Option<PathBuf> {
        self.ca_cert_path.clone()
    }

    /// A cheap clone handle on the state, for direct inspection and control.
    pub fn state(&self) -> SimState {
        self.state.clone()
    }

    /// Stops the server: hung requests end, connections close, the thread is joined.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA and a server certificate for `localhost`, `127.0.0.1`, `::1` and the bound address.
fn make_tls(
    cert_dir: Option<PathBuf>,
    addr: SocketAddr,
) -> io::Result<(Arc<rustls::ServerConfig>, PathBuf)> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa,
        KeyPair, KeyUsagePurpose,
    };
    let err = |e: rcgen::Error| io::Error::other(format!("certificate generation: {e}"));
    let dir = cert_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tae-sim-{}-{}", std::process::id(), addr.port()))
    });
    std::fs::create_dir_all(&dir)?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "tae-sim test CA");
    ca_params.distinguished_name = dn;
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;

    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ip = addr.ip().to_string();
    if !addr.ip().is_unspecified() && !names.contains(&ip) {
        names.push(ip);
    }
    let mut leaf_params = CertificateParams::new(names).map_err(err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "tae-sim");
    leaf_params.distinguished_name = dn;
    let leaf_key = KeyPair::generate().map_err(err)?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(err)?;

    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem())?;
    std::fs::write(dir.join("cert.pem"), format!("{}{}", leaf.pem(), ca.pem()))?;
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem())?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .map_err(io::Error::other)?;
    // HTTP/1.1 only, so that a dropped request closes the connection as it would with plain HTTP.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), ca_path))
}

/// The canonical spelling of a TAE path matched case-insensitively against the route templates
/// (ASP.NET matches routes case-insensitively); `None` when already canonical or unknown.
fn canonical_uri(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    if path.starts_with("/_sim") {
        return None;
    }
    let segments: Vec<&str> = path.split('/').collect();
    // A literal segment wins over a `{param}` (as in the router): `…/publicacoes/PESQUISAS` is
    // the search, not a read of document "PESQUISAS".
    let mut templates: Vec<&str> = crate::api::ROUTES.iter().map(|(_, t)| *t).collect();
    templates.sort_by_key(|t| t.matches('{').count());
    let canonical = templates.iter().find_map(|template| {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            return None;
        }
        let matches = parts
            .iter()
            .zip(&segments)
            .all(|(t, s)| t.starts_with('{') || t.eq_ignore_ascii_case(s));
        matches.then(|| {
            parts
                .iter()
                .zip(&segments)
                .map(|(t, s)| if t.starts_with('{') { *s } else { *t })
                .collect::<Vec<_>>()
                .join("/")
        })
    })?;
    if canonical == path {
        return None;
    }
    let path_and_query = match uri.query() {
        Some(q) => format!("{canonical}?{q}"),
        None => canonical,
    };
    path_and_query.parse().ok()
}

/// The per-connection service: routes the request, and turns a response marked
/// [`DropConnection`] into a service error, on which hyper closes the connection unanswered.
#[derive(Clone)]
struct SimService {
    router: Router,
    /// The connection's number (from 1, in accept order), put in each request's extensions.
    connection: u64,
}

/// A request's connection number, in its extensions (read by the timeline).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionId(pub u64);

impl<B> tower_service::Service<Request<B>> for SimService
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<axum::body::Body>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Some(uri) = canonical_uri(request.uri()) {
            *request.uri_mut() = uri;
        }
        request
            .extensions_mut()
            .insert(ConnectionId(self.connection));
        let mut router = self.router.clone();
        Box::pin(async move {
            let response = match tower_service::Service::call(&mut router, request).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            if response.extensions().get::<DropConnection>().is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "tae-sim: injected dropped connection",
                ));
            }
            Ok(response)
        })
    }
}

/// Makes one [`SimService`] per connection, numbering the connections.
#[derive(Clone)]
struct MakeSimService(SimService, SimState);

impl<T> tower_service::Service<T> for MakeSimService {
    type Response = SimService;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<SimService, std::convert::Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _target: T) -> Self::Future {
        let mut service = self.0.clone();
        service.connection = self.1.connection_accepted();
        std::future::ready(Ok(service))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_matched_case_insensitively() {
        let uri: Uri = "/Documents/V2/Publicacoes/42?x=1".parse().unwrap();
        assert_eq!(
            canonical_uri(&uri).unwrap().to_string(),
            "/documents/v2/publicacoes/42?x=1"
        );
        let uri: Uri = "/signintegration/v2/publicacoes/DOCUMENTOS-EMPRESA"
            .parse()
            .unwrap();
        assert_eq!(
            canonical_uri(&uri).unwrap().path(),
            "/signintegration/v2/Publicacoes/documentos-empresa"
        );
        assert!(canonical_uri(&"/documents/v1/envelopes/upload".parse().unwrap()).is_none());
        let uri: Uri = "/Documents/v1/Publicacoes/PESQUISAS?PaginaAtual=1"
            .parse()
            .unwrap();
        assert_eq!(
            canonical_uri(&uri).unwrap().to_string(),
            "/documents/v1/publicacoes/pesquisas?PaginaAtual=1"
        );
        let uri: Uri = "/documents/v1/publicacoes/Pesquisas/DESTINATARIO"
            .parse()
            .unwrap();
        assert_eq!(
            canonical_uri(&uri).unwrap().path(),
            "/documents/v1/publicacoes/pesquisas/destinatario"
        );
    }
}

//! The admin endpoint's HTTP server: its accept loop and the limits that
//! keep admin clients from holding the process's file descriptors.
//!
//! `axum::serve` has no connection cap and no way to set hyper's header
//! read timeout, so one client opening thousands of connections and
//! sending a few header bytes on each held them (and their fds) for as
//! long as it liked, and under a low `ulimit -n` starved the data port of
//! fds. Here the router is served by hyper's HTTP/1 connection directly:
//! - at most [`AdminLimits::max_conns`] connections are served at once (a
//!   semaphore taken at accept), and never more than a quarter of the
//!   process's fd limit ([`fd_share`]); a connection over the cap is
//!   closed at once, so it costs an fd only for the instant of its accept;
//! - hyper's `header_read_timeout` closes a connection whose request head
//!   has not fully arrived in [`AdminLimits::header_timeout`]; it also runs
//!   while a keep-alive connection waits for its next request, so an idle
//!   connection is closed after that long too;
//! - tower's timeout layer answers 408 to a request whose handler (which
//!   reads the body) has not finished in [`AdminLimits::request_timeout`];
//!   hyper then closes the connection, its body unread.
//!
//! - with `--admin-tls-cert`/`--admin-tls-key` (`tls.rs`) every accepted
//!   connection is wrapped in TLS first, in its own task so a slow
//!   handshake never holds the accept loop; the handshake has
//!   [`AdminLimits::header_timeout`] too, and one that fails or runs out
//!   only closes its connection (and frees its slot under the cap).
//!
//! On stop the listener closes, every connection is asked to finish its
//! request in flight and close, and after `grace` the rest are dropped.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, Semaphore};
use tower::timeout::TimeoutLayer;
use tower::ServiceBuilder;

use super::body::ApiError;
use super::tls::AdminTls;
use crate::config::{
    DEFAULT_ADMIN_HEADER_TIMEOUT, DEFAULT_ADMIN_MAX_CONNS, DEFAULT_ADMIN_REQUEST_TIMEOUT,
};

/// How the admin endpoint bounds its clients (`--admin-max-conns`,
/// `--admin-header-timeout`, `--admin-request-timeout`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdminLimits {
    /// Connections served at once; more are closed when accepted.
    pub max_conns: usize,
    /// Time a connection has to send a request's head (request line and
    /// headers), and the longest a keep-alive connection may sit idle.
    pub header_timeout: Duration,
    /// Time a request has from its head to its answer, body included.
    pub request_timeout: Duration,
}

impl Default for AdminLimits {
    fn default() -> AdminLimits {
        AdminLimits {
            max_conns: DEFAULT_ADMIN_MAX_CONNS,
            header_timeout: DEFAULT_ADMIN_HEADER_TIMEOUT,
            request_timeout: DEFAULT_ADMIN_REQUEST_TIMEOUT,
        }
    }
}

/// A failed accept (EMFILE, ENFILE, ENOBUFS) is retried after this: the
/// condition persists for a while and retrying at once would spin the
/// admin thread.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one "over the connection cap" warning per this long.
const REJECT_LOG_EVERY: Duration = Duration::from_secs(10);

/// The 408 of a request that ran past `request_timeout` (tower's timeout
/// is the only error the layers below can raise).
async fn timed_out(err: tower::BoxError) -> axum::response::Response {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the request did not complete in time",
        )
        .into_response()
    } else {
        tracing::error!("admin endpoint: {err}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
        .into_response()
    }
}

/// `app` with the whole-request timeout around it.
fn with_timeout(app: Router, limit: Duration) -> Router {
    app.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(timed_out))
            .layer(TimeoutLayer::new(limit)),
    )
}

/// Serves `app` on `listener` under `limits` (over TLS when `tls` is
/// given) until `stop` turns true (or its sender is dropped), then gives
/// connections `grace` to finish.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: AdminLimits,
    tls: Option<Arc<AdminTls>>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("admin endpoint: {e}");
            return;
        }
    };
    let app = with_timeout(app, limits.request_timeout);
    let cap = fd_share(limits.max_conns);
    let permits = Arc::new(Semaphore::new(cap));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut rejected = Rejections::default();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            // An error means the handle is gone: stop too.
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("admin endpoint: accept: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            // Over the cap: the fd goes back now rather than waiting in a
            // queue that a slow client could keep full.
            drop(stream);
            rejected.note(cap);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let (http, watcher, tls) = (http.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => serve_connection(&http, watcher, stream, service).await,
                Some(tls) => {
                    let handshake = tls.acceptor.accept(stream);
                    match tokio::time::timeout(limits.header_timeout, handshake).await {
                        Ok(Ok(stream)) => serve_connection(&http, watcher, stream, service).await,
                        // A plain-HTTP client, a scanner, a client that does
                        // not trust the certificate: only this connection ends.
                        Ok(Err(e)) => tracing::debug!("admin TLS handshake: {e}"),
                        Err(_) => tracing::debug!("admin TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    // Graceful shutdown waits for every connection to close; an idle
    // keep-alive client must not be able to hold the thread forever.
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {}
    }
}

/// Serves one connection (plain or TLS) until it closes; shutdown asks it
/// to finish through `watcher`.
async fn serve_connection<I>(
    http: &http1::Builder,
    watcher: Watcher,
    io: I,
    service: TowerToHyperService<Router>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = watcher.watch(http.serve_connection(TokioIo::new(io), service));
    // Errors are the client's doing (a timeout, a bad request, a reset);
    // hyper has answered what could be answered.
    if let Err(e) = conn.await {
        tracing::debug!("admin connection: {e}");
    }
}

/// The admin connection cap in effect: `max_conns`, but at most a quarter
/// of the soft `RLIMIT_NOFILE` (and at least 1), so that admin clients alone
/// can never take the fds the data port accepts with, whatever the cap and
/// `ulimit -n` the server was started with.
fn fd_share(max_conns: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the call's duration.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    let share = if known && lim.rlim_cur != libc::RLIM_INFINITY {
        usize::try_from(lim.rlim_cur / 4).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    let cap = max_conns.min(share).max(1);
    if cap < max_conns {
        tracing::warn!(
            "admin endpoint: --admin-max-conns {max_conns} lowered to {cap}, a quarter of \
             the fd limit ({}), to leave fds for the data port",
            lim.rlim_cur
        );
    }
    cap
}

/// Counts connections closed over the cap, and logs them now and then.
#[derive(Default)]
struct Rejections {
    since_log: u64,
    logged: Option<Instant>,
}

impl Rejections {
    fn note(&mut self, cap: usize) {
        self.since_log += 1;
        if self.logged.is_none_or(|t| t.elapsed() >= REJECT_LOG_EVERY) {
            tracing::warn!(
                closed = self.since_log,
                "admin endpoint: over --admin-max-conns {cap}; closing new connections"
            );
            self.since_log = 0;
            self.logged = Some(Instant::now());
        }
    }
}

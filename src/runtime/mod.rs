//! The thread-per-core runtime: the only module that touches glommio.
//!
//! One glommio executor per core, pinned. Each owns a shard of the keyspace
//! (`exec::Shard`), its own SO_REUSEPORT listener on the shared port, and the
//! connections that listener accepts. Requests for keys another core owns are
//! forwarded in per-destination batches over a request mesh; replies come back
//! on a separate reply mesh, so two busy shards can never block each other.

mod accept;
mod cluster;
mod conn;
mod core;
mod dispatch;
mod fdlimit;
mod forward;
mod listener;
mod mesh;
mod pool;
mod preauth;
mod readiness;
mod restart;
mod shard;
mod socket;
mod step;
mod sys;
mod tenants;
mod tls;

use crate::config::Config;
use crate::exec::ShardSettings;
use crate::stats;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use self::core::Server;

/// Depth of each core-to-core queue (batches, not keys).
const MESH_DEPTH: usize = 1024;

/// Why the server could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// glommio registers memory with io_uring; the default 8 MiB RLIMIT_MEMLOCK
/// is too small for several executors. Raise it as far as we may, and
/// return the soft limit now in force (None: unlimited).
fn raise_memlock() -> Option<u64> {
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) == 0 {
            let want = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &want) != 0 {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim);
            }
        }
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) != 0
            || lim.rlim_cur == libc::RLIM_INFINITY
        {
            return None;
        }
        Some(lim.rlim_cur)
    }
}

/// The least RLIMIT_MEMLOCK glommio starts an executor with (its reactor
/// refuses to start below it, `sys/uring.rs`).
const MIN_MEMLOCK: u64 = 512 * 1024;

/// Refuses to start, saying why and what to do, when the locked-memory
/// limit is below what an executor needs (rather than a core that stops
/// silently during startup). `limit`: the soft limit in bytes, None for
/// unlimited.
fn check_memlock(limit: Option<u64>) -> Result<(), StartError> {
    match limit {
        Some(l) if l < MIN_MEMLOCK => Err(StartError(format!(
            "the locked-memory limit (RLIMIT_MEMLOCK) is {} KiB and cannot be raised; io_uring \
             needs at least {} KiB (unlimited is best): `ulimit -l unlimited` as root, \
             `docker run --ulimit memlock=-1`, or `LimitMEMLOCK=infinity` in a systemd unit",
            l / 1024,
            MIN_MEMLOCK / 1024
        ))),
        _ => Ok(()),
    }
}

/// glommio panics when io_uring is missing; probe first and say so plainly.
fn check_io_uring() -> Result<(), StartError> {
    let mut params = [0u8; 120];
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        return Err(StartError(format!(
            "io_uring is unavailable ({err}); shoal needs Linux >= 5.8 with io_uring enabled \
             (check the kernel.io_uring_disabled sysctl and any seccomp profile)"
        )));
    }
    unsafe { libc::close(fd as i32) };
    Ok(())
}

/// Runs the server until SIGINT/SIGTERM/SIGUSR1 (or `shutdown`). Prints
/// `shoal listening on ADDR` to stderr once every core is accepting.
pub fn run(mut config: Config) -> Result<(), StartError> {
    check_io_uring()?;
    check_memlock(raise_memlock())?;
    // Before anything opens a file: -c may be lowered to fit the limit.
    config.conn_limit = fdlimit::raise(config.conn_limit, config.threads).map_err(StartError)?;
    crate::clock::init();
    let n = config.threads;
    let addr = listener::resolve(&config.listen, config.port)
        .map_err(|e| StartError(format!("cannot resolve {}: {e}", config.listen)))?;
    let (fds, bound) = listener::bind_all(addr, n, 1024).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            StartError(format!(
                "failed to listen on {addr}: address already in use (is another server running?)"
            ))
        } else {
            StartError(format!("failed to listen on {addr}: {e}"))
        }
    })?;
    // TLS: the certificate must load before anything listens; a TLS port
    // beside the plain one binds like it.
    let tls = match &config.tls {
        Some(t) => {
            let ctx =
                Arc::new(crate::tls::TlsContext::new(t.settings.clone()).map_err(StartError)?);
            crate::tls::install(ctx.clone());
            Some(ctx)
        }
        None => None,
    };
    let tls_listen = match config.tls.as_ref().and_then(|t| t.port) {
        Some(port) => {
            let addr = listener::resolve(&config.listen, port)
                .map_err(|e| StartError(format!("cannot resolve {}: {e}", config.listen)))?;
            let (fds, bound) = listener::bind_all(addr, n, 1024)
                .map_err(|e| StartError(format!("failed to listen for TLS on {addr}: {e}")))?;
            Some((fds, bound))
        }
        None => None,
    };
    crate::conns::set_listen_addr(bound);
    crate::topology::set_view(crate::topology::ClusterView::single(
        crate::topology::NodeAddr {
            host: bound.ip().to_string(),
            ip: bound.ip().to_string(),
            port: bound.port(),
        },
    ));
    stats::init(n);
    crate::latency::init(n);
    // Multi-tenant mode: the control store must open (and lock its data dir)
    // before anything listens.
    let control = if config.multi_tenant {
        let mut control = cluster::open(&config, bound)?;
        control
            .store
            .set_capacity(crate::tenancy::capacity::Capacity {
                node_bytes: config.memory_limit as u64,
                overcommit: config.plan_overcommit,
            });
        if control.store.operator_token_created() {
            TOKEN_CREATED.store(true, Ordering::Relaxed);
        }
        Some(control)
    } else {
        None
    };
    let tenants = control.as_ref().map(|c| {
        let node = config.memory_limit as u64;
        tenants::Tenants::new(c.store.registry(), config.auth_timeout, n, node)
    });
    let tls_main = config.tls.as_ref().is_some_and(|t| t.on_main_port);
    let (tls_fds, tls_bound) = match tls_listen {
        Some((fds, bound)) => (fds, Some(bound)),
        None => (Vec::new(), None),
    };
    // Warm restart: the image (if any) is checked now, loaded by the cores.
    let seed = std::collections::hash_map::RandomState::new().hash_one_seed();
    let restart = restart::Restart::open(&config, seed)?;
    let hash_seed = restart.as_ref().map_or(seed, |r| r.hash_seed());
    let server = Arc::new(Server {
        tls: tls.clone(),
        tls_main,
        tls_fds,
        tenants,
        restart,
        settings: Arc::new(ShardSettings {
            item_size_max: config.item_size_max,
            disable_cas: config.disable_cas,
            disable_flush_all: config.disable_flush_all,
            enable_shutdown: config.enable_shutdown,
            append_too_large_is_error: config.multi_tenant,
        }),
        hash_seed,
        conns: AtomicUsize::new(0),
        shutdown: AtomicBool::new(false),
        joined: AtomicUsize::new(0),
        ready: AtomicUsize::new(0),
        fd_cap: Default::default(),
        config,
    });
    crate::exec::VERBOSITY.store(server.config.verbosity, Ordering::Relaxed);
    if let (Some(tls), true) = (&tls, server.tenants.is_some()) {
        // Client certificates bound to a credential; Weak: the server owns
        // the TLS context that asks.
        let weak = Arc::downgrade(&server);
        tls.pin_with(Arc::new(move |fingerprint: &[u8; 32]| {
            weak.upgrade()
                .and_then(|s| {
                    s.tenants
                        .as_ref()
                        .map(|t| t.snapshot().knows_cert(fingerprint))
                })
                .unwrap_or(false)
        }));
    }
    spawn_signal_thread(server.clone())?;

    let placement = match glommio::CpuSet::online() {
        Ok(cpus) if cpus.len() >= n => PoolPlacement::MaxSpread(n, Some(cpus)),
        _ => PoolPlacement::Unbound(n),
    };
    let requests = MeshBuilder::full(n, MESH_DEPTH);
    let replies = MeshBuilder::full(n, MESH_DEPTH);
    let fds: Arc<Vec<RawFd>> = Arc::new(fds);
    let srv = server.clone();
    let handles = LocalExecutorPoolBuilder::new(placement)
        .name("shoal")
        .io_memory(1 << 20)
        .preempt_timer(Duration::from_millis(5))
        .on_all_shards(move || {
            let (server, fds) = (srv.clone(), fds.clone());
            async move {
                let r = core::core_main(server, fds, requests, replies).await;
                if let Err(e) = &r {
                    eprintln!("shoal: core failed: {e}");
                }
                r
            }
        })
        .map_err(|e| StartError(format!("cannot start executors: {e}")))?;

    // Announce once all cores accept (tests and scripts wait for this line).
    // The deadline is for joining the meshes; loading an image may take
    // longer.
    let deadline = std::time::Instant::now() + STARTUP_DEADLINE;
    while server.ready.load(Ordering::Acquire) < n {
        if server.joined.load(Ordering::Acquire) < n && std::time::Instant::now() > deadline {
            return Err(restart_stalled_startup());
        }
        // A core that stopped before accepting leaves the others waiting for
        // it on the meshes forever: give up rather than hang (exiting the
        // process ends those threads too).
        if handles.handles().iter().any(|h| h.is_finished()) {
            return Err(StartError(
                "a core stopped during startup (see the messages above)".into(),
            ));
        }
        if server.shutdown.load(Ordering::Acquire) {
            return Err(StartError("interrupted during startup".into()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // The operator endpoint starts once the data plane is up, so a restarted
    // startup (above) never announces an address that then goes away.
    let plane = control.as_ref().and_then(|c| c.plane.clone());
    let _admin = match control {
        Some(control) => Some(start_admin(control, &server, bound)?),
        None => None,
    };
    if server.ready.load(Ordering::Acquire) == n {
        let tls_note = if tls_main { ", TLS" } else { "" };
        eprintln!("shoal listening on {bound} ({n} cores{tls_note})");
        if let Some(tls_bound) = tls_bound {
            eprintln!("shoal TLS listening on {tls_bound}");
        }
        tracing::info!(%bound, cores = n, "listening");
        // Every core accepts and the admin endpoint (if any) is up.
        crate::notify::notify_or_warn("READY=1");
    }
    let mut failed = None;
    let joined = handles.join_all();
    // A clean stop leaves the discovery list now, not after the timeout.
    if let Some(plane) = plane {
        plane.stop();
    }
    for r in joined {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(e),
            Err(e) => failed = Some(format!("executor failed: {e}")),
        }
    }
    match failed {
        Some(e) => Err(StartError(e)),
        None => Ok(()),
    }
}

/// How long a stop may take before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How long the cores may take to join their meshes and start accepting.
/// Normally milliseconds.
const STARTUP_DEADLINE: Duration = Duration::from_secs(5);
/// Startups tried before giving up.
const STARTUP_ATTEMPTS: u32 = 3;
/// Carries the attempt number (and whether this start created the operator
/// token) across a restart.
const STARTUP_ATTEMPT_ENV: &str = "SHOAL_STARTUP_ATTEMPT";
const TOKEN_CREATED_ENV: &str = "SHOAL_OPERATOR_TOKEN_CREATED";
/// This process (or the attempt before it) created the operator token.
static TOKEN_CREATED: AtomicBool = AtomicBool::new(false);

/// glommio 0.9 can lose the wake-up that tells a parked executor its peer
/// joined a channel mesh; under load about 1 start in 400 then waits forever
/// with every core asleep (a ticker timer does not reliably rescue it). Nothing
/// has been announced or served yet, so the cure is to start over: re-execute
/// this binary with the same arguments (every socket and the data-dir lock are
/// close-on-exec). Returns only if that is impossible or attempts ran out.
fn restart_stalled_startup() -> StartError {
    use std::os::unix::process::CommandExt;
    let attempt: u32 = std::env::var(STARTUP_ATTEMPT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if attempt >= STARTUP_ATTEMPTS {
        return StartError(format!(
            "the cores did not start within {STARTUP_DEADLINE:?} ({attempt} attempts)"
        ));
    }
    tracing::warn!(attempt, "startup stalled; restarting");
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.args(std::env::args_os().skip(1))
        .env(STARTUP_ATTEMPT_ENV, (attempt + 1).to_string());
    if TOKEN_CREATED.load(Ordering::Relaxed) {
        cmd.env(TOKEN_CREATED_ENV, "1");
    }
    let err = cmd.exec();
    StartError(format!("startup stalled and restarting failed: {err}"))
}

/// Starts the operator endpoint on its own thread; every committed change
/// reaches the cores through `Tenants::publish`. The handle stops it on drop.
fn start_admin(
    control: cluster::Control,
    server: &Arc<Server>,
    bound: std::net::SocketAddr,
) -> Result<crate::admin::AdminHandle, StartError> {
    let store = control.store;
    let cfg = &server.config;
    let bind = listener::resolve_one(&cfg.admin_addr).map_err(|e| {
        StartError(format!(
            "cannot resolve admin address {}: {e}",
            cfg.admin_addr
        ))
    })?;
    // A restarted startup (see `restart_stalled_startup`) finds the token the
    // first attempt created; it has still never been printed.
    let created =
        TOKEN_CREATED.load(Ordering::Relaxed) || std::env::var_os(TOKEN_CREATED_ENV).is_some();
    if created {
        // Printed once, on the start that created it; it stays in the file.
        eprintln!(
            "shoal operator token (saved in {}): {}",
            store
                .dir()
                .join(crate::tenancy::OPERATOR_TOKEN_FILE)
                .display(),
            store.operator_token()
        );
    }
    crate::admin::probe::set_probes(Box::new(tenants::ApiPlane(server.clone())));
    crate::admin::set_max_connections(server.config.conn_limit as u64);
    let srv = server.clone();
    let on_change: crate::admin::OnChange = Box::new(move |registry| {
        if let Some(t) = &srv.tenants {
            t.publish(registry);
        }
    });
    let admin = crate::admin::AdminConfig {
        bind,
        servers: control
            .plane
            .as_ref()
            .map_or_else(|| bound.to_string(), |p| p.advertised().to_string()),
        stats_interval: cfg.stats_interval,
        smtp_relay: cfg.smtp_relay.clone(),
        smtp_from: cfg.smtp_from.clone(),
        cluster_name: cfg.cluster_name.clone(),
        limits: crate::admin::AdminLimits {
            max_conns: cfg.admin_max_conns,
            header_timeout: cfg.admin_header_timeout,
            request_timeout: cfg.admin_request_timeout,
        },
        alert_allow_private: cfg.alert_allow_private,
        cluster: control.plane.clone(),
        history: control.history,
    };
    let handle = crate::admin::spawn_with(store, admin, on_change)
        .map_err(|e| StartError(format!("failed to listen on admin address {bind}: {e}")))?;
    if let Some(plane) = &control.plane {
        // The other nodes reach this one's admin endpoint (cluster-wide
        // stats, flushes) at the address it actually bound.
        plane.set_admin_addr(handle.local_addr().to_string());
        cluster::install_hooks(plane, server);
    }
    eprintln!("shoal admin listening on {}", handle.local_addr());
    Ok(handle)
}

trait SeedExt {
    fn hash_one_seed(&self) -> u64;
}
impl SeedExt for std::collections::hash_map::RandomState {
    /// One random u64 per process: every core must agree on key ownership.
    fn hash_one_seed(&self) -> u64 {
        use std::hash::BuildHasher;
        self.hash_one(0x5eed_u64)
    }
}

/// Stops the server as a signal does (a drained node's end): the cores
/// notice the flag on their tick; the process exits after the grace anyway.
fn request_stop(server: &Arc<Server>) {
    server.shutdown.store(true, Ordering::Release);
    let server = server.clone();
    let _ = std::thread::Builder::new()
        .name("shoal-stop".into())
        .spawn(move || exit_after_grace(&server));
}

/// The end of a stop that the cores did not finish: exits after
/// `SHUTDOWN_GRACE`, or once the warm-restart image is written if a core is
/// still writing it then (at most `restart::SAVE_LIMIT`).
fn exit_after_grace(server: &Server) {
    std::thread::sleep(SHUTDOWN_GRACE);
    let started = std::time::Instant::now();
    while server.restart.as_ref().is_some_and(|r| r.saving())
        && started.elapsed() < restart::SAVE_LIMIT
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    tracing::warn!("cores did not stop within {SHUTDOWN_GRACE:?}; exiting");
    std::process::exit(0);
}

fn spawn_signal_thread(server: Arc<Server>) -> Result<(), StartError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    // SIGUSR1 is memcached's graceful stop; all three save a warm-restart
    // image when one is configured. SIGHUP reloads the TLS certificate.
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGUSR1, SIGHUP])
        .map_err(|e| StartError(format!("cannot install signal handlers: {e}")))?;
    std::thread::Builder::new()
        .name("shoal-signals".into())
        .spawn(move || {
            // SIGHUP reloads the TLS certificate (memcached's), and waits
            // for the next signal.
            let mut stop = signals.forever().filter(|&sig| {
                if sig != SIGHUP {
                    return true;
                }
                let answer = tls::refresh(&server);
                tracing::info!("SIGHUP: {}", String::from_utf8_lossy(&answer).trim_end());
                false
            });
            if let Some(sig) = stop.next() {
                tracing::info!(sig, "shutting down");
                crate::notify::notify_or_warn("STOPPING=1");
                server.shutdown.store(true, Ordering::Release);
                // Cores notice the flag on their 50 ms tick and finish within
                // about a second. glommio 0.9 can leave a parked executor
                // asleep past its timer (the startup stall above); a stop
                // must not hang on that, so exit regardless after a grace
                // period (the control store is always consistent on disk),
                // unless a core is still writing its warm-restart image.
                exit_after_grace(&server);
            }
        })
        .map_err(|e| StartError(format!("cannot spawn signal thread: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memlock_below_what_io_uring_needs_is_refused_with_the_fix() {
        assert!(check_memlock(None).is_ok());
        assert!(check_memlock(Some(MIN_MEMLOCK)).is_ok());
        assert!(check_memlock(Some(8 << 20)).is_ok());
        let e = check_memlock(Some(64 * 1024)).unwrap_err().0;
        assert!(e.contains("RLIMIT_MEMLOCK) is 64 KiB"), "{e}");
        assert!(
            e.contains("--ulimit memlock=-1") && e.contains("LimitMEMLOCK=infinity"),
            "{e}"
        );
    }
}

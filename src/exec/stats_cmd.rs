//! The `stats` family (protocol.md §1.4): memcached's names and order, values
//! summed over every core's counters, plus shoal's per-core fields.

use crate::config::Config;
use crate::protocol::ascii::encode;
use crate::protocol::{reply, MEMCACHED_VERSION, SHOAL_VERSION};
use crate::stats::{self, Totals};
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// `stats detail on|off`: per-prefix counting, off by default (memcached).
pub static DETAIL_ENABLED: AtomicBool = AtomicBool::new(false);

/// Per-prefix counters for `stats detail dump`; only touched while detail is on.
static PREFIXES: Mutex<Vec<(Vec<u8>, [u64; 4])>> = Mutex::new(Vec::new());

/// Which operation a prefix record counts.
#[derive(Clone, Copy)]
pub enum DetailOp {
    Get { hit: bool },
    Set,
    Delete,
}

/// Records one key operation for `stats detail dump` (prefix = text before
/// the first ':', as memcached's default delimiter).
pub fn record_detail(key: &[u8], op: DetailOp) {
    if !DETAIL_ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let Some(end) = key.iter().position(|b| *b == b':') else {
        return;
    };
    let prefix = &key[..end];
    let mut table = PREFIXES.lock().unwrap_or_else(|e| e.into_inner());
    let idx = match table.iter().position(|(p, _)| p.as_slice() == prefix) {
        Some(i) => i,
        None => {
            table.push((prefix.to_vec(), [0; 4]));
            table.len() - 1
        }
    };
    let c = &mut table[idx].1;
    match op {
        DetailOp::Get { hit } => {
            c[0] += 1;
            c[1] += hit as u64;
        }
        DetailOp::Set => c[2] += 1,
        DetailOp::Delete => c[3] += 1,
    }
}

fn rusage() -> (String, String) {
    // SAFETY: rusage is plain integers, for which all-zero bytes are valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable rusage for the call's duration.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    (
        format!("{}.{:06}", u.ru_utime.tv_sec, u.ru_utime.tv_usec),
        format!("{}.{:06}", u.ru_stime.tv_sec, u.ru_stime.tv_usec),
    )
}

/// Receives one stat: its name and value. The ASCII protocol writes it as a
/// `STAT` line, the binary one as a Stat response; both see the same pairs.
pub type Emit<'a> = dyn FnMut(&str, &[u8]) + 'a;

fn emit_u64(emit: &mut Emit<'_>, name: &str, n: u64) {
    let mut b = itoa::Buffer::new();
    emit(name, b.format(n).as_bytes());
}

/// Whose numbers a stats command reports: the whole server (open mode) or
/// the connection's own cache (multi-tenant mode), never another tenant's.
pub struct Scope<'a> {
    pub config: &'a Config,
    pub stats: &'a stats::Registry,
    /// Multi-tenant mode: the connection's cache id and its memory plan.
    pub cache: Option<(u32, u64)>,
    /// The cache's connection limit (0: none, or open mode).
    pub cache_conns: u32,
    /// TLS settings and counters when a listener speaks TLS. Server-wide:
    /// shown in open mode only (a tenant sees its own cache).
    pub tls: Option<&'a crate::tls::TlsContext>,
}

impl Scope<'_> {
    fn server_tls(&self) -> Option<&crate::tls::TlsContext> {
        self.tls.filter(|_| self.cache.is_none())
    }
}

impl Scope<'_> {
    /// `limit_maxbytes` / `maxbytes`: the budget of a hosted cache (its plan,
    /// scaled down while the plans overcommit the node), else the stores' limits (`-m`, or what cache_memlimit set).
    fn maxbytes(&self) -> u64 {
        self.cache
            .map_or_else(|| self.stats.totals().limit_maxbytes, |(_, plan)| plan)
    }

    /// `max_connections` / `maxconns`: a hosted cache's own connection
    /// limit, else the server's (`-c`), which also bounds every cache.
    fn max_connections(&self) -> u64 {
        match self.cache_conns {
            0 => self.config.conn_limit as u64,
            n => u64::from(n).min(self.config.conn_limit as u64),
        }
    }
}

/// Answers `stats [args]`.
pub fn stats(scope: &Scope<'_>, args: &[Bytes], out: &mut BytesMut) {
    let mut ascii = |name: &str, value: &[u8]| encode::stat(out, name, value);
    let known = match args.first().map(|a| a.as_ref()) {
        None => {
            general(scope, &mut ascii);
            true
        }
        Some(b"reset") if args.len() == 1 => {
            reset(scope);
            out.put_slice(reply::RESET);
            return;
        }
        Some(b"settings") if args.len() == 1 => {
            settings(scope, &mut ascii);
            true
        }
        Some(b"items") if args.len() == 1 => {
            items(scope, &mut ascii);
            true
        }
        Some(b"slabs") if args.len() == 1 => {
            slabs(scope, &mut ascii);
            true
        }
        Some(b"sizes") if args.len() == 1 => {
            sizes(&mut ascii);
            true
        }
        Some(b"conns") if args.len() == 1 => {
            let cache = scope.cache.map(|(id, _)| id);
            crate::conns::report(crate::clock::now(), cache, &mut ascii);
            true
        }
        // The prefix table is process-wide: a tenant must not see others' keys.
        Some(b"detail") if scope.cache.is_none() => return detail(args, out),
        _ => false,
    };
    out.put_slice(if known { reply::END } else { reply::ERROR });
}

/// `stats reset`: zero the scope's counters (and, in open mode, the
/// per-prefix table).
pub fn reset(scope: &Scope<'_>) {
    scope.stats.reset();
    if scope.cache.is_none() {
        PREFIXES.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// `stats detail on|off`.
pub fn set_detail(on: bool) {
    DETAIL_ENABLED.store(on, Ordering::Relaxed);
}

/// `stats detail dump`: one `PREFIX <p> get <n> hit <n> set <n> del <n>`
/// line per prefix, then `END` (memcached `stats_prefix_dump`; the binary
/// protocol sends this text as the value of one stat named `detailed`).
pub fn detail_dump() -> Vec<u8> {
    let table = PREFIXES.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    for (p, c) in table.iter() {
        out.extend_from_slice(b"PREFIX ");
        out.extend_from_slice(p);
        out.extend_from_slice(
            format!(" get {} hit {} set {} del {}\r\n", c[0], c[1], c[2], c[3]).as_bytes(),
        );
    }
    out.extend_from_slice(reply::END);
    out
}

fn detail(args: &[Bytes], out: &mut BytesMut) {
    match args.get(1).map(|a| a.as_ref()) {
        Some(b"on") if args.len() == 2 => {
            set_detail(true);
            out.put_slice(reply::OK);
        }
        Some(b"off") if args.len() == 2 => {
            set_detail(false);
            out.put_slice(reply::OK);
        }
        Some(b"dump") if args.len() == 2 => out.put_slice(&detail_dump()),
        _ => out.put_slice(reply::CLIENT_ERROR_STATS_DETAIL_USAGE),
    }
}

/// General-purpose statistics (`stats` with no argument).
///
/// A hosted cache's connection gets the same fields, so clients that parse
/// them (libmemcached reads `pid` and `rusage_*` as numbers) keep working,
/// but `pid` is 0 and `rusage_user`/`rusage_system` are 0.000000: the
/// server's process id and CPU time are the operator's, and CPU time would
/// let one tenant watch the load of every other.
pub fn general(scope: &Scope<'_>, out: &mut Emit<'_>) {
    let config = scope.config;
    let t: Totals = scope.stats.totals();
    let tenant = scope.cache.is_some();
    let (ru_user, ru_sys) = if tenant {
        ("0.000000".to_string(), "0.000000".to_string())
    } else {
        rusage()
    };
    let s = |out: &mut Emit<'_>, name: &str, v: u64| emit_u64(out, name, v);
    let pid = if tenant { 0 } else { std::process::id() };
    s(out, "pid", u64::from(pid));
    s(out, "uptime", crate::clock::uptime() as u64);
    s(out, "time", crate::clock::unix_now() as u64);
    out("version", MEMCACHED_VERSION.as_bytes());
    out("libevent", b"io_uring");
    s(
        out,
        "pointer_size",
        (std::mem::size_of::<usize>() * 8) as u64,
    );
    out("rusage_user", ru_user.as_bytes());
    out("rusage_system", ru_sys.as_bytes());
    s(out, "max_connections", scope.max_connections());
    s(out, "curr_connections", t.curr_connections);
    s(out, "total_connections", t.total_connections);
    s(out, "rejected_connections", t.rejected_connections);
    s(out, "connection_structures", t.curr_connections);
    s(out, "cmd_get", t.cmd_get);
    s(out, "cmd_set", t.cmd_set);
    s(out, "cmd_flush", t.cmd_flush);
    s(out, "cmd_touch", t.cmd_touch);
    s(out, "cmd_meta", t.cmd_meta);
    s(out, "get_hits", t.get_hits);
    s(out, "get_misses", t.get_misses);
    s(out, "get_expired", t.get_expired);
    s(out, "get_flushed", t.get_flushed);
    s(out, "delete_misses", t.delete_misses);
    s(out, "delete_hits", t.delete_hits);
    s(out, "incr_misses", t.incr_misses);
    s(out, "incr_hits", t.incr_hits);
    s(out, "decr_misses", t.decr_misses);
    s(out, "decr_hits", t.decr_hits);
    s(out, "cas_misses", t.cas_misses);
    s(out, "cas_hits", t.cas_hits);
    s(out, "cas_badval", t.cas_badval);
    s(out, "touch_hits", t.touch_hits);
    s(out, "touch_misses", t.touch_misses);
    s(out, "store_too_large", t.store_too_large);
    s(out, "store_no_memory", t.store_no_memory);
    s(out, "auth_cmds", t.auth_cmds);
    s(out, "auth_errors", t.auth_errors);
    s(out, "bytes_read", t.bytes_read);
    s(out, "bytes_written", t.bytes_written);
    s(out, "limit_maxbytes", scope.maxbytes());
    s(out, "accepting_conns", 1);
    // shoal never disables its listener: over -c it closes the new
    // connection instead (rejected_connections).
    s(out, "listen_disabled_num", 0);
    s(out, "threads", config.threads as u64);
    s(out, "conn_yields", t.conn_yields);
    // memcached's, where it puts them (its session cache is always on).
    if let Some(tls) = scope.server_tls() {
        s(out, "ssl_new_sessions", tls.new_sessions());
        s(out, "ssl_handshake_errors", tls.handshake_errors());
        s(
            out,
            "time_since_server_cert_refresh",
            tls.time_since_refresh(),
        );
    }
    s(out, "curr_items", t.curr_items);
    s(out, "total_items", t.total_items);
    s(out, "expired_unfetched", t.expired_unfetched);
    s(out, "evicted_unfetched", t.evicted_unfetched);
    s(out, "evictions", t.evictions);
    s(out, "reclaimed", t.reclaimed);
    // No background LRU maintainer: every eviction is done by the core
    // storing the new item.
    s(out, "direct_reclaims", t.evictions);
    s(out, "bytes", t.bytes);
    // shoal: its own version, memory the stores really hold (items +
    // index), and forwarding.
    out("shoal_version", SHOAL_VERSION.as_bytes());
    s(out, "mem_used", t.mem_used);
    s(out, "forwarded_batches", t.forwarded_batches);
    s(out, "forwarded_ops", t.forwarded_ops);
    for (i, c) in scope.stats.cores().iter().enumerate() {
        s(
            out,
            &format!("core:{i}:curr_connections"),
            c.curr_connections.get(),
        );
        s(out, &format!("core:{i}:curr_items"), c.curr_items.get());
        s(out, &format!("core:{i}:bytes"), c.bytes.get());
    }
}

/// `stats settings`.
pub fn settings(scope: &Scope<'_>, out: &mut Emit<'_>) {
    let config = scope.config;
    let yes = |b: bool| if b { b"yes" as &[u8] } else { b"no" };
    emit_u64(out, "maxbytes", scope.maxbytes());
    emit_u64(out, "maxconns", scope.max_connections());
    emit_u64(out, "tcpport", config.port as u64);
    emit_u64(out, "udpport", 0);
    out("inter", config.listen.as_bytes());
    emit_u64(out, "verbosity", super::verbosity() as u64);
    emit_u64(out, "oldest", 0);
    out("evictions", b"on");
    out("domain_socket", b"NULL");
    out("umask", b"700");
    out("shutdown_command", yes(config.enable_shutdown));
    out("warm_restart", yes(config.restart_dir.is_some()));
    emit_u64(out, "num_threads", config.threads as u64);
    out("stat_key_prefix", b":");
    out(
        "detail_enabled",
        yes(DETAIL_ENABLED.load(Ordering::Relaxed)),
    );
    emit_u64(out, "reqs_per_event", 256);
    out("cas_enabled", yes(!config.disable_cas));
    emit_u64(out, "tcp_backlog", 1024);
    out("binding_protocol", b"auto-negotiate");
    out("auth_enabled_sasl", yes(config.multi_tenant));
    out("auth_enabled_ascii", yes(config.multi_tenant));
    emit_u64(out, "item_size_max", config.item_size_max as u64);
    out("maxconns_fast", b"yes");
    out("flush_enabled", yes(!config.disable_flush_all));
    out("dump_enabled", b"no");
    out("hash_algorithm", b"foldhash");
    out("track_sizes", b"no");
    tls_settings(scope, out);
}

/// memcached's TLS lines of `stats settings` (those that mean something
/// here: no cipher list or key format to choose, no kernel TLS).
fn tls_settings(scope: &Scope<'_>, out: &mut Emit<'_>) {
    let Some(tls) = scope.server_tls() else {
        // Open mode without TLS says so, as memcached does; a tenant is
        // told nothing about the server's files.
        if scope.cache.is_none() {
            out("ssl_enabled", b"no");
        }
        return;
    };
    let s = tls.settings();
    out("ssl_enabled", b"yes");
    out("ssl_chain_cert", s.cert.to_string_lossy().as_bytes());
    out("ssl_key", s.key.to_string_lossy().as_bytes());
    emit_u64(out, "ssl_verify_mode", s.verify.number() as u64);
    let ca = s.ca.as_ref().map(|p| p.to_string_lossy().into_owned());
    out("ssl_ca_cert", ca.as_deref().unwrap_or("NULL").as_bytes());
    out("ssl_session_cache", b"yes");
    out("ssl_kernel_tls", b"no");
    out("ssl_min_version", s.min_version.name().as_bytes());
}

/// shoal has no slab classes; report one pseudo-class holding every item so
/// tools that read `stats items` see real totals.
pub fn items(scope: &Scope<'_>, out: &mut Emit<'_>) {
    let t = scope.stats.totals();
    if t.curr_items > 0 {
        emit_u64(out, "items:1:number", t.curr_items);
        emit_u64(out, "items:1:evicted", t.evictions);
        emit_u64(out, "items:1:evicted_unfetched", t.evicted_unfetched);
        emit_u64(out, "items:1:expired_unfetched", t.expired_unfetched);
        emit_u64(out, "items:1:reclaimed", t.reclaimed);
        emit_u64(out, "items:1:mem_requested", t.bytes);
    }
}

/// `stats slabs`.
pub fn slabs(scope: &Scope<'_>, out: &mut Emit<'_>) {
    let t = scope.stats.totals();
    emit_u64(out, "active_slabs", (t.curr_items > 0) as u64);
    emit_u64(out, "total_malloced", t.mem_used);
}

/// `stats sizes`: size tracking is off, as in memcached without `-o track_sizes`.
pub fn sizes(out: &mut Emit<'_>) {
    out("sizes_status", b"disabled");
}

//! Requests the admin thread makes of the cores about one cache: a flush,
//! its introspection state (recent log, popular items, watched-prefix counters),
//! one key's numbers, and how many keys and bytes each watched prefix holds.
//!
//! The cores own that state and never share it on the request path; each
//! answers from its maintenance tick (every 50 ms) through a oneshot, so an
//! API call waits one tick at most and a request never waits for the API.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::oneshot;

use super::body::ApiError;
use crate::introspect::{CoreReport, Estimate};

/// What to ask every core about `cache`.
#[derive(Clone, Debug, Default)]
pub struct Probe {
    pub cache: u32,
    /// Drop the cache's items first (the API's `flush`): once every core
    /// has answered, the cache is empty.
    pub flush: bool,
    /// Copy the introspection state (`CoreReport`).
    pub report: bool,
    /// Look this key up: size, presence and its sketch counts.
    pub key: Option<Vec<u8>>,
    /// The live keys and bytes under each of these prefixes: the last
    /// finished walk of the cache's store over exactly these prefixes.
    pub scan: Vec<Vec<u8>>,
    /// Start a new walk over `scan` unless one is running. A walk advances
    /// a bounded number of items per maintenance tick, so a large cache
    /// never holds its core for long; its result is read by a later probe.
    pub walk: bool,
}

/// One key, from the core that owns it.
#[derive(Clone, Debug, Default)]
pub struct KeyAnswer {
    /// The value's size when the key is in the cache.
    pub size: Option<u64>,
    pub hits: Estimate,
    pub misses: Estimate,
    pub mutations: Estimate,
    /// The sketches sample 1 request in this many (0: introspection off).
    pub sample_every: u32,
}

/// One core's answer (empty parts when the cache has no shard there).
#[derive(Clone, Debug, Default)]
pub struct CoreAnswer {
    pub report: Option<CoreReport>,
    pub key: Option<KeyAnswer>,
    /// (keys, bytes) per `Probe::scan` prefix, in order; None while no walk
    /// over those prefixes has finished on this core.
    pub scan: Option<Vec<(u64, u64)>>,
}

/// The runtime's side: hands a probe to every core.
pub trait Probes: Send + Sync {
    /// One receiver per core; a core that is shutting down drops its sender.
    fn probe(&self, probe: Probe) -> Vec<oneshot::Receiver<CoreAnswer>>;
}

static PROBES: OnceLock<Box<dyn Probes>> = OnceLock::new();

/// Installs the runtime's probe queue (once, at startup).
pub fn set_probes(p: Box<dyn Probes>) {
    let _ = PROBES.set(p);
}

/// A core answers within one tick; this only bounds a stuck one.
const PROBE_WAIT: Duration = Duration::from_secs(3);

/// Asks every core and waits for all answers.
pub(crate) async fn ask(probe: Probe) -> Result<Vec<CoreAnswer>, ApiError> {
    let Some(probes) = PROBES.get() else {
        return Err(ApiError::invalid("introspection is not available"));
    };
    let receivers = probes.probe(probe);
    let all = futures_join(receivers);
    match tokio::time::timeout(PROBE_WAIT, all).await {
        Ok(Some(answers)) => Ok(answers),
        _ => Err(ApiError::unavailable("the cache's cores did not answer")),
    }
}

async fn futures_join(receivers: Vec<oneshot::Receiver<CoreAnswer>>) -> Option<Vec<CoreAnswer>> {
    let mut answers = Vec::with_capacity(receivers.len());
    for rx in receivers {
        answers.push(rx.await.ok()?);
    }
    Some(answers)
}

//! Warm restart, memcached's `-e` done safely: at a clean stop every core
//! writes its stores' live items to `--restart-dir` and the last one commits
//! the set with a manifest; at the next start a matching, intact image is
//! loaded before any connection is accepted, and then retired, so a crash
//! later never brings it back. Encoding and decoding are in
//! `storage/image.rs`; this file is the files and the order of things.
//!
//! * **Stop**: each core, once its connections have drained, writes
//!   `shoal-restart.core-N.img.tmp`, fsyncs it and renames it into place.
//!   The last core to finish writes the manifest the same way
//!   (`shoal-restart.manifest`, with every file's length and CRC-32) and
//!   fsyncs the directory. A stop cut short (kill -9, a failed write) leaves
//!   no manifest, and without one nothing is read.
//! * **Start** (main thread, before the cores): the manifest must decode and
//!   match `-m`, `-I` and the mode; every file must have the length and
//!   CRC-32 it records. Anything else: a line on stderr, the files are
//!   removed and every cache starts empty.
//! * **Load** (each core, before it accepts): with the same core count the
//!   saved key-to-core hash seed is reused, so core N reads file N; with
//!   another count every core reads every file and keeps the keys it owns
//!   now. Items are stored through the ordinary write path (the memory limit
//!   or the cache's plan holds; when full, older items are evicted), expired
//!   ones dropped, expiry times converted from unix time to the new clock,
//!   CAS kept and every store's CAS counter moved past the highest saved
//!   CAS. In multi-tenant mode a block's items go to its cache only if that
//!   cache still exists with the same creation time.
//! * **Retire**: the last core to finish removes the manifest and the files
//!   (and fsyncs the directory) before any core accepts a connection.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::core::Core;
use super::StartError;
use crate::config::Config;
use crate::storage::{
    verify_image, FileInfo, ImageError, ImageItem, ImageReader, ImageWriter, Manifest, Store,
};

const MANIFEST: &str = "shoal-restart.manifest";
const LOCK: &str = "shoal-restart.lock";
const PREFIX: &str = "shoal-restart.";

fn core_file(core: usize) -> String {
    format!("{PREFIX}core-{core}.img")
}

/// How long a stop may keep writing its image before the process exits
/// anyway (the grace of a stop is extended while a core is writing).
pub const SAVE_LIMIT: Duration = Duration::from_secs(600);

/// The warm-restart state of this process.
pub struct Restart {
    dir: PathBuf,
    cores: usize,
    multi_tenant: bool,
    memory_limit: u64,
    item_size_max: u64,
    /// The image found at start and checked; None: start empty.
    found: Option<Manifest>,
    /// When the start began checking the image (for the load time).
    opened: Instant,
    /// Held (flock) while the process runs: one server per directory.
    _lock: File,
    stop_id: u64,
    hash_seed: AtomicU64,
    load: Load,
    save: Mutex<Save>,
    /// Cores that have begun writing, and that are done (manifest included).
    save_started: AtomicUsize,
    save_done: AtomicUsize,
}

#[derive(Default)]
struct Load {
    /// Cores that finished loading.
    cores_done: AtomicUsize,
    /// A core could not read the image: every core empties its stores.
    failed: AtomicBool,
    /// The last core retired the image: cores may accept.
    retired: AtomicBool,
    items: AtomicU64,
    expired: AtomicU64,
    /// Of caches that no longer exist (multi-tenant mode).
    orphaned: AtomicU64,
    /// Refused by the store (too large for -I now; cannot happen with matching settings).
    refused: AtomicU64,
    error: Mutex<Option<String>>,
}

#[derive(Default)]
struct Save {
    files: Vec<Option<(FileInfo, u64)>>,
    failed: bool,
    started: Option<Instant>,
}

/// Counts of one core's load.
#[derive(Default)]
struct Loaded {
    items: u64,
    expired: u64,
    orphaned: u64,
    refused: u64,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes every image file (and leftover temporary file) in `dir`, the
/// manifest first so that no manifest ever outlives a file it lists.
fn remove_images(dir: &Path) {
    if fs::remove_file(dir.join(MANIFEST)).is_ok() {
        let _ = sync_dir(dir);
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREFIX) && name != LOCK {
            let _ = fs::remove_file(e.path());
        }
    }
    let _ = sync_dir(dir);
}

fn lock(dir: &Path) -> Result<File, String> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK))
        .map_err(|e| format!("cannot open {}: {e}", dir.join(LOCK).display()))?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(format!(
            "restart dir {} is in use by another shoal",
            dir.display()
        ));
    }
    Ok(f)
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::getrandom(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        return t ^ u64::from(std::process::id()) << 32;
    }
    u64::from_le_bytes(b)
}

/// Writes `bytes` to `dir/name` through a temporary file: fsynced, renamed.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(name))
}

impl Restart {
    /// At start, before the cores: None when warm restart is off. Checks
    /// the image in the directory (reading every file once); an unusable
    /// one is reported and removed.
    pub fn open(config: &Config, hash_seed: u64) -> Result<Option<Restart>, StartError> {
        let Some(dir) = config.restart_dir.clone() else {
            return Ok(None);
        };
        let opened = Instant::now();
        fs::create_dir_all(&dir)
            .map_err(|e| StartError(format!("cannot create restart dir {}: {e}", dir.display())))?;
        let lock = lock(&dir).map_err(StartError)?;
        let mut r = Restart {
            cores: config.threads,
            multi_tenant: config.multi_tenant,
            memory_limit: config.memory_limit as u64,
            item_size_max: config.item_size_max as u64,
            found: None,
            opened,
            _lock: lock,
            stop_id: random_u64(),
            hash_seed: AtomicU64::new(hash_seed),
            load: Load::default(),
            save: Mutex::new(Save::default()),
            save_started: AtomicUsize::new(0),
            save_done: AtomicUsize::new(0),
            dir,
        };
        match r.check() {
            Ok(Some(m)) => {
                if m.files.len() == r.cores {
                    // Same layout: every key stays on its core.
                    r.hash_seed.store(m.hash_seed, Ordering::Relaxed);
                }
                r.found = Some(m);
            }
            Ok(None) => {
                eprintln!(
                    "shoal: warm restart: no image in {}; starting empty",
                    r.dir.display()
                );
                remove_images(&r.dir);
            }
            Err(why) => {
                eprintln!(
                    "shoal: warm restart: the image in {} is not usable ({why}); starting empty",
                    r.dir.display()
                );
                tracing::warn!(dir = %r.dir.display(), %why, "warm restart image not usable");
                remove_images(&r.dir);
            }
        }
        Ok(Some(r))
    }

    /// The manifest, if there is one that matches this server and whose
    /// files are all intact.
    fn check(&self) -> Result<Option<Manifest>, String> {
        let bytes = match fs::read(self.dir.join(MANIFEST)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {MANIFEST}: {e}")),
        };
        let m = Manifest::decode(&bytes).map_err(|e| format!("{MANIFEST}: {e}"))?;
        if m.multi_tenant != self.multi_tenant {
            let mode = |mt| if mt { "multi-tenant" } else { "open" };
            return Err(format!(
                "saved in {} mode, running in {} mode",
                mode(m.multi_tenant),
                mode(self.multi_tenant)
            ));
        }
        if m.memory_limit != self.memory_limit {
            return Err(format!(
                "saved with -m {} MB, running with -m {} MB",
                m.memory_limit >> 20,
                self.memory_limit >> 20
            ));
        }
        if m.item_size_max != self.item_size_max {
            return Err(format!(
                "saved with -I {}, running with -I {}",
                m.item_size_max, self.item_size_max
            ));
        }
        for (i, info) in m.files.iter().enumerate() {
            let name = core_file(i);
            let f = File::open(self.dir.join(&name)).map_err(|e| format!("{name}: {e}"))?;
            verify_image(f, info).map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(Some(m))
    }

    /// The key-to-core hash seed to use: the saved one when the image was
    /// written by as many cores as run now.
    pub fn hash_seed(&self) -> u64 {
        self.hash_seed.load(Ordering::Relaxed)
    }

    /// Every store's CAS counter starts past this (0: nothing restored).
    pub fn cas_floor(&self) -> u64 {
        self.found.as_ref().map_or(0, |m| m.max_cas)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    // ---- load ------------------------------------------------------------------------------

    /// Loads this core's share of the image, then waits until every core
    /// has and the image is retired. Returns once the core may accept.
    pub async fn load_core(&self, core: &Core) {
        let Some(m) = &self.found else {
            return;
        };
        match self.load_files(core, m) {
            Ok(n) => {
                let l = &self.load;
                l.items.fetch_add(n.items, Ordering::Relaxed);
                l.expired.fetch_add(n.expired, Ordering::Relaxed);
                l.orphaned.fetch_add(n.orphaned, Ordering::Relaxed);
                l.refused.fetch_add(n.refused, Ordering::Relaxed);
            }
            Err(e) => {
                self.load.failed.store(true, Ordering::Release);
                let mut slot = self.load.error.lock().unwrap_or_else(|e| e.into_inner());
                slot.get_or_insert(e);
            }
        }
        if self.load.cores_done.fetch_add(1, Ordering::AcqRel) + 1 == self.cores {
            self.retire(m);
        }
        while !self.load.retired.load(Ordering::Acquire) {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        if self.load.failed.load(Ordering::Acquire) {
            // Some core could not read its part: nobody keeps anything.
            let now = crate::clock::now();
            core.shard.borrow_mut().store.flush(now, now);
            core.tenant_shards.borrow_mut().clear();
        }
        core.shard.borrow().publish();
        for shard in core.tenant_shards.borrow().values() {
            shard.publish();
        }
    }

    fn load_files(&self, core: &Core, m: &Manifest) -> Result<Loaded, String> {
        let saved_cores = m.files.len();
        let same = saved_cores == core.n;
        let files: Vec<usize> = if same {
            vec![core.id]
        } else {
            (0..saved_cores).collect()
        };
        let now = crate::clock::now();
        let unix_now = crate::clock::unix_now();
        let registry = core.registry.borrow().clone();
        let mut n = Loaded::default();
        for i in files {
            let name = core_file(i);
            let err = |e: ImageError| format!("{name}: {e}");
            let f = File::open(self.dir.join(&name)).map_err(|e| format!("{name}: {e}"))?;
            let f = BufReader::with_capacity(1 << 20, f);
            let mut r =
                ImageReader::new(f, i as u32, saved_cores as u32, m.stop_id).map_err(err)?;
            while let Some(block) = r.next_block().map_err(err)? {
                let cache = block.cache;
                let known = if self.multi_tenant {
                    registry
                        .cache(cache)
                        .is_some_and(|c| c.created == block.created)
                } else {
                    cache == 0
                };
                let mut shard = known.then(|| core.shard(cache));
                for it in block.items() {
                    let it = it.map_err(err)?;
                    if !same && core.owner(cache, it.key) != core.id {
                        continue;
                    }
                    let Some(shard) = shard.as_mut() else {
                        n.orphaned += 1;
                        continue;
                    };
                    if it.expires != 0 && i64::from(it.expires) <= unix_now {
                        n.expired += 1;
                        continue;
                    }
                    let exptime = match it.expires {
                        0 => 0,
                        t => crate::clock::at_unix(i64::from(t)),
                    };
                    match shard.store.restore(&it, exptime, now) {
                        Ok(()) => n.items += 1,
                        Err(_) => n.refused += 1,
                    }
                }
            }
        }
        Ok(n)
    }

    /// The last core to load: removes the image so that it is read once,
    /// and says what was loaded.
    fn retire(&self, m: &Manifest) {
        remove_images(&self.dir);
        let l = &self.load;
        let ms = self.opened.elapsed().as_secs_f64() * 1000.0;
        if l.failed.load(Ordering::Acquire) {
            let e = l.error.lock().unwrap_or_else(|e| e.into_inner()).clone();
            eprintln!(
                "shoal: warm restart: reading the image in {} failed ({}); starting empty",
                self.dir.display(),
                e.unwrap_or_default()
            );
        } else {
            let age = crate::clock::unix_now() - m.saved_unix as i64;
            eprintln!(
                "shoal: warm restart: loaded {} items from {} in {ms:.0} ms \
                 (saved {age} s ago by {} cores; {} expired, {} of deleted caches, {} refused)",
                l.items.load(Ordering::Relaxed),
                self.dir.display(),
                m.files.len(),
                l.expired.load(Ordering::Relaxed),
                l.orphaned.load(Ordering::Relaxed),
                l.refused.load(Ordering::Relaxed),
            );
        }
        l.retired.store(true, Ordering::Release);
    }

    // ---- save ------------------------------------------------------------------------------

    /// True while some core is writing its image (or the manifest): the
    /// stop's grace waits for it.
    pub fn saving(&self) -> bool {
        self.save_started.load(Ordering::Acquire) > self.save_done.load(Ordering::Acquire)
    }

    /// At a clean stop, after the core's connections drained: writes its
    /// image; the last core writes the manifest.
    pub fn save_core(&self, core: &Core) {
        self.save_started.fetch_add(1, Ordering::AcqRel);
        {
            let mut s = self.save.lock().unwrap_or_else(|e| e.into_inner());
            s.started.get_or_insert_with(Instant::now);
            if s.files.is_empty() {
                s.files = vec![None; self.cores];
            }
        }
        let result = self.write_core(core);
        let mut s = self.save.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(r) => s.files[core.id] = Some(r),
            Err(e) => {
                eprintln!(
                    "shoal: warm restart: core {} could not write its image to {}: {e}",
                    core.id,
                    self.dir.display()
                );
                s.failed = true;
            }
        }
        if s.files.iter().all(Option::is_some) && !s.failed {
            self.commit(&s);
        }
        drop(s);
        self.save_done.fetch_add(1, Ordering::AcqRel);
    }

    fn write_core(&self, core: &Core) -> io::Result<(FileInfo, u64)> {
        let name = core_file(core.id);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let f = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let mut w = ImageWriter::new(f, core.id as u32, self.cores as u32, self.stop_id)?;
        let now = crate::clock::now();
        let mut max_cas = 0;
        if self.multi_tenant {
            let registry = core.registry.borrow().clone();
            let mut shards = core.tenant_shards.borrow_mut();
            let mut ids: Vec<u32> = shards.keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                let Some(cache) = registry.cache(id) else {
                    continue;
                };
                let store = &mut shards.get_mut(&id).expect("listed").store;
                w.begin_cache(id, cache.created)?;
                write_store(store, &mut w, now)?;
                max_cas = max_cas.max(store.last_cas());
            }
        } else {
            let store = &mut core.shard.borrow_mut().store;
            w.begin_cache(0, 0)?;
            write_store(store, &mut w, now)?;
            max_cas = max_cas.max(store.last_cas());
        }
        max_cas = max_cas.max(w.max_cas()).max(self.cas_floor());
        let (f, info) = w.finish()?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, self.dir.join(&name))?;
        Ok((info, max_cas))
    }

    /// Every core wrote its file: the manifest makes the set an image.
    fn commit(&self, s: &Save) {
        let files: Vec<FileInfo> = s.files.iter().flatten().map(|(f, _)| *f).collect();
        let m = Manifest {
            stop_id: self.stop_id,
            multi_tenant: self.multi_tenant,
            memory_limit: self.memory_limit,
            item_size_max: self.item_size_max,
            hash_seed: self.hash_seed(),
            max_cas: s.files.iter().flatten().map(|(_, c)| *c).max().unwrap_or(0),
            saved_unix: crate::clock::unix_now().max(0) as u64,
            files,
        };
        let written = sync_dir(&self.dir)
            .and_then(|()| write_atomic(&self.dir, MANIFEST, &m.encode()))
            .and_then(|()| sync_dir(&self.dir));
        let ms = s
            .started
            .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
        match written {
            Ok(()) => {
                let items: u64 = m.files.iter().map(|f| f.items).sum();
                let bytes: u64 = m.files.iter().map(|f| f.bytes).sum();
                eprintln!(
                    "shoal: warm restart: saved {items} items ({:.1} MiB) to {} in {ms:.0} ms",
                    bytes as f64 / (1 << 20) as f64,
                    self.dir.display()
                );
            }
            Err(e) => eprintln!(
                "shoal: warm restart: could not write {MANIFEST} in {}: {e}",
                self.dir.display()
            ),
        }
    }
}

/// One store's live items into the image.
fn write_store<W: Write>(store: &mut Store, w: &mut ImageWriter<W>, now: u32) -> io::Result<()> {
    store.try_for_each_live(now, |it| {
        let expires = match it.exptime {
            0 => 0,
            t => crate::clock::unix_of(t).clamp(1, i64::from(u32::MAX)) as u32,
        };
        w.push(&ImageItem {
            key: it.key,
            value: it.value,
            flags: it.flags,
            cas: it.cas,
            expires,
            bits: u8::from(it.fetched) | u8::from(it.stale) << 1 | u8::from(it.win) << 2,
        })
    })
}

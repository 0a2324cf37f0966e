//! Warm-restart images: a store's live items written at a clean stop and read back at the
//! next start (`runtime/restart.rs` drives it; this file is plain encoding and decoding over
//! `Read`/`Write`, no file system).
//!
//! One image file per core, then one manifest that commits the set:
//!
//! * **File**: a 32-byte header (magic `SHOALIMG`, format version, the core that wrote it, the
//!   core count, the stop id shared by the files of one stop, a CRC-32 of the header), then
//!   blocks of about 1 MiB, each a 24-byte header (cache id, the cache's creation time, item
//!   count, payload length, CRC-32 of header and payload) and its items, then a trailer block
//!   (cache id `u32::MAX`, the file's item and block counts) and nothing after it.
//! * **Item**: key length (u8), meta bits (fetched, stale, win: u8), value length (u32), client
//!   flags (u32), absolute expiry in unix seconds (u32, 0 = never), CAS (u64), key, value. The
//!   expiry is absolute because the server clock restarts at every start.
//! * **Manifest**: magic `SHOALMAN`, version, stop id, core count, mode, `-m`, `-I`, the
//!   key-to-core hash seed, the highest CAS handed out, the unix time of the stop, then per core
//!   file its length, CRC-32 and item count, then a CRC-32 of all of it. Written last: without
//!   a whole, matching manifest no file is read.
//!
//! Blocks are in segment FIFO order, oldest first, so a reload rebuilds the same eviction order.

use std::io::{self, Read, Write};

use super::item::{View, DEAD, META_BITS};
use super::store::{hash_key, is_expired, CasSpec, Store};
use super::{ItemRef, StoreError};

/// Format version of files and manifest; another version is not read.
pub const IMAGE_VERSION: u32 = 1;
const FILE_MAGIC: [u8; 8] = *b"SHOALIMG";
const MANIFEST_MAGIC: [u8; 8] = *b"SHOALMAN";
const FILE_HEADER_LEN: usize = 32;
const BLOCK_HEADER_LEN: usize = 24;
/// Item header bytes before the key.
const ITEM_HEADER_LEN: usize = 22;
/// A block is written once its payload reaches this size.
const BLOCK_TARGET: usize = 1 << 20;
/// Largest payload a reader accepts (one item of up to 1 GiB, or a full block).
const MAX_BLOCK: usize = (1 << 30) + (2 << 20);
/// The trailer's cache id.
const TRAILER: u32 = u32::MAX;

/// Why an image cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    /// Ends early.
    Truncated(&'static str),
    /// Not an image (or manifest) at all.
    BadMagic(&'static str),
    /// Written by another format version.
    Version(u32),
    /// A checksum does not match: the bytes changed.
    Checksum(&'static str),
    /// Parses, but says something impossible.
    Malformed(&'static str),
    /// Reading failed.
    Io(String),
}

impl std::fmt::Display for ImageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageError::Truncated(what) => write!(f, "truncated {what}"),
            ImageError::BadMagic(what) => write!(f, "not a shoal {what}"),
            ImageError::Version(v) => {
                write!(f, "format version {v}, this server reads {IMAGE_VERSION}")
            }
            ImageError::Checksum(what) => write!(f, "checksum mismatch in {what}"),
            ImageError::Malformed(what) => write!(f, "malformed {what}"),
            ImageError::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

impl std::error::Error for ImageError {}

impl From<io::Error> for ImageError {
    fn from(e: io::Error) -> ImageError {
        ImageError::Io(e.to_string())
    }
}

/// One item as it travels through an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageItem<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub flags: u32,
    pub cas: u64,
    /// Absolute expiry, unix seconds; 0 = never.
    pub expires: u32,
    /// Meta bits: 1 fetched, 2 stale, 4 win-token sent.
    pub bits: u8,
}

/// What the manifest records of one core's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileInfo {
    pub bytes: u64,
    pub crc: u32,
    pub items: u64,
}

/// The manifest: what was saved, under which settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub stop_id: u64,
    pub multi_tenant: bool,
    pub memory_limit: u64,
    pub item_size_max: u64,
    pub hash_seed: u64,
    /// The highest CAS any core had handed out (or restored).
    pub max_cas: u64,
    /// When the stop happened, unix seconds.
    pub saved_unix: u64,
    /// One per core, in core order; its length is the core count.
    pub files: Vec<FileInfo>,
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// Cores an image may have been written by.
const MAX_CORES: usize = 4096;

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80 + self.files.len() * 20);
        out.extend_from_slice(&MANIFEST_MAGIC);
        put_u32(&mut out, IMAGE_VERSION);
        put_u32(&mut out, self.files.len() as u32);
        put_u64(&mut out, self.stop_id);
        put_u32(&mut out, u32::from(self.multi_tenant));
        put_u32(&mut out, 0);
        put_u64(&mut out, self.memory_limit);
        put_u64(&mut out, self.item_size_max);
        put_u64(&mut out, self.hash_seed);
        put_u64(&mut out, self.max_cas);
        put_u64(&mut out, self.saved_unix);
        for f in &self.files {
            put_u64(&mut out, f.bytes);
            put_u32(&mut out, f.crc);
            put_u64(&mut out, f.items);
        }
        let c = crc(&[&out]);
        put_u32(&mut out, c);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Manifest, ImageError> {
        const FIXED: usize = 72;
        if b.len() < 12 {
            return Err(ImageError::Truncated("manifest"));
        }
        if b[..8] != MANIFEST_MAGIC {
            return Err(ImageError::BadMagic("manifest"));
        }
        let version = u32_at(b, 8);
        if version != IMAGE_VERSION {
            return Err(ImageError::Version(version));
        }
        if b.len() < FIXED + 4 {
            return Err(ImageError::Truncated("manifest"));
        }
        let cores = u32_at(b, 12) as usize;
        if cores == 0 || cores > MAX_CORES {
            return Err(ImageError::Malformed("manifest (core count)"));
        }
        let len = FIXED + cores * 20 + 4;
        if b.len() < len {
            return Err(ImageError::Truncated("manifest"));
        }
        if b.len() > len {
            return Err(ImageError::Malformed("manifest (trailing bytes)"));
        }
        if crc(&[&b[..len - 4]]) != u32_at(b, len - 4) {
            return Err(ImageError::Checksum("manifest"));
        }
        let files = (0..cores)
            .map(|i| {
                let at = FIXED + i * 20;
                FileInfo {
                    bytes: u64_at(b, at),
                    crc: u32_at(b, at + 8),
                    items: u64_at(b, at + 12),
                }
            })
            .collect();
        Ok(Manifest {
            stop_id: u64_at(b, 16),
            multi_tenant: u32_at(b, 24) != 0,
            memory_limit: u64_at(b, 32),
            item_size_max: u64_at(b, 40),
            hash_seed: u64_at(b, 48),
            max_cas: u64_at(b, 56),
            saved_unix: u64_at(b, 64),
            files,
        })
    }
}

/// Writes one core's image: header, blocks of items grouped by cache, trailer. Keeps a CRC-32
/// and length of everything written for the manifest.
pub struct ImageWriter<W: Write> {
    w: W,
    payload: Vec<u8>,
    cache: u32,
    created: u64,
    block_items: u32,
    blocks: u32,
    info: FileInfo,
    file_crc: crc32fast::Hasher,
    max_cas: u64,
}

impl<W: Write> ImageWriter<W> {
    pub fn new(w: W, core: u32, cores: u32, stop_id: u64) -> io::Result<ImageWriter<W>> {
        let mut iw = ImageWriter {
            w,
            payload: Vec::with_capacity(BLOCK_TARGET + 4096),
            cache: 0,
            created: 0,
            block_items: 0,
            blocks: 0,
            info: FileInfo::default(),
            file_crc: crc32fast::Hasher::new(),
            max_cas: 0,
        };
        let mut h = Vec::with_capacity(FILE_HEADER_LEN);
        h.extend_from_slice(&FILE_MAGIC);
        put_u32(&mut h, IMAGE_VERSION);
        put_u32(&mut h, core);
        put_u32(&mut h, cores);
        put_u64(&mut h, stop_id);
        let c = crc(&[&h]);
        put_u32(&mut h, c);
        iw.emit(&h)?;
        Ok(iw)
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.w.write_all(bytes)?;
        self.file_crc.update(bytes);
        self.info.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Items pushed from now on belong to `cache` (open mode: 0), created at `created`.
    pub fn begin_cache(&mut self, cache: u32, created: u64) -> io::Result<()> {
        if (cache, created) != (self.cache, self.created) {
            self.flush_block()?;
            self.cache = cache;
            self.created = created;
        }
        Ok(())
    }

    pub fn push(&mut self, it: &ImageItem<'_>) -> io::Result<()> {
        let p = &mut self.payload;
        p.push(it.key.len() as u8);
        p.push(it.bits & META_BITS);
        put_u32(p, it.value.len() as u32);
        put_u32(p, it.flags);
        put_u32(p, it.expires);
        put_u64(p, it.cas);
        p.extend_from_slice(it.key);
        p.extend_from_slice(it.value);
        self.block_items += 1;
        self.info.items += 1;
        self.max_cas = self.max_cas.max(it.cas);
        if self.payload.len() >= BLOCK_TARGET {
            self.flush_block()?;
        }
        Ok(())
    }

    fn block_header(cache: u32, created: u64, items: u32, payload: &[u8]) -> [u8; 24] {
        let mut h = [0u8; BLOCK_HEADER_LEN];
        h[0..4].copy_from_slice(&cache.to_le_bytes());
        h[4..12].copy_from_slice(&created.to_le_bytes());
        h[12..16].copy_from_slice(&items.to_le_bytes());
        h[16..20].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        let c = crc(&[&h[..20], payload]);
        h[20..24].copy_from_slice(&c.to_le_bytes());
        h
    }

    fn flush_block(&mut self) -> io::Result<()> {
        if self.block_items == 0 {
            return Ok(());
        }
        let payload = std::mem::take(&mut self.payload);
        let h = Self::block_header(self.cache, self.created, self.block_items, &payload);
        let r = self.emit(&h).and_then(|()| self.emit(&payload));
        self.payload = payload;
        self.payload.clear();
        self.block_items = 0;
        self.blocks += 1;
        r
    }

    /// The highest CAS among the items pushed so far.
    pub fn max_cas(&self) -> u64 {
        self.max_cas
    }

    /// Writes the last block and the trailer; returns the writer and what the manifest records.
    pub fn finish(mut self) -> io::Result<(W, FileInfo)> {
        self.flush_block()?;
        let h = Self::block_header(TRAILER, self.info.items, self.blocks, &[]);
        self.emit(&h)?;
        self.w.flush()?;
        let mut info = self.info;
        info.crc = self.file_crc.finalize();
        Ok((self.w, info))
    }
}

/// One block read back: the cache its items belong to and the items.
#[derive(Debug)]
pub struct Block<'a> {
    pub cache: u32,
    pub created: u64,
    items: u32,
    payload: &'a [u8],
}

impl<'a> Block<'a> {
    /// The block's items in the order written. A block whose CRC matched always parses; the
    /// checks are against a bug, not corruption.
    pub fn items(&self) -> BlockItems<'a> {
        BlockItems {
            rest: self.payload,
            left: self.items,
        }
    }
}

pub struct BlockItems<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for BlockItems<'a> {
    type Item = Result<ImageItem<'a>, ImageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return (!self.rest.is_empty()).then_some(Err(ImageError::Malformed("block")));
        }
        self.left -= 1;
        let b = self.rest;
        if b.len() < ITEM_HEADER_LEN {
            self.left = 0;
            self.rest = &[];
            return Some(Err(ImageError::Malformed("item")));
        }
        let key_len = b[0] as usize;
        let value_len = u32_at(b, 2) as usize;
        let end = ITEM_HEADER_LEN + key_len + value_len;
        if b.len() < end || key_len == 0 {
            self.left = 0;
            self.rest = &[];
            return Some(Err(ImageError::Malformed("item")));
        }
        self.rest = &b[end..];
        Some(Ok(ImageItem {
            bits: b[1],
            flags: u32_at(b, 6),
            expires: u32_at(b, 10),
            cas: u64_at(b, 14),
            key: &b[ITEM_HEADER_LEN..ITEM_HEADER_LEN + key_len],
            value: &b[ITEM_HEADER_LEN + key_len..end],
        }))
    }
}

/// Reads one core's image block by block, checking every CRC; memory is one block.
pub struct ImageReader<R: Read> {
    r: R,
    payload: Vec<u8>,
    items: u64,
    blocks: u32,
    done: bool,
}

/// Reads exactly `buf.len()` bytes; a short read is `Truncated(what)`.
fn read_exact_or<R: Read>(r: &mut R, buf: &mut [u8], what: &'static str) -> Result<(), ImageError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ImageError::Truncated(what)
        } else {
            ImageError::Io(e.to_string())
        }
    })
}

impl<R: Read> ImageReader<R> {
    /// Reads and checks the header: it must say it is core `core` of `cores` of stop `stop_id`.
    pub fn new(
        mut r: R,
        core: u32,
        cores: u32,
        stop_id: u64,
    ) -> Result<ImageReader<R>, ImageError> {
        let mut h = [0u8; FILE_HEADER_LEN];
        read_exact_or(&mut r, &mut h, "image header")?;
        if h[..8] != FILE_MAGIC {
            return Err(ImageError::BadMagic("image"));
        }
        let version = u32_at(&h, 8);
        if version != IMAGE_VERSION {
            return Err(ImageError::Version(version));
        }
        if crc(&[&h[..28]]) != u32_at(&h, 28) {
            return Err(ImageError::Checksum("image header"));
        }
        if (u32_at(&h, 12), u32_at(&h, 16), u64_at(&h, 20)) != (core, cores, stop_id) {
            return Err(ImageError::Malformed("image (from another stop or core)"));
        }
        Ok(ImageReader {
            r,
            payload: Vec::new(),
            items: 0,
            blocks: 0,
            done: false,
        })
    }

    /// The next block; None after the trailer (which must end the file).
    pub fn next_block(&mut self) -> Result<Option<Block<'_>>, ImageError> {
        if self.done {
            return Ok(None);
        }
        let mut h = [0u8; BLOCK_HEADER_LEN];
        read_exact_or(&mut self.r, &mut h, "image (block header)")?;
        let cache = u32_at(&h, 0);
        let created = u64_at(&h, 4);
        let items = u32_at(&h, 12);
        let len = u32_at(&h, 16) as usize;
        if len > MAX_BLOCK {
            return Err(ImageError::Malformed("image (block length)"));
        }
        // Grown as bytes arrive: a damaged length costs no more memory than the file has.
        self.payload.clear();
        (&mut self.r)
            .take(len as u64)
            .read_to_end(&mut self.payload)?;
        if self.payload.len() < len {
            return Err(ImageError::Truncated("image (block)"));
        }
        if crc(&[&h[..20], &self.payload]) != u32_at(&h, 20) {
            return Err(ImageError::Checksum("image block"));
        }
        if cache == TRAILER {
            if len != 0 || created != self.items || items != self.blocks {
                return Err(ImageError::Malformed("image trailer"));
            }
            let mut one = [0u8; 1];
            match self.r.read(&mut one) {
                Ok(0) => {}
                Ok(_) => return Err(ImageError::Malformed("image (bytes after the trailer)")),
                Err(e) => return Err(e.into()),
            }
            self.done = true;
            return Ok(None);
        }
        if items == 0 {
            return Err(ImageError::Malformed("image (empty block)"));
        }
        self.items += u64::from(items);
        self.blocks += 1;
        Ok(Some(Block {
            cache,
            created,
            items,
            payload: &self.payload,
        }))
    }
}

/// Reads `r` to its end: its length and CRC-32 must be `info`'s. Memory: one 1 MiB buffer.
pub fn verify<R: Read>(mut r: R, info: &FileInfo) -> Result<(), ImageError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut h = crc32fast::Hasher::new();
    let mut bytes = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        h.update(&buf[..n]);
        bytes += n as u64;
        if bytes > info.bytes {
            return Err(ImageError::Malformed(
                "image (longer than the manifest says)",
            ));
        }
    }
    if bytes < info.bytes {
        return Err(ImageError::Truncated("image"));
    }
    if h.finalize() != info.crc {
        return Err(ImageError::Checksum("image"));
    }
    Ok(())
}

impl Store {
    /// Calls `f` with each live, unexpired item, oldest segment first (so a reload rebuilds the
    /// eviction order). A flush scheduled for later (`flush_all N`) shows as an expiry at that
    /// time, since it will drop every item there now. Stops at `f`'s first error.
    pub fn try_for_each_live<E>(
        &mut self,
        now: u32,
        mut f: impl FnMut(ItemRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.tick(now);
        let flush_at = self.pending_flush;
        for id in self.segs.fifo_ids() {
            let seg = self.segs.get(id);
            let len = seg.len as usize;
            let mut off = 0;
            while off < len {
                let at = off;
                let v = View::decode(&seg.data[at..len]);
                off += v.len();
                if v.bits & DEAD != 0 || is_expired(v.exptime, now) {
                    continue;
                }
                let key = &seg.data[at + v.key_off..at + v.key_off + v.key_len];
                let addr = self.segs.addr(id, at);
                if self.index.find_loc(hash_key(key), addr).is_none() {
                    continue;
                }
                let mut item = self.item_ref(addr);
                if let Some(t) = flush_at {
                    item.exptime = if item.exptime == 0 {
                        t
                    } else {
                        item.exptime.min(t)
                    };
                }
                f(item)?;
            }
        }
        Ok(())
    }

    /// Stores an item read back from an image: its CAS, flags and meta bits as saved, `exptime`
    /// already in this server's clock. Through the ordinary write path, so the memory limit (or
    /// plan) holds: when the store is full, older items are evicted. Not counted in
    /// `total_items`.
    pub fn restore(
        &mut self,
        it: &ImageItem<'_>,
        exptime: u32,
        now: u32,
    ) -> Result<(), StoreError> {
        self.tick(now);
        let spec = match self.cas.counter_of(it.cas) {
            Some(c) => CasSpec::Counter(c),
            None => CasSpec::Abs(it.cas),
        };
        self.store_bits(
            it.key,
            &[it.value],
            it.flags,
            exptime,
            spec,
            it.bits & META_BITS,
            now,
        )?;
        self.counters.total_items -= 1;
        Ok(())
    }

    /// Moves the CAS counter past `cas`, so every CAS handed out from now on is above it.
    pub fn raise_cas_floor(&mut self, cas: u64) {
        self.cas.raise_past(cas);
    }

    /// The highest CAS this store has handed out from its counter (0: none yet).
    pub fn last_cas(&self) -> u64 {
        self.cas.last()
    }
}

#[cfg(test)]
mod tests;

//! What the fuzz targets run (`fuzz/`, driven by `scripts/fuzz.sh`): each
//! entry point takes arbitrary bytes, feeds them to one of shoal's input
//! paths the way the server does, and panics only on a bug: a panic in
//! shoal's own code, an overflow or a failed `debug_assert!` (the fuzz
//! build keeps both checks), or one of the checks written here.
//!
//! They live in the library, not in the fuzz crate, so the ordinary test
//! run replays the committed seeds and every input that ever crashed
//! (`tests/fuzz_corpus.rs`) without any fuzz tooling.
//!
//! Plain Rust, no I/O on the request path: the server's sockets and cores
//! are replaced by a buffer and one shard per cache.

mod binary;
mod session;
mod text;

pub use binary::binary;
pub use session::session;
pub use text::{ascii, meta};

use bytes::BytesMut;

/// Admin endpoint JSON bodies: the first byte picks one of the operator
/// and API v2 routes that take a body, the rest is the body; it is parsed
/// and checked by the handlers' own functions and applied to a control
/// store (see `admin/fuzz.rs`).
pub fn admin_json(data: &[u8]) {
    crate::admin::fuzz_body(data)
}

/// The largest item the targets' parsers accept: small, so the fuzzer
/// reaches the too-large paths with short inputs.
const ITEM_SIZE_MAX: usize = 4096;

/// Memory of a target's shard: a few items' worth, so eviction runs too.
const SHARD_MEMORY: usize = 1 << 20;

/// The first byte of an input, as the size of the pieces the rest arrives
/// in (1 to 64 bytes; the server sees a request in as many reads as the
/// network makes of it).
fn chunk_size(first: u8) -> usize {
    usize::from(first % 64) + 1
}

/// Feeds `data` to `parse` the way a connection does: all at once, then
/// again `chunk` bytes at a time, appending a piece whenever the parser
/// needs more. Returns every result but `incomplete` of each run, and what
/// was left unparsed; `stop` ends a run (the connection closes, nothing
/// is left).
fn whole_and_chunked<P, R>(
    data: &[u8],
    chunk: usize,
    mut fresh: impl FnMut() -> P,
    mut parse: impl FnMut(&mut P, &mut BytesMut) -> R,
    incomplete: impl Fn(&R) -> bool,
    stop: impl Fn(&R) -> bool,
) -> [(Vec<R>, BytesMut); 2] {
    let mut run = |piece: usize| {
        let mut parser = fresh();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            let before = buf.len();
            let r = parse(&mut parser, &mut buf);
            if incomplete(&r) {
                if fed == data.len() {
                    break;
                }
                let next = (fed + piece).min(data.len());
                buf.extend_from_slice(&data[fed..next]);
                fed = next;
                continue;
            }
            let done = stop(&r);
            // Every answered step takes bytes off the buffer: a parser
            // that answered without consuming would answer forever.
            assert!(
                done || buf.len() < before,
                "a parse step consumed nothing: {before} bytes buffered"
            );
            out.push(r);
            if done {
                // Closed: what was left is never read, and how much of it
                // had arrived depends on the pieces.
                buf.clear();
                break;
            }
        }
        (out, buf)
    };
    [run(data.len().max(1)), run(chunk)]
}

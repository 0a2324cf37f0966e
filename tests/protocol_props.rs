//! Property tests for the ASCII parser (protocol.md §1.1–1.3).
//!
//! 1. Generated request streams (every classic command, data blocks, noreply,
//!    multigets, bad lines) parse to the expected outcomes, and feeding them
//!    split at every byte boundary, byte by byte, or in random chunks gives the
//!    same sequence of non-`Incomplete` outcomes as feeding them whole.
//! 2. Arbitrary bytes never panic; every call either consumes bytes or
//!    returns `Incomplete`/`Close`, and `Incomplete` is stable (no busy loop).
//! 3. encode ∘ parse: a `Store` request written to the wire parses back to
//!    itself; the same for `Get`.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use shoal::protocol::ascii::{AsciiParser, Parsed};
use shoal::protocol::reply;
use shoal::protocol::{Command, Request, StoreMode};

/// Item size limit used by the stream tests, small so TooLarge shows up.
const ITEM_MAX: usize = 64;
/// Hard bound on parse calls per feed (no infinite loops).
const MAX_CALLS: usize = 100_000;

/// Feeds `chunks` one after another, parsing after each until `Incomplete`;
/// stops at `Close`. Returns every non-Incomplete outcome.
fn feed<'a>(item_max: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Parsed> {
    let mut p = AsciiParser::new(item_max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut calls = 0;
    for c in chunks {
        buf.put_slice(c);
        loop {
            calls += 1;
            assert!(calls < MAX_CALLS, "parser does not make progress");
            let before = buf.len();
            match p.parse(&mut buf) {
                Parsed::Incomplete => {
                    assert!(buf.len() <= before);
                    // Incomplete is stable: asking again without new bytes
                    // neither consumes nor produces anything.
                    let again = buf.len();
                    assert_eq!(p.parse(&mut buf), Parsed::Incomplete);
                    assert_eq!(buf.len(), again);
                    break;
                }
                Parsed::Close => {
                    out.push(Parsed::Close);
                    return out;
                }
                r => {
                    assert!(buf.len() < before, "{r:?} consumed nothing");
                    out.push(r);
                }
            }
        }
    }
    out
}

fn whole(item_max: usize, input: &[u8]) -> Vec<Parsed> {
    feed(item_max, [input])
}

// ---------------------------------------------------------------------------
// Generators.

/// A key memcached accepts: 1–250 bytes, no space/newline/NUL.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(prop_oneof![b'a'..=b'z', b'0'..=b'9', Just(b':'), Just(b'_')], 1..12),
        1 => proptest::collection::vec(prop_oneof![0x21u8..=0x7e, 0x80u8..=0xff], 1..=250),
    ]
}

fn mode() -> impl Strategy<Value = StoreMode> {
    prop_oneof![
        Just(StoreMode::Set),
        Just(StoreMode::Add),
        Just(StoreMode::Replace),
        Just(StoreMode::Append),
        Just(StoreMode::Prepend),
        Just(StoreMode::Cas),
    ]
}

fn mode_name(m: StoreMode) -> &'static str {
    match m {
        StoreMode::Set => "set",
        StoreMode::Add => "add",
        StoreMode::Replace => "replace",
        StoreMode::Append => "append",
        StoreMode::Prepend => "prepend",
        StoreMode::Cas => "cas",
    }
}

/// Writes a storage request the way a client would (A-set, A-cas).
#[allow(clippy::too_many_arguments)]
fn store_wire(
    out: &mut Vec<u8>,
    m: StoreMode,
    key: &[u8],
    flags: u32,
    exptime: i64,
    len: usize,
    cas: u64,
    noreply: bool,
) {
    out.extend_from_slice(mode_name(m).as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.extend_from_slice(format!(" {flags} {exptime} {len}").as_bytes());
    if m == StoreMode::Cas {
        out.extend_from_slice(format!(" {cas}").as_bytes());
    }
    if noreply {
        out.extend_from_slice(b" noreply");
    }
    out.extend_from_slice(b"\r\n");
}

fn req(cmd: Command, noreply: bool) -> Parsed {
    Parsed::Request(Request { cmd, noreply })
}

fn silent_or(noreply: bool, msg: &'static [u8]) -> Parsed {
    if noreply {
        Parsed::Silent
    } else {
        Parsed::Error(msg)
    }
}

/// One wire item with the outcomes it must produce.
#[derive(Debug, Clone)]
struct Item {
    wire: Vec<u8>,
    expect: Vec<Parsed>,
}

#[allow(clippy::too_many_arguments)]
fn store_item(
    m: StoreMode,
    k: Vec<u8>,
    flags: u32,
    exptime: i32,
    data: Vec<u8>,
    cas: u64,
    noreply: bool,
    eol: &'static [u8],
) -> Item {
    let mut wire = Vec::new();
    store_wire(
        &mut wire,
        m,
        &k,
        flags,
        exptime.into(),
        data.len(),
        cas,
        noreply,
    );
    if eol == b"\n" {
        // a bare \n also ends a command line.
        wire.truncate(wire.len() - 2);
        wire.push(b'\n');
    }
    let key = Bytes::from(k);
    let expect = if data.len() > ITEM_MAX {
        // TooLarge now, Silent when the swallow of len+2 ends.
        vec![
            req(Command::TooLarge { mode: m, key }, noreply),
            Parsed::Silent,
        ]
    } else {
        let cas = if m == StoreMode::Cas { cas } else { 0 };
        vec![req(
            Command::Store {
                mode: m,
                key,
                flags,
                exptime: exptime.into(),
                data: Bytes::from(data.clone()),
                cas,
            },
            noreply,
        )]
    };
    wire.extend_from_slice(&data);
    wire.extend_from_slice(b"\r\n");
    Item { wire, expect }
}

fn item() -> impl Strategy<Value = Item> {
    let data = proptest::collection::vec(any::<u8>(), 0..80);
    prop_oneof![
        // A-set family, valid (or too large).
        6 => (mode(), key(), any::<u32>(), any::<i32>(), data.clone(), any::<u64>(), any::<bool>(),
              prop_oneof![Just(&b"\r\n"[..]), Just(&b"\n"[..])])
            .prop_map(|(m, k, f, e, d, c, nr, eol)| store_item(m, k, f, e, d, c, nr, eol)),
        // bad data chunk (len + 2 bytes consumed, not ending \r\n).
        1 => (key(), proptest::collection::vec(any::<u8>(), 0..20), any::<bool>()).prop_map(|(k, d, nr)| {
            let mut wire = Vec::new();
            store_wire(&mut wire, StoreMode::Set, &k, 0, 0, d.len(), 0, nr);
            wire.extend_from_slice(&d);
            wire.extend_from_slice(b"X\n");
            Item { wire, expect: vec![silent_or(nr, reply::CLIENT_ERROR_BAD_DATA_CHUNK)] }
        }),
        // A-get / A-gets / A-gat / A-gats, up to 40 keys (past the 24-token limit).
        4 => (0usize..4, proptest::collection::vec(key(), 1..40), -100i32..100, 1usize..4).prop_map(|(v, ks, exp, sp)| {
            let name = ["get", "gets", "gat", "gats"][v];
            let mut ks = ks;
            if v >= 2 {
                // only get/gets lines may exceed 2048 bytes when split.
                let mut total = 0;
                ks.retain(|k| {
                    total += k.len() + sp;
                    total < 1900
                });
            }
            let touch = (v >= 2).then_some(i64::from(exp));
            let sep = " ".repeat(sp);
            let mut wire = name.as_bytes().to_vec();
            if let Some(t) = touch {
                wire.extend_from_slice(format!("{sep}{t}").as_bytes());
            }
            for k in &ks {
                wire.extend_from_slice(sep.as_bytes());
                wire.extend_from_slice(k);
            }
            wire.extend_from_slice(b"\r\n");
            let keys = ks.into_iter().map(Bytes::from).collect();
            Item { wire, expect: vec![req(Command::Get { keys, with_cas: v % 2 == 1, touch }, false)] }
        }),
        // A-delete, A-incr/decr, A-touch with optional noreply.
        3 => (0usize..4, key(), any::<u64>(), any::<i32>(), any::<bool>()).prop_map(|(v, k, n, e, nr)| {
            let key = Bytes::from(k.clone());
            let (line, cmd) = match v {
                0 => (format!("delete {}", esc(&k)), Command::Delete { key }),
                1 => (format!("incr {} {n}", esc(&k)), Command::Arith { key, incr: true, delta: n }),
                2 => (format!("decr {} {n}", esc(&k)), Command::Arith { key, incr: false, delta: n }),
                _ => (format!("touch {} {e}", esc(&k)), Command::Touch { key, exptime: e.into() }),
            };
            let mut wire = unesc(&line);
            if nr {
                wire.extend_from_slice(b" noreply");
            }
            wire.extend_from_slice(b"\r\n");
            Item { wire, expect: vec![req(cmd, nr)] }
        }),
        // Server-wide commands.
        2 => (0usize..6, 0u32..1000, any::<bool>()).prop_map(|(v, n, nr)| {
            let (line, cmd, nr) = match v {
                0 => (format!("flush_all {n}"), Command::FlushAll { delay: n.into() }, nr),
                1 => ("version".to_string(), Command::Version, false),
                2 => (format!("verbosity {n}"), Command::Verbosity { level: n }, nr),
                3 => (format!("cache_memlimit {n}"), Command::CacheMemlimit { megabytes: n.into() }, nr),
                4 => ("stats".to_string(), Command::Stats { args: vec![] }, false),
                _ => (format!("stats items {n}"),
                      Command::Stats { args: vec![Bytes::from_static(b"items"), Bytes::from(n.to_string())] }, false),
            };
            let mut wire = line.into_bytes();
            if nr {
                wire.extend_from_slice(b" noreply");
            }
            wire.extend_from_slice(b"\r\n");
            Item { wire, expect: vec![req(cmd, nr)] }
        }),
        // Bad lines.
        2 => (0usize..7, key(), any::<bool>()).prop_map(|(v, k, nr)| {
            let long = "x".repeat(251);
            let nrs = if nr { " noreply" } else { "" };
            let (line, expect) = match v {
                0 => ("bogus command".to_string(), Parsed::Error(reply::ERROR)),
                1 => (String::new(), Parsed::Error(reply::ERROR)),
                2 => (format!("get a {long}"), Parsed::Error(reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT)),
                3 => (format!("incr k x{nrs}"), silent_or(nr, reply::CLIENT_ERROR_INVALID_DELTA)),
                4 => (format!("touch k x{nrs}"), silent_or(nr, reply::CLIENT_ERROR_INVALID_EXPTIME)),
                5 => (format!("delete k 5{nrs}"), silent_or(nr, reply::CLIENT_ERROR_DELETE_USAGE)),
                // A bad storage line: the "data" is then parsed as a command.
                _ => (format!("set {} 0 0 -1{nrs}", esc(&k)),
                      silent_or(nr, reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT)),
            };
            let mut wire = unesc(&line);
            wire.extend_from_slice(b"\r\n");
            Item { wire, expect: vec![expect] }
        }),
    ]
}

/// Keys may hold non-UTF-8 bytes; carry them through `format!` via Latin-1.
fn esc(k: &[u8]) -> String {
    k.iter().map(|&b| b as char).collect()
}

fn unesc(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}

/// A stream of items, optionally ended by an X-7 HTTP line.
fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<Parsed>)> {
    (proptest::collection::vec(item(), 0..12), any::<bool>()).prop_map(|(items, http)| {
        let mut wire = Vec::new();
        let mut expect = Vec::new();
        for it in items {
            wire.extend_from_slice(&it.wire);
            expect.extend(it.expect);
        }
        if http {
            wire.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            expect.push(Parsed::Close);
        }
        (wire, expect)
    })
}

/// Splits `input` into chunks of the given sizes (cycled).
fn chunked<'a>(input: &'a [u8], sizes: &'a [usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < input.len() {
        let n = sizes[i % sizes.len()].min(input.len() - pos);
        out.push(&input[pos..pos + n]);
        pos += n;
        i += 1;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// (1) Expected outcomes, and split at every byte boundary = whole.
    #[test]
    fn stream_split_at_every_boundary_matches_whole((wire, expect) in stream()) {
        let w = whole(ITEM_MAX, &wire);
        prop_assert_eq!(&w, &expect);
        for cut in 0..=wire.len() {
            let got = feed(ITEM_MAX, [&wire[..cut], &wire[cut..]]);
            prop_assert_eq!(&got, &w, "cut at {}", cut);
        }
        // One byte at a time.
        let got = feed(ITEM_MAX, wire.chunks(1));
        prop_assert_eq!(&got, &w);
    }

    /// (1) Random chunkings = whole.
    #[test]
    fn stream_random_chunks_match_whole(
        (wire, expect) in stream(),
        sizes in proptest::collection::vec(1usize..64, 1..16),
    ) {
        let w = whole(ITEM_MAX, &wire);
        prop_assert_eq!(&w, &expect);
        let got = feed(ITEM_MAX, chunked(&wire, &sizes));
        prop_assert_eq!(got, w);
    }

    /// (2) Arbitrary bytes: no panic, progress or Incomplete/Close (checked in
    /// `feed`). Inputs ≤ 2048 bytes cannot trip X-6, so even garbage must be
    /// split-invariant.
    #[test]
    fn arbitrary_bytes_never_panic_and_are_split_invariant(
        input in proptest::collection::vec(
            prop_oneof![
                8 => any::<u8>(),
                2 => Just(b' '),
                2 => Just(b'\n'),
                1 => Just(b'\r'),
                1 => Just(b'0'),
            ], 0..600),
        prefix in prop_oneof![
            Just(&b""[..]), Just(&b"set k 0 0 "[..]), Just(&b"get "[..]), Just(&b"gat 1 "[..]),
            Just(&b"cas k 0 0 3 "[..]), Just(&b"delete k "[..]), Just(&b"incr k "[..]),
            Just(&b"flush_all "[..]), Just(&b"set k 0 0 100\r\n"[..]),
        ],
        sizes in proptest::collection::vec(1usize..32, 1..8),
        item_max in prop_oneof![Just(0usize), Just(16), Just(1 << 20)],
    ) {
        let mut wire = prefix.to_vec();
        wire.extend_from_slice(&input);
        let w = whole(item_max, &wire);
        prop_assert_eq!(&feed(item_max, chunked(&wire, &sizes)), &w);
        let cut = sizes[0].min(wire.len());
        prop_assert_eq!(&feed(item_max, [&wire[..cut], &wire[cut..]]), &w);
    }

    /// (2) Arbitrary large garbage (X-6 may close): still no panic, progress.
    #[test]
    fn arbitrary_large_bytes_never_panic(
        input in proptest::collection::vec(any::<u8>(), 0..6000),
        sizes in proptest::collection::vec(1usize..4096, 1..8),
    ) {
        let _ = feed(ITEM_MAX, chunked(&input, &sizes));
        let _ = whole(1 << 20, &input);
    }

    /// (3) encode ∘ parse for Store.
    #[test]
    fn store_encode_parse_roundtrip(
        m in mode(), k in key(), flags in any::<u32>(), exptime in any::<i32>(),
        data in proptest::collection::vec(any::<u8>(), 0..2000), cas in any::<u64>(), noreply in any::<bool>(),
    ) {
        let cas = if m == StoreMode::Cas { cas } else { 0 };
        let want = Request {
            cmd: Command::Store {
                mode: m, key: Bytes::from(k.clone()), flags, exptime: exptime.into(),
                data: Bytes::from(data.clone()), cas,
            },
            noreply,
        };
        let mut wire = Vec::new();
        store_wire(&mut wire, m, &k, flags, exptime.into(), data.len(), cas, noreply);
        wire.extend_from_slice(&data);
        wire.extend_from_slice(b"\r\n");
        let mut buf = BytesMut::from(&wire[..]);
        let mut p = AsciiParser::new(1 << 20);
        prop_assert_eq!(p.parse(&mut buf), Parsed::Request(want));
        prop_assert!(buf.is_empty());
        prop_assert_eq!(p.parse(&mut buf), Parsed::Incomplete);
    }

    /// (3) encode ∘ parse for large multigets (X-6 allows `get ` lines of any
    /// length), also split-invariant.
    #[test]
    fn multiget_roundtrip_and_split(
        ks in proptest::collection::vec(key(), 1..400),
        gets in any::<bool>(),
        sizes in proptest::collection::vec(1usize..3000, 1..4),
    ) {
        let mut wire = if gets { b"gets".to_vec() } else { b"get".to_vec() };
        for k in &ks {
            wire.push(b' ');
            wire.extend_from_slice(k);
        }
        wire.extend_from_slice(b"\r\n");
        let want = vec![req(
            Command::Get { keys: ks.into_iter().map(Bytes::from).collect(), with_cas: gets, touch: None },
            false,
        )];
        prop_assert_eq!(&whole(ITEM_MAX, &wire), &want);
        prop_assert_eq!(&feed(ITEM_MAX, chunked(&wire, &sizes)), &want);
    }
}

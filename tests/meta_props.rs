//! Property tests for the meta protocol (protocol.md §1.6) through the ASCII
//! parser, which dispatches `m?` lines to the meta parser.
//!
//! 1. Arbitrary bytes, and arbitrary meta-looking streams, never make the
//!    parser panic or stall: every call consumes bytes or returns
//!    `Incomplete`/`Close`, and `Incomplete` is stable.
//! 2. Generated meta request streams (valid and invalid flags, base64 keys,
//!    `ms` data blocks good and bad, too-large values) give the same outcomes
//!    fed whole, split at every byte boundary, byte by byte, or in random
//!    chunks.
//! 3. Executing whatever those streams parse to against a shard never panics
//!    and always answers a non-quiet request with at least one line.

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;
use shoal::exec::{ascii as run, Shard};
use shoal::protocol::ascii::{AsciiParser, Parsed};
use shoal::protocol::meta::MetaCmd;
use shoal::protocol::Command;

/// Item size limit for the streams, small so too-large values show up.
const ITEM_MAX: usize = 64;
/// Hard bound on parse calls per feed (no infinite loops).
const MAX_CALLS: usize = 200_000;

/// Feeds `chunks` in order, parsing after each until `Incomplete`; stops at
/// `Close`. Returns every non-`Incomplete` outcome.
fn feed<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Parsed> {
    let mut p = AsciiParser::new(ITEM_MAX);
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
                    let again = buf.len();
                    assert_eq!(
                        p.parse(&mut buf),
                        Parsed::Incomplete,
                        "Incomplete is stable"
                    );
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

fn whole(input: &[u8]) -> Vec<Parsed> {
    feed([input])
}

// ---------------------------------------------------------------------------
// Generators.

/// Keys: plain, base64 of a short binary key, not-base64, too long.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => proptest::collection::vec(prop_oneof![b'a'..=b'f', b'0'..=b'3'], 1..6),
        2 => Just(b"Zm9v".to_vec()),
        1 => Just(b"44OG44K544OI".to_vec()),
        1 => Just(b"!!!".to_vec()),
        1 => (249usize..253).prop_map(|n| vec![b'k'; n]),
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u32..200).prop_map(|n| n.to_string()),
        1 => (-5i32..0).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => Just("18446744073709551616".to_string()),
        1 => Just("x".to_string()),
        1 => Just(String::new()),
    ]
}

/// One flag token, valid or not.
fn flag() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        8 => prop::sample::select(vec!["b", "c", "f", "h", "k", "l", "q", "s", "t", "u", "v", "x", "I", "P", "L"])
            .prop_map(str::to_string),
        6 => (prop::sample::select(vec!['T', 'N', 'R', 'C', 'E', 'F', 'D', 'J']), number())
            .prop_map(|(c, n)| format!("{c}{n}")),
        2 => prop::sample::select(vec!["MS", "ME", "MA", "MP", "MR", "MI", "M+", "MD", "M-", "MZ", "M", "MEE"])
            .prop_map(str::to_string),
        2 => (0usize..40).prop_map(|n| format!("O{}", "o".repeat(n))),
        1 => "[!-~]{1,3}",
    ]
}

/// A meta request on the wire (line, plus data for ms).
fn meta_item() -> impl Strategy<Value = Vec<u8>> {
    // Mostly a few flags (long lists are mostly duplicate-flag errors).
    let flags = prop_oneof![
        4 => proptest::collection::vec(flag(), 0..5),
        1 => proptest::collection::vec(flag(), 0..22),
    ];
    prop_oneof![
        // mg / md / ma / me / mn and a bad meta name.
        6 => (prop::sample::select(vec!["mg", "md", "ma", "me", "mn", "mx", "m"]), key(), flags.clone(), any::<bool>())
            .prop_map(|(cmd, k, fl, lf)| {
                let mut w = cmd.as_bytes().to_vec();
                w.push(b' ');
                w.extend_from_slice(&k);
                for f in fl {
                    w.push(b' ');
                    w.extend_from_slice(f.as_bytes());
                }
                w.extend_from_slice(if lf { b"\n" } else { b"\r\n" });
                w
            }),
        // ms with a data block: right length, wrong terminator, too large,
        // or a bad declared length.
        4 => (key(), flags, proptest::collection::vec(any::<u8>(), 0..80), 0usize..4)
            .prop_map(|(k, fl, data, shape)| {
                let mut w = b"ms ".to_vec();
                w.extend_from_slice(&k);
                match shape {
                    3 => w.extend_from_slice(b" -1"),
                    _ => w.extend_from_slice(format!(" {}", data.len()).as_bytes()),
                }
                for f in fl {
                    w.push(b' ');
                    w.extend_from_slice(f.as_bytes());
                }
                w.extend_from_slice(b"\r\n");
                w.extend_from_slice(&data);
                w.extend_from_slice(if shape == 1 { b"XY" } else { b"\r\n" });
                w
            }),
        // Classic commands mixed in.
        1 => key().prop_map(|k| [b"set ".to_vec(), k, b" 0 0 2\r\nab\r\n".to_vec()].concat()),
        1 => key().prop_map(|k| [b"get ".to_vec(), k, b"\r\n".to_vec()].concat()),
    ]
}

fn meta_stream() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(meta_item(), 0..10).prop_map(|v| v.concat())
}

/// A shard to execute against.
fn shard() -> Shard {
    Shard::standalone(8 << 20, ITEM_MAX, false)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary bytes: no panic, progress, stable Incomplete.
    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        whole(&input);
        feed(input.chunks(7));
    }

    /// Arbitrary bytes after a meta prefix reach the meta parser.
    #[test]
    fn arbitrary_meta_lines_never_panic(
        cmd in prop::sample::select(vec!["mg ", "ms ", "md ", "ma ", "me ", "mn ", "ms k 5 "]),
        tail in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let input = [cmd.as_bytes(), &tail, b"\r\n"].concat();
        whole(&input);
        feed(input.chunks(3));
    }

    /// Split anywhere: the same outcomes as whole.
    #[test]
    fn meta_streams_split_anywhere(input in meta_stream()) {
        let expect = whole(&input);
        for cut in 0..=input.len() {
            let got = feed([&input[..cut], &input[cut..]]);
            prop_assert_eq!(&got, &expect, "cut at {}", cut);
        }
        let got = feed(input.chunks(1));
        prop_assert_eq!(&got, &expect, "byte by byte");
    }

    /// Random chunking.
    #[test]
    fn meta_streams_random_chunks(input in meta_stream(), sizes in proptest::collection::vec(1usize..40, 1..50)) {
        let expect = whole(&input);
        let mut chunks = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < input.len() {
            let n = sizes[i % sizes.len()].min(input.len() - at);
            chunks.push(&input[at..at + n]);
            at += n;
            i += 1;
        }
        prop_assert_eq!(feed(chunks), expect);
    }

    /// Executing parsed meta streams never panics; a request without `q`
    /// always gets an answer.
    #[test]
    fn meta_execution_never_panics(input in meta_stream(), now in 2u32..100_000) {
        let mut sh = shard();
        for p in whole(&input) {
            if let Parsed::Request(req) = p {
                let Some(_) = req.cmd.single_key() else { continue };
                let mut out = BytesMut::new();
                run::execute(&mut sh, &req, now, &mut out);
                if let Command::Meta(m) = &req.cmd {
                    prop_assert!(m.cmd != MetaCmd::Noop);
                    if !m.quiet {
                        prop_assert!(out.ends_with(b"\r\n"), "{:?} -> {:?}", m, out);
                    }
                }
            }
        }
    }
}

/// Fixed examples of the split property (fast to debug when it fails).
#[test]
fn meta_split_examples() {
    let input = format!(
        "ms k 3 T10 c\r\nabc\r\nmg k v c s\r\nms k 2 zz\r\nab\r\nms k 70 q\r\n{}\r\n\
         md k q\r\nma k N0 J5 v\r\nmg Zm9v b k\r\nms k 2 q\r\nabcd\r\nmn\r\nme k\r\n",
        "x".repeat(70)
    );
    let input = input.as_bytes();
    let expect = whole(input);
    // ms, mg, error + swallowed, too large + swallowed, md, ma, mg, bad chunk, "cd" line, mn, me.
    assert_eq!(expect.len(), 13, "{expect:?}");
    for cut in 0..=input.len() {
        assert_eq!(feed([&input[..cut], &input[cut..]]), expect, "cut at {cut}");
    }
}

/// The stream generator produces executed requests of every meta command,
/// not just errors.
#[test]
fn generator_covers_every_meta_command() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::HashSet::new();
    let mut requests = 0;
    let mut errors = 0;
    for _ in 0..300 {
        let input = meta_stream().new_tree(&mut runner).unwrap().current();
        for p in whole(&input) {
            match p {
                Parsed::Request(r) => {
                    requests += 1;
                    if let Command::Meta(m) = r.cmd {
                        seen.insert(format!("{:?}", m.cmd));
                    }
                }
                Parsed::Error(_) => errors += 1,
                _ => {}
            }
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert!(
        requests > errors / 2,
        "requests {requests}, errors {errors}"
    );
}

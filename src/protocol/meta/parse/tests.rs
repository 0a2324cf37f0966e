//! Parser-level tests; execution is tested in `crate::exec::meta`.

use super::*;
use crate::protocol::ascii::AsciiParser;
use bytes::BufMut;

const MAX: usize = 1024 * 1024;

fn all_with(max: usize, input: &[u8]) -> Vec<Parsed> {
    let mut p = AsciiParser::new(max);
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    for _ in 0..10_000 {
        match p.parse(&mut buf) {
            Parsed::Incomplete => break,
            r => out.push(r),
        }
    }
    out
}

fn all(input: &[u8]) -> Vec<Parsed> {
    all_with(MAX, input)
}

fn one(input: &[u8]) -> Parsed {
    let v = all(input);
    assert_eq!(v.len(), 1, "{v:?}");
    v.into_iter().next().unwrap()
}

fn meta(p: Parsed) -> MetaRequest {
    match p {
        Parsed::Request(Request {
            cmd: Command::Meta(m),
            noreply: false,
        }) => *m,
        r => panic!("not a meta request: {r:?}"),
    }
}

fn err(msg: &'static [u8]) -> Parsed {
    Parsed::Error(msg)
}

const E: Parsed = Parsed::Error(reply::ERROR);
const BAD: Parsed = Parsed::Error(reply::CLIENT_ERROR_BAD_COMMAND_LINE_FORMAT);

#[test]
fn m_mg_flags_in_order() {
    let m = meta(one(b"mg foo s v T30 N-1 R0 Oabc k q u h l t c f\r\n"));
    assert_eq!(m.cmd, MetaCmd::Get);
    assert_eq!(&m.key[..], b"foo");
    assert_eq!(m.order.as_slice(), b"svTNROkquhltcf");
    assert!(m.value && m.quiet && m.no_update);
    assert_eq!((m.ttl, m.vivify, m.recache), (Some(30), Some(-1), Some(0)));
    assert_eq!(&m.opaque[..], b"Oabc");
    assert!(!m.base64);
}

#[test]
fn m_mg_errors() {
    assert_eq!(one(b"mg\r\n"), E);
    assert_eq!(one(b"mx foo\r\n"), E);
    assert_eq!(one(b"mgg foo\r\n"), E);
    // metaget.t "flag and token count errors".
    assert_eq!(
        one(b"mg foo m o o o o o o o o o\r\n"),
        err(reply::CLIENT_ERROR_INVALID_FLAG)
    );
    assert_eq!(
        one(b"mg foo s s\r\n"),
        err(reply::CLIENT_ERROR_DUPLICATE_FLAG)
    );
    // `x` is md's alone (M-md); memcached 1.6.18 answers invalid flag.
    assert_eq!(
        one(b"mg foo x v\r\n"),
        err(reply::CLIENT_ERROR_INVALID_FLAG)
    );
    // ma ignores the preparse errstr, as for any bad flag.
    assert_eq!(
        one(b"ma foo x\r\n"),
        err(reply::CLIENT_ERROR_INVALID_OR_DUPLICATE_FLAG)
    );
    assert_eq!(
        one(b"mg foo \xff\r\n"),
        err(reply::CLIENT_ERROR_DUPLICATE_FLAG)
    );
    assert_eq!(one(b"mg foo Tx\r\n"), err(reply::CLIENT_ERROR_BAD_TOKEN));
    assert_eq!(one(b"mg foo T\r\n"), err(reply::CLIENT_ERROR_BAD_TOKEN));
    assert_eq!(one(b"mg foo Fx\r\n"), BAD, "F sets no errstr");
    assert_eq!(one(b"mg foo Cx\r\n"), err(reply::CLIENT_ERROR_BAD_TOKEN));
    assert_eq!(one(b"mg foo Ex\r\n"), err(reply::CLIENT_ERROR_BAD_TOKEN));
    assert_eq!(
        one(b"mg foo Jx\r\n"),
        err(reply::CLIENT_ERROR_INVALID_INITIAL)
    );
    assert_eq!(
        one(b"mg foo Dx\r\n"),
        err(reply::CLIENT_ERROR_INVALID_DELTA_VALUE)
    );
    assert_eq!(
        one(b"mg foo MEE\r\n"),
        err(reply_extra::CLIENT_ERROR_M_TOKEN_LENGTH)
    );
    assert_eq!(one(b"mg !!! b\r\n"), err(reply::CLIENT_ERROR_DECODING_KEY));
    // The last errstr wins; invalid/duplicate flags stop at once.
    assert_eq!(one(b"mg !!! b Tx\r\n"), err(reply::CLIENT_ERROR_BAD_TOKEN));
    assert_eq!(
        one(b"mg foo Tx z\r\n"),
        err(reply::CLIENT_ERROR_INVALID_FLAG)
    );
    // Key length is checked on the encoded key, before flags.
    let k = "a".repeat(251);
    assert_eq!(one(format!("mg {k} zz\r\n").as_bytes()), BAD);
    assert_eq!(
        meta(one(format!("mg {} v\r\n", "a".repeat(250)).as_bytes()))
            .key
            .len(),
        250
    );
    // 17 flags are fine, 18 are too many (ntokens > 20).
    let ok = "P L k s t c f v h u q l O"
        .split(' ')
        .chain(["T1", "N1", "R1", "b"])
        .collect::<Vec<_>>();
    assert_eq!(ok.len(), 17);
    assert_eq!(
        meta(one(format!("mg Zm9v {}\r\n", ok.join(" ")).as_bytes()))
            .order
            .as_slice()
            .len(),
        17
    );
    assert_eq!(
        one(format!("mg foo {} I\r\n", ok.join(" ")).as_bytes()),
        err(reply::CLIENT_ERROR_OPTIONS_FLAGS_TOO_LONG)
    );
    // A long opaque is checked when the reply is built, not here.
    let o = format!("O{}", "x".repeat(40));
    assert_eq!(
        meta(one(format!("mg foo {o}\r\n").as_bytes())).opaque.len(),
        41
    );
}

#[test]
fn m_b_base64_key_decoded() {
    let m = meta(one(b"mg 44OG44K544OI b v k\r\n"));
    assert_eq!(&m.key[..], "テスト".as_bytes());
    assert!(m.base64);
    let m = meta(one(b"ms 44OG44K544OI 2 b\r\npo\r\n"));
    assert_eq!(&m.key[..], "テスト".as_bytes());
    assert_eq!(&m.data[..], b"po");
}

#[test]
fn m_ms_line_and_data() {
    let m = meta(one(b"ms k 3 T10 F5 C7 E9 I MA N30 q k c Oxy s\r\nabc\r\n"));
    assert_eq!(m.cmd, MetaCmd::Set);
    assert_eq!((&m.key[..], &m.data[..]), (&b"k"[..], &b"abc"[..]));
    assert_eq!(
        (m.ttl, m.client_flags, m.compare_cas, m.new_cas),
        (Some(10), 5, Some(7), Some(9))
    );
    assert!(m.invalidate && m.quiet);
    assert_eq!((m.mode, m.vivify), (b'A', Some(30)));
    assert_eq!(m.order.as_slice(), b"TFCEIMNqkcOs");
    // Zero-length value; bare \n ends the line.
    let m = meta(one(b"ms k 0\n\r\n"));
    assert_eq!(&m.data[..], b"");
}

#[test]
fn m_ms_errors_and_swallow() {
    // metaget.t "testing quiet flag": no length.
    assert_eq!(one(b"ms quiet\r\n"), BAD);
    assert_eq!(one(b"ms\r\n"), E);
    // Bad length: the line alone is consumed, the data is a new command.
    assert_eq!(all(b"ms k x\r\nab\r\n"), vec![BAD, E]);
    assert_eq!(all(b"ms k -1\r\nab\r\n"), vec![BAD, E]);
    assert_eq!(all(b"ms k 2147483646\r\n"), vec![BAD]);
    // Flag errors swallow the declared data (even with q).
    assert_eq!(
        all(b"ms k 2 q zz\r\nab\r\nmn\r\n"),
        vec![
            err(reply::CLIENT_ERROR_INVALID_FLAG),
            Parsed::Silent,
            Parsed::Request(meta_noop())
        ]
    );
    // metaget.t "invalid mode".
    assert_eq!(
        all(b"ms modetest 2 T120 MZ\r\ntt\r\n"),
        vec![err(reply::CLIENT_ERROR_INVALID_MS_MODE), Parsed::Silent]
    );
    assert_eq!(
        all(b"ms k 2 MAA\r\ntt\r\n"),
        vec![
            err(reply_extra::CLIENT_ERROR_M_TOKEN_LENGTH),
            Parsed::Silent
        ]
    );
    let o = format!("O{}", "x".repeat(32));
    assert_eq!(
        all(format!("ms k 2 {o}\r\ntt\r\n").as_bytes()),
        vec![err(reply::CLIENT_ERROR_OPAQUE_TOO_LONG), Parsed::Silent]
    );
    // The mode error wins over the opaque error.
    assert_eq!(
        all(format!("ms k 2 {o} MZ\r\ntt\r\n").as_bytes()),
        vec![err(reply::CLIENT_ERROR_INVALID_MS_MODE), Parsed::Silent]
    );
    // 16 flags after the length are fine, 17 are too many; no swallow.
    let f = "a ".repeat(17);
    assert_eq!(
        all(format!("ms k 2 {f}\r\nab\r\n").as_bytes()),
        vec![err(reply::CLIENT_ERROR_OPTIONS_FLAGS_TOO_LONG_MS), E]
    );
    // Bad data chunk: len + 2 bytes consumed, reported even with q.
    assert_eq!(
        all(b"ms k 2 q\r\nabcd\r\n"),
        vec![err(reply::CLIENT_ERROR_BAD_DATA_CHUNK), E]
    );
    // Key too long: no swallow.
    let k = "a".repeat(251);
    assert_eq!(all(format!("ms {k} 2\r\nab\r\n").as_bytes()), vec![BAD, E]);
}

fn meta_noop() -> Request {
    Request {
        cmd: Command::Meta(Box::new(MetaRequest::new(MetaCmd::Noop, Bytes::new()))),
        noreply: false,
    }
}

#[test]
fn m_ms_too_large_is_swallowed() {
    let r = all_with(4, b"ms k 5 T1\r\nabcde\r\nmn\r\n");
    assert_eq!(r.len(), 3, "{r:?}");
    let m = meta(r[0].clone());
    assert!(m.too_large);
    assert_eq!(&m.key[..], b"k");
    assert_eq!(r[1], Parsed::Silent);
    assert_eq!(r[2], Parsed::Request(meta_noop()));
}

#[test]
fn m_ms_data_arrives_in_pieces() {
    let mut p = AsciiParser::new(MAX);
    let mut buf = BytesMut::from(&b"ms k 5 c\r\nab"[..]);
    assert_eq!(p.parse(&mut buf), Parsed::Incomplete);
    assert_eq!(p.pending_len(), Some(7));
    assert_eq!(&buf[..], b"ab", "line consumed once");
    buf.put_slice(b"cde\r");
    assert_eq!(p.parse(&mut buf), Parsed::Incomplete);
    buf.put_slice(b"\nmn\r\n");
    let m = meta(p.parse(&mut buf));
    assert_eq!(&m.data[..], b"abcde");
    assert_eq!(p.parse(&mut buf), Parsed::Request(meta_noop()));
}

#[test]
fn m_md_ma_errors() {
    assert_eq!(one(b"md\r\n"), E);
    assert_eq!(
        one(b"md k zz\r\n"),
        err(reply::CLIENT_ERROR_INVALID_OR_DUPLICATE_FLAG)
    );
    assert_eq!(
        one(b"md k q q\r\n"),
        err(reply::CLIENT_ERROR_INVALID_OR_DUPLICATE_FLAG)
    );
    assert_eq!(
        one(b"md k Tx\r\n"),
        err(reply::CLIENT_ERROR_INVALID_OR_DUPLICATE_FLAG)
    );
    let o = format!("O{}", "x".repeat(32));
    assert_eq!(
        one(format!("md k {o}\r\n").as_bytes()),
        err(reply::CLIENT_ERROR_OPAQUE_TOO_LONG)
    );
    assert_eq!(
        one(format!("md k {}\r\n", "a ".repeat(18)).as_bytes()),
        err(reply::CLIENT_ERROR_OPTIONS_FLAGS_TOO_LONG_MS)
    );
    assert_eq!(
        one(b"ma k MX\r\n"),
        err(reply::CLIENT_ERROR_INVALID_MA_MODE)
    );
    assert_eq!(
        one(b"ma k Dx\r\n"),
        err(reply::CLIENT_ERROR_INVALID_OR_DUPLICATE_FLAG)
    );
    assert_eq!(
        one(format!("ma {} D1\r\n", "a".repeat(251)).as_bytes()),
        BAD
    );
    for mode in [b'I', b'+', b'D', b'-'] {
        let line = [&b"ma k M"[..], &[mode], b"\r\n"].concat();
        assert_eq!(meta(one(&line)).mode, mode);
    }
    let m = meta(one(b"ma k N0 J13 D30 MD q v t c k Oo\r\n"));
    assert_eq!(
        (m.initial, m.delta, m.vivify, m.mode),
        (13, 30, Some(0), b'D')
    );
    let m = meta(one(b"ma k\r\n"));
    assert_eq!((m.delta, m.initial), (1, 0), "defaults");
    let m = meta(one(b"md k I T30 C5 x q\r\n"));
    assert!(m.invalidate && m.remove_value && m.quiet);
    assert_eq!((m.ttl, m.compare_cas), (Some(30), Some(5)));
}

#[test]
fn m_me_mn() {
    assert_eq!(one(b"me\r\n"), BAD);
    assert_eq!(one(format!("me {}\r\n", "a".repeat(251)).as_bytes()), BAD);
    assert_eq!(one(b"me !!!! b\r\n"), BAD);
    let m = meta(one(b"me Zm9v b\r\n"));
    assert_eq!(
        (m.cmd, &m.key[..], m.base64),
        (MetaCmd::Debug, &b"foo"[..], true)
    );
    // Other tokens are ignored; `b` only counts as the first flag.
    let m = meta(one(b"me Zm9v x b\r\n"));
    assert_eq!((&m.key[..], m.base64), (&b"Zm9v"[..], false));
    assert_eq!(one(b"mn\r\n"), Parsed::Request(meta_noop()));
    assert_eq!(one(b"mn extra tokens\r\n"), Parsed::Request(meta_noop()));
    assert_eq!(meta(one(b"mn\r\n")).routing_key(), None);
}

#[test]
fn m_q_pipeline_of_lines() {
    // metaget.t quiet pipeline: five requests in one buffer.
    let r =
        all(b"ms quiet 2 q\r\nbo\r\nmg quiet v q\r\nmg quiet v q\r\nmg quietmiss v q\r\nmn\r\n");
    assert_eq!(r.len(), 5);
    let cmds: Vec<MetaCmd> = r.into_iter().map(|p| meta(p).cmd).collect();
    assert_eq!(
        cmds,
        [
            MetaCmd::Set,
            MetaCmd::Get,
            MetaCmd::Get,
            MetaCmd::Get,
            MetaCmd::Noop
        ]
    );
}

#[test]
fn keys_and_opaque_are_slices_of_the_frame() {
    let mut buf = BytesMut::from(&b"mg key Oab v\r\n"[..]);
    let base = buf.as_ptr() as usize;
    let m = meta(AsciiParser::new(MAX).parse(&mut buf));
    assert_eq!(m.key.as_ptr() as usize, base + 3);
    assert_eq!(m.opaque.as_ptr() as usize, base + 7);
}

//! Execution tests. `metaget_t_*` port memcached 1.6.18's `t/metaget.t`
//! (the acceptance test) step by step, with exact replies where
//! memcached's are deterministic.
use super::*;

use crate::protocol::ascii::{AsciiParser, Parsed};
use crate::protocol::Command;
use crate::stats::CoreStats;

/// A fake connection: the ASCII parser in front of one shard, answering
/// `mn` itself like the runtime does.
struct Conn {
    shard: Shard,
    parser: AsciiParser,
    buf: BytesMut,
    now: u32,
    closed: bool,
}

impl Conn {
    fn new() -> Conn {
        Conn::with(1 << 20, false)
    }

    fn with(item_size_max: usize, disable_cas: bool) -> Conn {
        Conn {
            shard: Shard::standalone(64 << 20, item_size_max, disable_cas),
            parser: AsciiParser::new(item_size_max),
            buf: BytesMut::new(),
            now: 1000,
            closed: false,
        }
    }

    /// Sends `input`; returns every reply byte it produced.
    fn raw(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        if self.closed {
            return Vec::new();
        }
        self.buf.extend_from_slice(input);
        loop {
            match self.parser.parse(&mut self.buf) {
                Parsed::Incomplete => break,
                Parsed::Close => {
                    self.closed = true;
                    break;
                }
                Parsed::Error(line) => out.put_slice(line),
                Parsed::Silent => {}
                Parsed::Request(req) => match &req.cmd {
                    Command::Quit => {
                        self.closed = true;
                        break;
                    }
                    Command::Meta(m) if m.cmd == MetaCmd::Noop => out.put_slice(reply::META_MN),
                    c if c.single_key().is_some() => {
                        crate::exec::ascii::execute(&mut self.shard, &req, self.now, &mut out)
                    }
                    c => panic!("unexpected {c:?}"),
                },
            }
        }
        out.to_vec()
    }

    fn send(&mut self, input: &str) -> String {
        String::from_utf8(self.raw(input.as_bytes())).unwrap()
    }

    /// metaget.t's `mget`/`marith`: one request, one reply (+ value line).
    fn meta(&mut self, line: &str) -> Res {
        Res::parse(&self.send(&format!("{line}\r\n")))
    }

    fn stat(&self, f: impl Fn(&CoreStats) -> &crate::stats::Counter) -> u64 {
        f(&self.shard.stats).get()
    }
}

/// metaget.t's `mget_res`.
#[derive(Debug, Default)]
struct Res {
    code: String,
    size: Option<usize>,
    flags: Vec<String>,
    val: Option<String>,
}

impl Res {
    fn parse(s: &str) -> Res {
        let mut lines = s.split("\r\n");
        let head = lines.next().unwrap_or("");
        let mut toks = head.split(' ');
        let mut r = Res {
            code: toks.next().unwrap_or("").to_string(),
            ..Res::default()
        };
        if r.code == "VA" {
            r.size = toks.next().and_then(|n| n.parse().ok());
            r.val = lines.next().map(str::to_string);
        }
        r.flags = toks.map(str::to_string).collect();
        r
    }

    /// metaget.t's `get_flag`: the token after the flag character.
    fn flag(&self, c: char) -> Option<&str> {
        self.flags
            .iter()
            .find(|f| f.starts_with(c))
            .map(|f| &f[1..])
    }

    fn num(&self, c: char) -> i64 {
        self.flag(c)
            .unwrap_or_else(|| panic!("no {c} in {self:?}"))
            .parse()
            .unwrap()
    }

    fn has(&self, c: char) -> bool {
        self.flags.iter().any(|f| f.contains(c))
    }
}

/// ASCII and meta requests through the parser: one log line each.
#[test]
fn introspection_records_each_request_once() {
    let mut c = Conn::new();
    c.shard.enable_introspection(1);
    c.send("set a 0 0 2\r\nhi\r\n");
    c.send("add a 0 0 1\r\nx\r\n");
    c.send("cas a 0 0 1 999\r\nx\r\n");
    c.send("prepend a 0 0 1\r\n>\r\n");
    c.send("touch a 10\r\n");
    c.send("incr a 1\r\n");
    c.send("delete a\r\n");
    c.send("ms b 2 T0\r\nhi\r\n");
    c.send("ms b 1 C999\r\nx\r\n");
    c.send("mg b v\r\n");
    c.send("mg b v T30\r\n");
    c.send("mg nx v\r\n");
    c.send("me b\r\n");
    c.send("ma b\r\n");
    c.send("ma cnt N0 J5\r\n");
    c.send("ma cnt MD\r\n");
    c.send("md b q\r\n");
    c.send("md b\r\n");
    c.send("mn\r\n");
    let got: Vec<(String, &str, &str, u32)> = c
        .shard
        .introspect
        .as_ref()
        .unwrap()
        .report()
        .log
        .into_iter()
        .map(|e| (String::from_utf8(e.key).unwrap(), e.cmd, e.status, e.size))
        .collect();
    let want: Vec<(String, &str, &str, u32)> = [
        ("a", "SET", "STORED", 2),
        ("a", "ADD", "NOT_STORED", 1),
        ("a", "CAS", "EXISTS", 1),
        ("a", "PREPEND", "STORED", 3),
        ("a", "TOUCH", "TOUCHED", 0),
        ("a", "INCR", "NON_NUMERIC", 0),
        ("a", "DELETE", "DELETED", 0),
        ("b", "SET", "STORED", 2),
        ("b", "CAS", "EXISTS", 1),
        ("b", "GET", "HIT", 2),
        ("b", "GAT", "HIT", 2),
        ("nx", "GET", "MISS", 0),
        ("b", "INCR", "NON_NUMERIC", 0),
        ("cnt", "INCR", "MISS", 1),
        ("cnt", "DECR", "HIT", 1),
        ("b", "DELETE", "DELETED", 0),
        ("b", "DELETE", "NOT_FOUND", 0),
    ]
    .into_iter()
    .map(|(k, c, st, n)| (k.to_string(), c, st, n))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn metaget_t_basic_parser_me_md() {
    let mut c = Conn::new();
    assert_eq!(c.send(" \n"), "ERROR\r\n");
    assert_eq!(c.send("set foo 0 0 2\r\nhi\r\n"), "STORED\r\n");
    assert_eq!(c.send("me none\r\n"), "EN\r\n");
    assert!(c.send("me foo\r\n").starts_with("ME foo "));
    // mdelete had excess space before newline.
    assert_eq!(c.send("md deltest\r\n"), "NF\r\n");
    assert_eq!(c.send("md foo\r\n"), "HD\r\n");
    assert_eq!(c.send("set foo2 0 90 2\r\nho\r\n"), "STORED\r\n");
    assert_eq!(c.send("mg foo2 s v\r\n"), "VA 2 s2\r\nho\r\n");
}

#[test]
fn metaget_t_mset_and_mdelete_cas() {
    let mut c = Conn::new();
    assert_eq!(c.send("ms msetcas 2\r\nbo\r\n"), "HD\r\n");
    let cas = c.meta("mg msetcas c").num('c');
    assert!(cas > 0);
    assert_eq!(
        c.send(&format!("ms msetcas 2 c C{}\r\nio\r\n", cas + 10)),
        "EX c0\r\n"
    );
    let r = c.send(&format!("ms msetcas 2 c C{cas}\r\nio\r\n"));
    assert!(
        r.starts_with("HD c") && r != format!("HD c{cas}\r\n"),
        "{r}"
    );

    assert_eq!(c.send("ms mdeltest 2\r\nzo\r\n"), "HD\r\n");
    let cas = c.meta("mg mdeltest c").num('c');
    assert_eq!(c.send(&format!("md mdeltest C{}\r\n", cas + 10)), "EX\r\n");
    assert_eq!(c.send(&format!("md mdeltest C{cas}\r\n")), "HD\r\n");
    assert_eq!(c.send("mg mdeltest\r\n"), "EN\r\n");
}

#[test]
fn metaget_t_encoded_binary_keys() {
    let mut c = Conn::new();
    assert_eq!(c.send("ms 44OG44K544OI 2 b\r\npo\r\n"), "HD\r\n");
    assert_eq!(
        c.send("mg 44OG44K544OI v\r\n"),
        "EN\r\n",
        "encoded key doesn't exist"
    );
    assert_eq!(
        c.send("mg 44OG44K544OI b v k\r\n"),
        "VA 2 k44OG44K544OI b\r\npo\r\n"
    );
    // The decoded key is the item's key.
    assert_eq!(c.send("mg テスト v\r\n"), "VA 2\r\npo\r\n");
    assert_eq!(
        c.send("ms 44OG44K544OI 2 b k\r\npo\r\n"),
        "HD k44OG44K544OI b\r\n"
    );
    assert_eq!(c.send("mg Zm9v b k q O1\r\n"), "", "quiet miss");
    assert_eq!(
        c.send("mg Zm9v b k O1\r\n"),
        "EN k Zm9v b O1\r\n".replace("k Zm9v", "kZm9v")
    );
    assert!(c
        .send("me 44OG44K544OI b\r\n")
        .starts_with("ME 44OG44K544OI exp=-1 la=0 cas="));
}

#[test]
fn metaget_t_marithmetic() {
    let mut c = Conn::new();
    assert_eq!(c.send("ma mo\r\n"), "NF\r\n");
    assert_eq!(c.send("ma mo D1\r\n"), "NF\r\n");
    assert_eq!(c.send("set mo 0 0 1\r\n1\r\n"), "STORED\r\n");
    assert_eq!(c.send("ma mo\r\n"), "HD\r\n");
    assert_eq!(c.send("mg mo v\r\n"), "VA 1\r\n2\r\n");
    assert_eq!(c.send("set mo 0 0 1\r\nq\r\n"), "STORED\r\n");
    assert_eq!(
        c.send("ma mo\r\n"),
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    );

    assert_eq!(c.send("ma mu N90\r\n"), "HD\r\n");
    let r = c.meta("mg mu s t v Ofoo k");
    assert_eq!(r.val.as_deref(), Some("0"), "seeded default value");
    assert_eq!(r.flag('s'), Some("1"));
    assert_eq!(r.flag('O'), Some("foo"));
    assert_eq!(r.flag('k'), Some("mu"));
    let ttl = r.num('t');
    assert!(ttl > 10 && ttl < 91, "{ttl}");

    let r = c.meta("ma mu T300 v t");
    assert_eq!(r.val.as_deref(), Some("1"), "incremented once");
    let ttl = r.num('t');
    assert!(ttl > 150 && ttl < 301, "{ttl}");

    assert_eq!(
        c.send("ma mi N0 J13 v t\r\n"),
        "VA 2 t-1\r\n13\r\n",
        "seeded on a missed value"
    );
    assert_eq!(c.meta("ma mi N0 J13 v t").val.as_deref(), Some("14"));
    assert_eq!(c.meta("ma mi N0 J13 v t D30").val.as_deref(), Some("44"));
    assert_eq!(c.meta("ma mi N0 J13 v t MD D22").val.as_deref(), Some("22"));
    assert_eq!(
        c.meta("ma mi N0 J13 v t MD D9000").val.as_deref(),
        Some("0"),
        "land at 0"
    );
    assert_eq!(c.send("ma mi q D1\r\nmn\r\n"), "MN\r\n", "quiet increment");
    assert_eq!(c.send("mg mi v\r\n"), "VA 1\r\n1\r\n");

    // CAS routines.
    let cas = c.meta("ma mc N0 c v").num('c');
    assert!(
        c.send("ma mc N0 C99999 v\r\n").starts_with("EX"),
        "CAS mismatch"
    );
    let r = c.meta(&format!("ma mc N0 C{cas} c v"));
    assert_eq!(r.val.as_deref(), Some("1"), "ticked after CAS increment");
    assert_ne!(r.num('c'), cas, "CAS increments during modification");
}

#[test]
fn metaget_t_mset_mode_switch() {
    let mut c = Conn::new();
    assert_eq!(c.send("ms modedefault 2 T120\r\naa\r\n"), "HD\r\n");
    assert_eq!(c.send("mg modedefault s v\r\n"), "VA 2 s2\r\naa\r\n");
    assert_eq!(
        c.send("ms modedefault 2 T120 ME\r\naa\r\n"),
        "NS\r\n",
        "add mode gets NOT_STORED"
    );
    assert_eq!(c.send("ms modetest 2 T120 ME\r\nbb\r\n"), "HD\r\n");
    assert_eq!(c.send("mg modetest s v\r\n"), "VA 2 s2\r\nbb\r\n");
    assert_eq!(c.send("ms modetest 2 T120 MA\r\ncc\r\n"), "HD\r\n");
    assert_eq!(c.send("mg modetest s v\r\n"), "VA 4 s4\r\nbbcc\r\n");
    assert_eq!(c.send("ms modetest 2 T120 MP\r\naa\r\n"), "HD\r\n");
    assert_eq!(c.send("mg modetest s v\r\n"), "VA 6 s6\r\naabbcc\r\n");
    assert_eq!(c.send("ms modereplace 2 T120 MR\r\nzz\r\n"), "NS\r\n");
    assert_eq!(c.send("ms modetest 2 T120 MR\r\nxx\r\n"), "HD\r\n");
    assert_eq!(c.send("mg modetest s v\r\n"), "VA 2 s2\r\nxx\r\n");
    assert_eq!(c.send("ms modetest 2 T120 MS\r\nyy\r\n"), "HD\r\n");
    assert_eq!(
        c.send("ms modetest 2 T120 MZ\r\ntt\r\n"),
        "CLIENT_ERROR invalid mode for ms M token\r\n"
    );
    // The swallowed data was not parsed as a command.
    assert_eq!(c.send("mn\r\n"), "MN\r\n");
}

#[test]
fn metaget_t_lease() {
    let mut c = Conn::new();
    let r = c.meta("mg needwin s c v N30 t");
    assert!(r.has('W') && !r.has('Z'), "{r:?}");
    assert_eq!(r.size, Some(0), "autovivified response");
    let ttl = r.num('t');
    assert!(ttl > 0 && ttl <= 30, "{ttl}");
    let res = r;
    {
        let r = c.meta("mg needwin s t c v N30");
        assert!(!r.code.is_empty());
        assert!(!r.has('W') && r.has('Z'), "{r:?}");
    }
    assert!(c
        .send("ms needwin 2 C5000 T120\r\nnu\r\n")
        .starts_with("EX"));
    let cas = res.num('c');
    assert_eq!(
        c.send(&format!("ms needwin 2 C{cas} T120\r\nmu\r\n")),
        "HD\r\n"
    );
    let r = c.meta("mg needwin s k t c v N30");
    assert!(!r.has('W') && !r.has('Z'), "{r:?}");
    assert_eq!(r.flag('k'), Some("needwin"));
    let ttl = r.num('t');
    assert!(ttl > 100 && ttl <= 120, "{ttl}");
    assert_eq!(r.val.as_deref(), Some("mu"));

    // Triggered on TTL being low.
    let res = c.meta("mg needwin s t c v N30 R130");
    assert!(res.has('W') && !res.has('Z'), "{res:?}");
    assert_eq!(res.val.as_deref(), Some("mu"));
    {
        let r = c.meta("mg needwin s t c v N30 R130");
        assert!(!r.has('W') && r.has('Z'), "{r:?}");
        assert_eq!(r.val.as_deref(), Some("mu"));
    }
    let cas = res.num('c');
    assert_eq!(
        c.send(&format!("ms needwin 4 C{cas} T300\r\nzuuu\r\n")),
        "HD\r\n"
    );
    let r = c.meta("mg needwin s t c v N30");
    assert!(!r.has('W') && !r.has('Z'), "{r:?}");
    let ttl = r.num('t');
    assert!(ttl > 250 && ttl <= 300);
    assert_eq!(r.size, Some(4));
    assert_eq!(r.val.as_deref(), Some("zuuu"));
}

#[test]
fn metaget_t_gat_novalue_hit_noupdate_la() {
    let mut c = Conn::new();
    assert_eq!(c.send("ms gatkey 4 T100\r\nooom\r\n"), "HD\r\n");
    let r = c.meta("mg gatkey s v T300 t");
    assert!(!r.has('W') && !r.has('Z'));
    let ttl = r.num('t');
    assert!(ttl > 280 && ttl <= 300, "{ttl}");
    // 't' before 'T' reports the TTL before the touch.
    assert_eq!(c.send("mg gatkey t T50\r\n"), "HD t300\r\n");
    assert_eq!(c.send("mg gatkey T40 t\r\n"), "HD t40\r\n");
    assert_eq!(c.send("mg gatkey t\r\n"), "HD t40\r\n");

    assert_eq!(c.send("ms hidevalue 4 T100\r\nhide\r\n"), "HD\r\n");
    assert_eq!(c.send("mg hidevalue s t\r\n"), "HD s4 t100\r\n");
    assert_eq!(c.send("mg hidevalue s t v\r\n"), "VA 4 s4 t100\r\nhide\r\n");

    assert_eq!(c.send("ms hitflag 3 T100\r\nhit\r\n"), "HD\r\n");
    assert_eq!(
        c.meta("mg hitflag s t h").num('h'),
        0,
        "not been hit before"
    );
    assert_eq!(c.meta("mg hitflag s t h").num('h'), 1, "been hit before");

    assert_eq!(c.send("ms noupdate 3 T100\r\nhit\r\n"), "HD\r\n");
    assert_eq!(c.meta("mg noupdate s t u h").num('h'), 0);
    assert_eq!(c.meta("mg noupdate s t h").num('h'), 0, "still not a hit");
    assert_eq!(c.meta("mg noupdate s t u h").num('h'), 1, "finally a hit");

    assert_eq!(c.send("ms la_test 2 T100\r\nla\r\n"), "HD\r\n");
    c.now += 2; // sleep 2
    assert_ne!(c.meta("mg la_test s t l").num('l'), 0);
}

#[test]
fn metaget_t_serve_stale() {
    let mut c = Conn::new();
    assert_eq!(c.send("set toinv 0 0 3\r\nmoo\r\n"), "STORED\r\n");
    assert_eq!(
        c.send("mg toinv s v\r\n"),
        "VA 3 s3\r\nmoo\r\n",
        "no extra flags"
    );
    assert_eq!(c.send("md toinv I T30\r\n"), "HD\r\n");
    let r = c.meta("mg toinv s t c v");
    assert!(r.has('W') && r.has('X'), "{r:?}");
    let ttl = r.num('t');
    assert!(ttl > 0 && ttl <= 30);
    assert_eq!((r.size, r.val.as_deref()), (Some(3), Some("moo")));

    assert!(
        c.send("ms toinv 1 T90 C0\r\nf\r\n").starts_with("EX"),
        "low CAS didn't match"
    );
    assert_eq!(
        c.send("ms toinv 1 I T90 C1\r\nf\r\n"),
        "HD\r\n",
        "SET an invalid/stale item"
    );
    let r = c.meta("mg toinv s t c v");
    assert!(r.has('X') && r.has('Z') && !r.has('W'), "{r:?}");
    let ttl = r.num('t');
    assert!(ttl > 0 && ttl <= 30, "TTL wasn't modified");
    let cas = r.num('c');
    assert_eq!(c.send(&format!("ms toinv 1 T90 C{cas}\r\ng\r\n")), "HD\r\n");
    let r = c.meta("mg toinv s t c v");
    assert!(!r.has('W') && !r.has('X') && !r.has('Z'), "{r:?}");
    let ttl = r.num('t');
    assert!(ttl > 30 && ttl <= 90);
    assert_ne!(r.num('c'), cas);
    assert_eq!((r.size, r.val.as_deref()), (Some(1), Some("g")));
}

#[test]
fn metaget_t_quiet_opaque_errors_pipeline() {
    let mut c = Conn::new();
    assert_eq!(c.send("ms quiet 2 q\r\nmo\r\n"), "");
    assert_eq!(c.send("md quiet q\r\n"), "");
    assert_eq!(c.send("mg quiet s v q\r\n"), "");
    assert!(c.send("ms quiet\r\n").starts_with("CLIENT_ERROR"));
    assert_eq!(c.send("ms quiet 2 q\r\nbo\r\n"), "");
    assert_eq!(
        c.send("mg quiet v q\r\nmg quiet v q\r\nmg quietmiss v q\r\nmn\r\n"),
        "VA 2\r\nbo\r\nVA 2\r\nbo\r\nMN\r\n"
    );
    // quiet doesn't override autovivication.
    assert!(c.send("mg quietautov s N30 t q\r\n").starts_with("HD s0"));

    assert_eq!(c.send("ms otest 2 T100\r\nra\r\n"), "HD\r\n");
    assert_eq!(c.meta("mg otest t v Oopaque").flag('O'), Some("opaque"));

    assert!(c
        .send("mg foo m o o o o o o o o o\r\n")
        .starts_with("CLIENT_ERROR invalid flag"));

    assert_eq!(c.send("ms foo 2 T100\r\nna\r\n"), "HD\r\n");
    assert_eq!(
        c.send("mg foo s\r\nmg foo s\r\nquit\r\nmg foo s\r\n"),
        "HD s2\r\nHD s2\r\n"
    );
    assert!(c.closed, "final get didn't run");
}

// ---- beyond metaget.t --------------------------------------------------

#[test]
fn m_mg_flag_order_and_values() {
    let mut c = Conn::new();
    assert_eq!(c.send("ms k 3 F42 T0\r\nabc\r\n"), "HD\r\n");
    let cas = c.meta("mg k c").num('c');
    assert_eq!(
        c.send("mg k Oxy k f c s t v q\r\n"),
        format!("VA 3 Oxy kk f42 c{cas} s3 t-1\r\nabc\r\n"),
        "flags echo request order; q does not hide hits"
    );
    assert_eq!(c.send("mg k f c\r\n"), format!("HD f42 c{cas}\r\n"));
    assert_eq!(c.send("mg k\r\n"), "HD\r\n");
    assert_eq!(c.send("mg k P L\r\n"), "HD\r\n", "proxy hints ignored");
    assert_eq!(c.send("mg miss k Oab s v\r\n"), "EN kmiss Oab\r\n");
    assert_eq!(c.send("mg miss q k\r\nmn\r\n"), "MN\r\n");
    // Too-long opaque: an error even on a miss, and with q.
    let o = format!("O{}", "x".repeat(32));
    assert_eq!(
        c.send(&format!("mg miss q {o}\r\n")),
        "CLIENT_ERROR opaque token too long\r\n"
    );
    assert_eq!(
        c.send(&format!("mg k s {o}\r\n")),
        "CLIENT_ERROR opaque token too long\r\n"
    );
    assert_eq!(
        c.send(&format!("mg k s {}\r\n", &o[..32])),
        format!("HD s3 {}\r\n", &o[..32])
    );
}

#[test]
fn m_mg_stats() {
    let mut c = Conn::new();
    c.send("ms k 1\r\na\r\n");
    c.send("mg k v\r\nmg nope v\r\nmg k T10\r\nmg nope T10\r\nmg viv N10\r\n");
    assert_eq!(c.stat(|s| &s.cmd_get), 4);
    assert_eq!(c.stat(|s| &s.get_hits), 2, "a vivify counts as a hit");
    assert_eq!(
        c.stat(|s| &s.get_misses),
        2,
        "T on a miss counts a get miss"
    );
    assert_eq!(
        (c.stat(|s| &s.cmd_touch), c.stat(|s| &s.touch_hits)),
        (1, 1)
    );
    c.send("me k\r\nme nope\r\n");
    assert_eq!(c.stat(|s| &s.cmd_meta), 2, "memcached counts only me");
    assert_eq!(c.stat(|s| &s.cmd_set), 1);
}

#[test]
fn m_mg_vivify_and_recache() {
    let mut c = Conn::new();
    // 't' before 'N' sees the stub still immortal.
    assert_eq!(c.send("mg v1 t N30 s\r\n"), "HD t-1 s0 W\r\n");
    assert_eq!(c.send("mg v0 N30 t u\r\n"), "HD t30 W\r\n");
    assert_eq!(c.send("mg v0 h\r\n"), "HD h0 Z\r\n", "u: not fetched");
    assert_eq!(
        c.send("mg v1 t s h\r\n"),
        "HD t30 s0 h1 Z\r\n",
        "bumped: fetched; token sent"
    );
    // E gives the vivified item its CAS.
    assert_eq!(c.send("mg v2 N30 E777 c\r\n"), "HD c777 W\r\n");
    // R: no win for immortal items, a win when the TTL is below the token.
    c.send("ms r 1\r\na\r\n");
    assert_eq!(c.send("mg r R30\r\n"), "HD\r\n");
    c.send("ms r 1 T20\r\na\r\n");
    assert_eq!(c.send("mg r R10\r\n"), "HD\r\n");
    assert_eq!(c.send("mg r R30 t\r\n"), "HD t20 W\r\n");
    assert_eq!(c.send("mg r R30\r\n"), "HD Z\r\n");
    // A T before R moves the TTL R compares against.
    c.send("ms r2 1 T20\r\na\r\n");
    assert_eq!(c.send("mg r2 T100 R30\r\n"), "HD\r\n");
    assert_eq!(c.send("mg r2 T10 R30 t\r\n"), "HD t10 W\r\n");
    // A set clears win and stale.
    c.send("ms r2 1\r\nb\r\n");
    assert_eq!(c.send("mg r2 s\r\n"), "HD s1\r\n");
}

#[test]
fn m_mg_negative_ttl_expires() {
    let mut c = Conn::new();
    c.send("ms k 1\r\na\r\n");
    assert!(c.send("mg k T-1\r\n").starts_with("HD"));
    assert_eq!(c.send("mg k\r\n"), "EN\r\n");
    // Vivified already expired: answered once (a win), then gone.
    assert_eq!(c.send("mg v v N-1\r\n"), "VA 0 W\r\n\r\n");
    assert_eq!(c.send("mg v v\r\n"), "EN\r\n");
    assert_eq!(c.send("ma n N-1 J3 v\r\n"), "VA 1\r\n3\r\n");
    assert_eq!(c.send("mg n v\r\n"), "EN\r\n");
}

#[test]
fn m_ms_flags_modes_and_cas() {
    let mut c = Conn::new();
    assert_eq!(
        c.send("ms k 2 F7 T50 c k s Oq1\r\nab\r\n"),
        "HD c1 kk s2 Oq1\r\n"
    );
    assert_eq!(c.send("mg k f t v\r\n"), "VA 2 f7 t50\r\nab\r\n");
    // Append keeps flags/TTL; s is the new size; q hides HD only.
    assert_eq!(c.send("ms k 1 MA F9 T9 s\r\nc\r\n"), "HD s3\r\n");
    assert_eq!(c.send("mg k f t v\r\n"), "VA 3 f7 t50\r\nabc\r\n");
    assert_eq!(c.send("ms k 1 MP q\r\nz\r\n"), "");
    assert_eq!(c.send("ms nope 1 MA q k\r\nz\r\n"), "NS knope\r\n");
    assert_eq!(c.send("ms nope 1 MR q\r\nz\r\n"), "NS\r\n");
    assert_eq!(c.send("ms nope 1 C5 q c\r\nz\r\n"), "NF c0\r\n");
    // Append with C: mismatch EX, missing NS, match appends.
    assert_eq!(c.send("ms k 1 MA C999\r\nx\r\n"), "EX\r\n");
    assert_eq!(c.send("ms nope 1 MA C999\r\nx\r\n"), "NS\r\n");
    let cas = c.meta("mg k c").num('c');
    assert_eq!(c.send(&format!("ms k 1 MA C{cas}\r\nx\r\n")), "HD\r\n");
    assert_eq!(c.send("mg k v\r\n"), "VA 5\r\nzabcx\r\n");
    // Add ignores C: stores when missing, NS when present.
    assert_eq!(c.send("ms add1 1 ME C999\r\nx\r\n"), "HD\r\n");
    assert_eq!(c.send("ms add1 1 ME C999\r\nx\r\n"), "NS\r\n");
    // Replace + C behaves as CAS.
    let cas = c.meta("mg add1 c").num('c');
    assert_eq!(
        c.send(&format!("ms add1 1 MR C{}\r\ny\r\n", cas + 1)),
        "EX\r\n"
    );
    assert_eq!(c.send(&format!("ms add1 1 MR C{cas}\r\ny\r\n")), "HD\r\n");
    // E sets the new CAS.
    assert_eq!(c.send("ms e 1 E12345 c\r\nx\r\n"), "HD c12345\r\n");
    assert_eq!(c.send("mg e c\r\n"), "HD c12345\r\n");
    assert_eq!(c.send("ms e 1 C12345 E999 c\r\nx\r\n"), "HD c999\r\n");
    // N with append: autovivify with the N TTL.
    assert_eq!(c.send("ms viv 2 MA N40 T5\r\nhi\r\n"), "HD\r\n");
    assert_eq!(c.send("mg viv t v\r\n"), "VA 2 t40\r\nhi\r\n");
    // Zero-length values.
    assert_eq!(c.send("ms z 0\r\n\r\n"), "HD\r\n");
    assert_eq!(c.send("mg z s v\r\n"), "VA 0 s0\r\n\r\n");
}

#[test]
fn m_ms_stats() {
    let mut c = Conn::new();
    c.send("ms a 1\r\nx\r\n");
    let cas = c.meta("mg a c").num('c');
    c.send(&format!(
        "ms a 1 C{cas}\r\ny\r\nms a 1 C1\r\ny\r\nms b 1 C1\r\ny\r\n"
    ));
    assert_eq!(c.stat(|s| &s.cmd_set), 4);
    assert_eq!(
        (
            c.stat(|s| &s.cas_hits),
            c.stat(|s| &s.cas_badval),
            c.stat(|s| &s.cas_misses)
        ),
        (1, 1, 1)
    );
}

#[test]
fn m_ms_too_large() {
    let mut c = Conn::with(100, false);
    c.send("ms big 1\r\nx\r\n");
    // Over the limit at parse time: refused, data swallowed, key unlinked.
    assert_eq!(
        c.send(&format!("ms big 200 q\r\n{}\r\n", "x".repeat(200))),
        "SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(c.send("mg big\r\n"), "EN\r\n");
    // Over the limit once the key and item overhead count.
    c.send("ms big 1\r\nx\r\n");
    assert_eq!(
        c.send(&format!("ms big 90 MA\r\n{}\r\n", "x".repeat(90))),
        "SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(c.send("mg big\r\n"), "EN\r\n", "unlinked whatever the mode");
    assert_eq!(c.stat(|s| &s.store_too_large), 2);
    // Append past the limit is NS.
    c.send(&format!("ms big 40\r\n{}\r\n", "x".repeat(40)));
    assert_eq!(
        c.send(&format!("ms big 40 MA\r\n{}\r\n", "x".repeat(40))),
        "NS\r\n"
    );
}

#[test]
fn m_md_flags() {
    let mut c = Conn::new();
    assert_eq!(
        c.send("md nope q k Oa\r\n"),
        "NF knope Oa\r\n",
        "q hides only HD"
    );
    c.send("ms k 1\r\na\r\n");
    assert_eq!(c.send("md k q k\r\n"), "");
    c.send("ms k 1\r\na\r\n");
    assert_eq!(c.send("md k C1 Oa k\r\n"), "EX Oa kk\r\n");
    assert_eq!(c.stat(|s| &s.delete_misses), 2);
    // x keeps the item with an empty value, new flags/TTL, same CAS.
    let cas = c.meta("mg k c").num('c');
    assert_eq!(c.send("md k x F3 T30\r\n"), "HD\r\n");
    assert_eq!(
        c.send("mg k s f t c\r\n"),
        format!("HD s0 f3 t30 c{cas}\r\n")
    );
    assert_eq!(c.stat(|s| &s.delete_hits), 2);
    // I: stale, new CAS (E when given), TTL only with T.
    c.send("ms s 3 T100\r\nabc\r\n");
    assert_eq!(c.send("md s I E55\r\n"), "HD\r\n");
    assert_eq!(c.send("mg s c t v\r\n"), "VA 3 c55 t100 X W\r\nabc\r\n");
    assert_eq!(c.send("md s I q\r\n"), "");
    assert_eq!(
        c.send("mg s t\r\n"),
        "HD t100 X W\r\n",
        "I clears the sent token"
    );
    assert_eq!(c.stat(|s| &s.delete_hits), 2, "I counts no delete hit");
}

#[test]
fn m_ma_flags() {
    let mut c = Conn::new();
    assert_eq!(c.send("ma n q Oa k\r\n"), "NF Oa kn\r\n");
    assert_eq!(
        c.send("ma n N0 J5 q v\r\n"),
        "",
        "q hides a vivified reply too"
    );
    assert_eq!(c.send("ma n v\r\n"), "VA 1\r\n6\r\n");
    assert_eq!(c.send("ma n M- D2 v k\r\n"), "VA 1 kn\r\n4\r\n");
    assert_eq!(c.send("ma n M+ v E77 c\r\n"), "VA 1 c77\r\n5\r\n");
    assert_eq!(c.send("ma n C1 O1\r\n"), "EX O1\r\n");
    assert_eq!(
        c.send("ma n C0 v\r\n"),
        "VA 1\r\n6\r\n",
        "C0 does not compare"
    );
    assert_eq!(
        c.send("ma n D18446744073709551615 v\r\n"),
        "VA 1\r\n5\r\n",
        "incr wraps"
    );
    // t before T sees the old TTL.
    assert_eq!(c.send("ma n t T30\r\n"), "HD t-1\r\n");
    assert_eq!(c.send("ma n T20 t\r\n"), "HD t20\r\n");
    assert_eq!(c.send("ma n T30\r\n"), "HD\r\n");
    assert_eq!(c.send("mg n t v\r\n"), "VA 1 t30\r\n8\r\n");
    // Zero-length value: non-numeric before the CAS check.
    c.send("ms e 0\r\n\r\n");
    assert_eq!(
        c.send("ma e C1\r\n"),
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    );
    // A long opaque is found after the update.
    let o = format!("O{}", "x".repeat(32));
    assert_eq!(
        c.send(&format!("ma n {o}\r\n")),
        "CLIENT_ERROR opaque token too long\r\n"
    );
    assert_eq!(c.send("mg n v\r\n"), "VA 1\r\n9\r\n");
    assert_eq!(c.stat(|s| &s.incr_hits), 8);
    assert_eq!(c.stat(|s| &s.decr_hits), 1);
    assert_eq!(c.stat(|s| &s.incr_misses), 1);
}

#[test]
fn m_me_output() {
    let mut c = Conn::new();
    c.send("ms k 3 T100 F1\r\nabc\r\n");
    let cas = c.meta("mg k c u").num('c');
    c.now += 5;
    // ntotal = 48 + 1 + 1 + 3 + 2 + 4 + 8 = 67 -> class 1 (96 bytes).
    assert_eq!(
        c.send("me k\r\n"),
        format!("ME k exp=-95 la=5 cas={cas} fetch=no cls=1 size=67\r\n")
    );
    c.send("mg k\r\n");
    assert!(c.send("me k\r\n").contains(" la=0 cas="));
    assert!(c.send("me k\r\n").contains("fetch=yes"));
    assert_eq!(c.send("me Zm9v b\r\n"), "EN\r\n");
    c.send("ms Zm9v 1 b\r\nx\r\n");
    assert!(c.send("me Zm9v b\r\n").starts_with("ME Zm9v exp=-1 la=0 "));
    assert_eq!(slab_class(96), 1);
    assert_eq!(slab_class(97), 2);
    assert_eq!(slab_class(1 << 30), 39, "the 512 KiB class");
}

#[test]
fn m_disable_cas_reports_zero() {
    let mut c = Conn::with(1 << 20, true);
    assert_eq!(c.send("ms k 1 c\r\nx\r\n"), "HD c0\r\n");
    assert_eq!(c.send("mg k c\r\n"), "HD c0\r\n");
}
